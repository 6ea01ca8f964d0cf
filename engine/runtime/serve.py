"""Serve one system version as an HTTP/JSON service on 127.0.0.1 (one OS process per version).

``python -m engine.runtime.serve --system-dir DIR --runtime v1|v2 --port P [--owner TAG] [--memory-mb N]``

``v1`` runs a v1 system folder on the legacy RPC runtime; ``v2`` runs a
converted folder (``blueprint.yaml`` with schema 2.0.0) on the port runtime.
Both expose the same routes, so the gateway and the workload treat old and
new alike:

* ``GET /health``: 200 with ``{"status": "ok", "system": ..., "runtime": ...}``
* ``GET /endpoints``: the entry methods and the message shape each accepts
* ``POST /call/<endpoint>``: the JSON body is the message; the reply is the
  system's response, or 502 with ``{"error": {"kind", "target", "detail"}}``;
  its ``Server-Timing`` header says how long the version took
  (``app;dur=<ms>``) and how much of that its thread waited for a CPU
  (``cpu-wait;dur=<ms>``): the gateway records both beside its own round trip
* ``GET /metrics``: request counts and latency histograms in the Prometheus
  text format (:mod:`engine.metrics.service`), so Prometheus can scrape each version

Binding is to loopback only: a system under migration is never exposed beyond
this machine. The system's code is a team's own: with ``--memory-mb`` (the
supervisor passes the policy's ``sandbox.service_memory_mb``) the process may
allocate only that much beyond the runtime's own memory, so a runaway system
fails its own requests (MemoryError, answered as an error) instead of taking
the machine down; with ``--confine-writes`` it may write only in its own
folder (the supervisor starts it there, so relative paths land in it).
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.metrics.service import CONTENT_TYPE, VERSION_OF_RUNTIME, ServiceMetrics
from engine.models.blueprint_v1 import load_v1_blueprint
from engine.models.blueprint_v2 import load_v2_blueprint
from engine.runtime.legacy import LegacySystem, RpcError
from engine.runtime.port_system import PortCallError, PortSystem
from engine.sandbox import landlock
from engine.sandbox.limits import limit_memory

LOOPBACK = "127.0.0.1"

Handler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


_SCHEDSTAT: dict[int, int] = {}
"""An open ``schedstat`` file per thread id (one read is a ~4 us ``pread``, not an open each time)."""


def cpu_wait_ns() -> int:
    """Nanoseconds this thread has spent runnable but waiting for a CPU so far; 0 where unknown.

    Linux counts it per thread (``/proc/self/task/<tid>/schedstat``, second
    field: run-queue delay). Read before and after a request, the difference
    is how long the machine's other load kept the version from running while
    it served the request: on this team's 2 busy cores, what made most of the
    tail (p99 1-65 ms for a ~0.15 ms answer, present or not at random in either
    version of a pair). The version's own work, its sleeps, its waits on I/O
    and its garbage collection are not in it.
    """
    tid = threading.get_native_id()
    fd = _SCHEDSTAT.get(tid)
    try:
        if fd is None:
            fd = _SCHEDSTAT[tid] = os.open(f"/proc/self/task/{tid}/schedstat", os.O_RDONLY)
        return int(os.pread(fd, 64, 0).split()[1])
    except (OSError, ValueError, IndexError):
        if fd is not None:  # a thread id reused by a new thread: open its own file next time
            _SCHEDSTAT.pop(tid, None)
            os.close(fd)
        return 0


def server_timing(elapsed_s: float, waited_ns: int) -> str:
    """The ``Server-Timing`` header of an answer: the version's time on it and its CPU wait, in ms."""
    return f"app;dur={elapsed_s * 1000:.4f}, cpu-wait;dur={waited_ns / 1e6:.4f}"


class OwnTime:
    """ASGI middleware: every ``/call/`` answer says in ``Server-Timing`` how long the version took.

    It wraps the whole application, so the span is everything the version's
    process does for the request once the server has read it: routing, reading
    and parsing the body, the team's code (v1 legacy runtime or v2 ports),
    building and serialising the answer; it ends when the answer's head is sent
    (the body is already rendered then). Only the HTTP server's own reading and
    writing of bytes, the same code for every version, is outside. The gateway
    records it beside its own round trip (:func:`engine.deploy.gateway.service_time`).
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/call/"):
            await self.app(scope, receive, send)
            return
        start, waited = time.perf_counter(), cpu_wait_ns()

        async def timed(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                # wait read before time (time before wait at the start): a preemption between two
                # reads counts in the time and not in the wait, so the version is never credited too much
                wait = cpu_wait_ns() - waited
                header = server_timing(time.perf_counter() - start, wait).encode("latin-1")
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", header)]}
            await send(message)

        await self.app(scope, receive, timed)


def _app(
    health_info: dict[str, Any],
    entry: str,
    endpoint_shapes: dict[str, dict[str, str]],
    handle: Handler,
    lifespan: Any = None,
) -> Starlette:
    """The routes every served version has, around one ``handle(endpoint, message)``."""
    version = VERSION_OF_RUNTIME[health_info["runtime"]]
    metrics = ServiceMetrics(health_info["system"], version, endpoint_shapes)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(health_info)

    async def endpoints(request: Request) -> JSONResponse:
        return JSONResponse({"entry": entry, "endpoints": endpoint_shapes})

    async def prometheus_metrics(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def call(request: Request) -> JSONResponse:
        start = time.perf_counter()
        try:
            response = await answer(request)
        except Exception:
            metrics.observe(request.path_params["endpoint"], 500, time.perf_counter() - start)
            raise
        metrics.observe(request.path_params["endpoint"], response.status_code, time.perf_counter() - start)
        return response

    async def answer(request: Request) -> JSONResponse:
        endpoint = request.path_params["endpoint"]
        try:
            message: Any = await request.json()
        except ValueError:
            return JSONResponse(
                {"error": {"kind": "bad_request", "detail": "body is not JSON"}}, status_code=400
            )
        if not isinstance(message, dict):
            return JSONResponse(
                {"error": {"kind": "bad_request", "detail": "body must be a JSON object"}}, 400
            )
        try:
            result = await handle(endpoint, message)
        except (RpcError, PortCallError) as exc:
            error = {"kind": exc.kind, "target": exc.target, "detail": exc.detail}
            return JSONResponse({"error": error}, status_code=502)
        return JSONResponse(result)

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/endpoints", endpoints),
            Route("/call/{endpoint}", call, methods=["POST"]),
            Route("/metrics", prometheus_metrics),
        ],
        middleware=[Middleware(OwnTime)],
        lifespan=lifespan,
    )


def legacy_app(system_dir: Path) -> Starlette:
    """A Starlette app serving a v1 system on the legacy RPC runtime."""
    blueprint = load_v1_blueprint(system_dir / "blueprint.yaml")
    system = LegacySystem.load(system_dir, blueprint)

    async def handle(endpoint: str, message: dict[str, Any]) -> dict[str, Any]:
        # Synchronous on purpose: the legacy runtime handles one call at a time, as the old RPC stack did.
        return system.handle(endpoint, message)

    health = {
        "status": "ok" if not system.load_errors else "degraded",
        "system": blueprint.system.name,
        "runtime": "v1",
        "load_errors": system.load_errors,
    }
    return _app(health, system.entry, system.endpoints(), handle)


def port_app(system_dir: Path) -> Starlette:
    """A Starlette app serving a converted v2 system on the port runtime (graphs live for the app's life)."""
    blueprint = load_v2_blueprint(system_dir / "blueprint.yaml")
    system = PortSystem(blueprint, code_dir=system_dir / "components")

    health: dict[str, Any] = {
        "status": "ok",
        "system": blueprint.system.name,
        "runtime": "v2",
        "load_errors": {},
    }

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with system.running():
            health["load_errors"] = system.load_errors()  # hosted code that did not import, as v1 reports it
            health["status"] = "degraded" if health["load_errors"] else "ok"
            yield

    return _app(health, system.entry, system.endpoints(), system.handle, lifespan)


APPS = {"v1": legacy_app, "v2": port_app}


def confine_writes(system_dir: Path) -> bool:
    """Let this process write only beneath ``system_dir`` (its own copy), where the kernel has Landlock.

    A component that writes elsewhere (``/tmp``, the repository, another
    system's files) gets PermissionError, answered as a failed call; the
    service goes on. Returns whether the kernel confines it (False: no Landlock).
    """
    abi = landlock.abi_version()
    if abi:
        landlock.restrict_writes([system_dir.resolve(), Path(os.devnull)], abi)
    return bool(abi)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.runtime.serve")
    parser.add_argument("--system-dir", required=True, type=Path)
    parser.add_argument("--runtime", choices=sorted(APPS), default="v1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--owner", default="", help="tag naming the workspace that started this process")
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=0,
        help="what the system may allocate beyond the runtime (0: no limit)",
    )
    parser.add_argument(
        "--confine-writes", action="store_true", help="write only beneath --system-dir (with Landlock)"
    )
    args = parser.parse_args(argv)
    # a start that never answers: the supervisor asks where it is stuck (a module that hangs at import)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    if args.memory_mb > 0:
        limit_memory(args.memory_mb)  # before the system's modules are imported: they count too
    if args.confine_writes:
        confine_writes(args.system_dir)
    app = APPS[args.runtime](args.system_dir)
    # asyncio's loop, not uvloop (installed for the gateway): the served versions stay as they were measured
    uvicorn.run(app, host=LOOPBACK, port=args.port, log_level="warning", access_log=False, loop="asyncio")


if __name__ == "__main__":
    main()
