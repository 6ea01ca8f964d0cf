"""The gateway process: routes each system's traffic to its slots, mirrors, and records samples.

``python -m engine.deploy.gateway --routes FILE --samples-dir DIR --port P [--owner TAG]``

Routes (a JSON file the engine writes atomically, then asks the gateway to
reload) say per system which slot is *active* (blue or green), the canary
weight (share of requests the other slot answers), whether the other slot
gets a *mirror* of every request (its response compared, never returned), and
which run, if any, the samples belong to::

    {"systems": {"hello_world_api": {
        "active": "blue", "canary_weight": 0.0, "mirror": true, "record_run": "r-...",
        "slots": {"blue": {"port": 41001, "version": "old"}, "green": {"port": 41002, "version": "new"}}}}}

Routes:

* ``POST /s/<system>/call/<endpoint>``: the system's traffic
* ``GET /_switchyard/health``, ``GET /_switchyard/stats`` (requests, errors and
  in-flight per slot), ``POST /_switchyard/reload``, ``POST /_switchyard/flush``
* ``GET /metrics``: Switchyard's decisions (state, verdict, triggers fired, from
  the engine's ``decisions.json`` beside the routes file) and the gateway's own
  counters, in the Prometheus text format (:mod:`engine.metrics.decisions`)

A reload swaps the table in one assignment: requests already forwarded
finish on the slot they started on, new ones go by the new table, so a
switch drops nothing. Samples are buffered in columns and written as Parquet
segments (temp name, then rename) every second, so a crash never leaves a
half-written file and a reader only ever sees whole segments.

While a route records a run, the gateway also keeps a bounded sample of the
distinct request bodies per endpoint (:mod:`engine.deploy.request_sample`;
the routes file's top-level ``record_requests``, from the policy's
``[recorded_requests]``), written beside the run's segments as
``requests.parquet``: the gate replays them to v1 and v2 before a later deploy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

from engine.deploy.http import HttpError, Request, Response, Upstream, start_server
from engine.deploy.request_sample import RequestSample
from engine.metrics.decisions import read_and_render
from engine.metrics.exposition import CONTENT_TYPE, Counter, render

LOOPBACK = "127.0.0.1"
FLUSH_EVERY_S = 1.0
SAMPLE_COLUMNS: dict[str, Any] = {
    "ts": pl.Datetime("us", "UTC"),
    "run_id": pl.String,
    "request_id": pl.Int64,
    "endpoint": pl.String,
    "version": pl.String,
    "slot": pl.String,
    "primary": pl.Boolean,
    "status": pl.Int32,
    "ok": pl.Boolean,
    "latency_ms": pl.Float64,
    "digest": pl.String,
    "match": pl.Boolean,
    "body": pl.String,
    "called_first": pl.Boolean,
    "service_ms": pl.Float64,
    "cpu_wait_ms": pl.Float64,
}
"""One row per request per version: the parallel run's measurement.

``body`` is kept only for the first :data:`MISMATCH_EXAMPLES` mismatched pairs of
a run, so the Go/No-Go page can show what differed without storing every response.
``called_first`` says, for a mirrored pair, which version the gateway called first:
the primary, always (null when nothing was mirrored); see :meth:`Gateway.mirrored`.

``latency_ms`` is the request's round trip as the gateway saw it (what the caller
waited for, less the gateway's own checks); ``service_ms`` is the version's own time
on it, as the version reports it in its ``Server-Timing`` header
(:mod:`engine.runtime.serve`), with the time its thread waited for a CPU taken out
(``cpu_wait_ms``, what was taken out). Null when the version reports none (no
answer, another server, segments written before). Why both: on this machine's 2
busy cores ~1 ms of a ~1.2 ms round trip is HTTP, wake-ups and run-queue waits
outside either version, and it differed between the two calls of a pair more than
the versions did (per-request log ratio sd 0.6-1.0 on the round trip, 0.2-0.25 on
``service_ms``; see :func:`service_time`).
"""
MISMATCH_EXAMPLES = 20
BODY_LIMIT = 2000
SHADOW_GAP_S = 0.005
"""How long after the primary's answer the shadow is called.

Called at once, the shadow read ~5 % faster than the primary in an A/A run (two
copies of one version): the code both run was still warm in the CPU's caches
from the primary's call. Measured side by side in one run, the gap drawn per
request (A/A, 40 req/s, 3 runs of 30 s): 0 ms -4.6/-5.2/-4.4 %, 1 ms
-2.7/-3.5/-3.6 %, 5 ms -1.0/+0.8/-0.9 %, 15 ms +1.2/-0.5/+0.8 %. The caller is
answered before the gap starts, so it costs the caller nothing."""
UPSTREAM_TIMEOUT_S = 5.0
"""A slot that has not answered a request within this is failing it (hung, or slowed past use).

Shorter than the workload's own timeout (:data:`engine.parallel.workload.CLIENT_TIMEOUT_S`), so
a client always gets the gateway's 502 and the request is counted as failed, never lost."""


Answer = tuple[int, bytes, float, tuple[float, float] | None]
"""A slot's answer as the gateway saw it: status (0: none), body, latency_ms and (service_ms, cpu_wait_ms)."""


def service_time(headers: dict[str, str]) -> tuple[float, float] | None:
    """(service_ms, cpu_wait_ms) from a version's ``Server-Timing: app;dur=A, cpu-wait;dur=W`` header.

    ``service_ms`` is ``A - W``: the version's time on the request without the
    time its thread sat runnable waiting for a CPU, which is the machine's other
    load, not the version (:func:`engine.runtime.serve.cpu_wait_ns`). None when
    the header has no ``app`` duration.
    """
    found: dict[str, float] = {}
    for metric in headers.get("server-timing", "").split(","):
        name, _, params = metric.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                try:
                    found[name] = float(value)
                except ValueError:
                    continue
    if "app" not in found:
        return None
    waited = max(0.0, found.get("cpu-wait", 0.0))
    return max(0.0, found["app"] - waited), waited


def _error(kind: str, detail: str) -> bytes:
    return json.dumps({"error": {"kind": kind, "detail": detail}}).encode()


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        return False
    return True


def json_response(status: int, payload: Any) -> Response:
    return Response(status, json.dumps(payload).encode())


def digest(status: int, body: bytes) -> str:
    """Digest of a response by content, not bytes: key order in the JSON does not count as a difference."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.blake2b(str(status).encode() + b"|" + canonical, digest_size=8).hexdigest()


def write_segment(frame: pl.DataFrame, final: Path) -> None:
    """One Parquet segment, whole or absent: written under a temp name, then renamed.

    lz4, not zstd: measured 1.3x faster to write here for 1.6x the size, and
    samples are written far more often than they are archived.
    """
    temp = final.with_suffix(".parquet.tmp")
    frame.write_parquet(temp, compression="lz4")
    os.replace(temp, final)


def own_time(service: tuple[float, float] | None) -> dict[str, float | None]:
    """The ``service_ms`` and ``cpu_wait_ms`` columns of a sample row."""
    return {"service_ms": service[0], "cpu_wait_ms": service[1]} if service else {}


class SampleBuffer:
    """Column lists per (system, run) flushed as Parquet segments."""

    def __init__(self, samples_dir: Path):
        self.samples_dir = samples_dir
        self.columns: dict[tuple[str, str], dict[str, list[Any]]] = {}
        self.seq = itertools.count()
        self.written = 0

    def add(self, system: str, run_id: str, **row: Any) -> None:
        cols = self.columns.setdefault((system, run_id), {c: [] for c in SAMPLE_COLUMNS})
        cols["run_id"].append(run_id)
        for name in SAMPLE_COLUMNS:
            if name != "run_id":
                cols[name].append(row.get(name))

    def flush(self) -> int:
        """Write every buffered (system, run) as one segment each; returns rows written."""
        pending, self.columns = self.columns, {}
        rows = 0
        for (system, run_id), cols in pending.items():
            if not cols["ts"]:
                continue
            frame = pl.DataFrame(cols, schema=SAMPLE_COLUMNS)
            folder = self.samples_dir / f"system={system}" / f"run={run_id}"
            folder.mkdir(parents=True, exist_ok=True)
            write_segment(frame, folder / f"part-{os.getpid()}-{next(self.seq):06d}.parquet")
            rows += frame.height
        self.written += rows
        return rows


class Gateway:
    """The routing table, upstream pools, counters and the sample buffer."""

    def __init__(self, routes_file: Path, samples_dir: Path):
        self.routes_file = routes_file
        self.routes: dict[str, dict[str, Any]] = {}
        self.upstreams: dict[int, Upstream] = {}
        self.stats: dict[str, dict[str, dict[str, int]]] = {}
        self.samples = SampleBuffer(samples_dir)
        self.requests = RequestSample(samples_dir)  # real request bodies the gate replays
        self.request_ids = itertools.count(1)
        self.flush_lock = asyncio.Lock()
        self.examples: dict[str, int] = {}
        self.compared = Counter(
            "switchyard_gateway_mirror_compared_total", "Mirrored answers compared.", ("system",)
        )
        self.mismatched = Counter(
            "switchyard_gateway_mirror_mismatches_total", "Compared answers that differed.", ("system",)
        )
        self.reload()

    def reload(self) -> None:
        """Read the routes file and swap the table in one step; drop pools of ports no longer routed."""
        try:
            document = json.loads(self.routes_file.read_text())
        except FileNotFoundError:
            document = {"systems": {}}
        routes = document.get("systems", {})
        ports = {slot["port"] for r in routes.values() for slot in r.get("slots", {}).values()}
        self.routes = routes
        recording = {
            (r.get("samples_as", k), r["record_run"]) for k, r in routes.items() if r.get("record_run")
        }
        self.requests.configure(document.get("record_requests"), recording)
        for port in [p for p in self.upstreams if p not in ports]:
            self.upstreams.pop(port).close()

    def upstream(self, port: int) -> Upstream:
        pool = self.upstreams.get(port)
        if pool is None:
            pool = self.upstreams[port] = Upstream(LOOPBACK, port)
        return pool

    def count(self, system: str, slot: str, ok: bool) -> None:
        per = self.stats.setdefault(system, {}).setdefault(slot, {"requests": 0, "errors": 0})
        per["requests"] += 1
        per["errors"] += 0 if ok else 1

    async def forward(self, port: int, path: str, body: bytes) -> Answer:
        """The slot's :data:`Answer` (status, body, latency_ms, own time); no valid answer is status 0.

        No valid answer: the slot could not be reached, broke HTTP, did not
        answer within :data:`UPSTREAM_TIMEOUT_S` (a hung version), or said 200
        with a body that is not JSON (garbage). Each is an error in the
        samples, so the triggers see it, and a 502 to the client, never the
        garbage itself.
        """
        pool = self.upstream(port)
        start = time.perf_counter()
        headers: dict[str, str] = {}
        try:
            status, headers, payload = await pool.exchange("POST", path, body, timeout=UPSTREAM_TIMEOUT_S)
        except TimeoutError:
            status, payload = 0, _error("timeout", f"no answer within {UPSTREAM_TIMEOUT_S:g} s")
        except (HttpError, OSError) as exc:
            status, payload = 0, _error("unreachable", str(exc))
        latency_ms = (time.perf_counter() - start) * 1000  # the slot's time, not the gateway's checks
        if status == 200 and not _is_json(payload):
            status, payload = 0, _error("invalid_response", f"not JSON: {payload[:200]!r}")
        return status, payload, latency_ms, service_time(headers) if status else None

    async def mirrored(
        self, primary_port: int, shadow_port: int, path: str, body: bytes
    ) -> tuple[Answer, asyncio.Future[Answer]]:
        """Call the primary; the shadow is called once the primary has answered, never beside it.

        Returns the primary's answer and the shadow's call, started but not
        awaited: the caller is answered at once (its answer goes out before the
        shadow's request does) and the shadow's outcome is recorded when it ends.
        Mirroring costs the caller nothing, however slow or hung the shadow.

        Why not at once, as before: sent together, the two versions competed for
        the CPU and the gateway's loop, and each one's latency took in part of
        the other's work. Measured here (A/A: two copies of one v1 system, 2 busy
        cores, 40 req/s) the side sent second answered 1.75x slower than the side
        sent first, the p50 comparison read anything from -32 % to +14 % between
        identical versions, and a slower version slowed its partner down too,
        shrinking real differences. Called in turn, each sees the machine as it
        would alone. What is left is the position: the shadow's call runs while
        the caller takes in its answer. An A/A run has exactly these positions, so
        its reading is that bias, and the judge corrects for it
        (:mod:`engine.judge.calibration`). The shadow is called
        :data:`SHADOW_GAP_S` after the primary's answer, which takes most of that
        bias away at its source.
        """
        answer = await self.forward(primary_port, path, body)
        return answer, asyncio.ensure_future(self._shadow(shadow_port, path, body))

    async def _shadow(self, port: int, path: str, body: bytes) -> Answer:
        await asyncio.sleep(SHADOW_GAP_S)
        return await self.forward(port, path, body)

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/s/"):
            return await self.proxy(request)
        if path == "/_switchyard/health":
            return json_response(200, {"status": "ok", "pid": os.getpid(), "systems": sorted(self.routes)})
        if path == "/_switchyard/stats":
            in_flight = {str(p): u.in_flight for p, u in self.upstreams.items()}
            return json_response(200, {"systems": self.stats, "in_flight": in_flight})
        if path == "/metrics":
            return Response(200, self.metrics_text().encode(), content_type=CONTENT_TYPE)
        if path == "/_switchyard/reload" and request.method == "POST":
            self.reload()
            return json_response(200, {"systems": sorted(self.routes)})
        if path == "/_switchyard/flush" and request.method == "POST":
            rows = await self.flush()
            return json_response(200, {"rows": rows, "written": self.samples.written})
        return json_response(404, {"error": {"kind": "not_found", "detail": path}})

    def metrics_text(self) -> str:
        """The engine's decisions snapshot, then what the gateway itself counted."""
        labels = ("system", "slot")
        answered = Counter("switchyard_gateway_requests_total", "Requests answered per slot.", labels)
        failed = Counter("switchyard_gateway_errors_total", "Requests not answered with 200.", labels)
        for system, per_slot in self.stats.items():
            for slot, counts in per_slot.items():
                answered.inc(system, slot, amount=counts["requests"])
                failed.inc(system, slot, amount=counts["errors"])
        own = render([answered, failed, self.compared, self.mismatched])
        return read_and_render(self.routes_file.with_name("decisions.json")) + own

    async def proxy(self, request: Request) -> Response:
        parts = request.path.split("/", 4)  # ['', 's', system, 'call', endpoint]
        if len(parts) != 5 or parts[3] != "call" or request.method != "POST":
            return json_response(404, {"error": {"kind": "not_found", "detail": request.path}})
        system, endpoint = parts[2], parts[4]
        route = self.routes.get(system)
        if route is None:
            return json_response(404, {"error": {"kind": "unknown_system", "detail": system}})
        slots = route["slots"]
        active = route["active"]
        other = "green" if active == "blue" else "blue"
        primary = active
        if other in slots and route.get("canary_weight", 0) > 0 and random.random() < route["canary_weight"]:
            primary = other
        if primary not in slots:
            return json_response(
                502, {"error": {"kind": "no_slot", "detail": f"{system}: no {primary} slot"}}
            )
        shadow = other if route.get("mirror") and other in slots and primary == active else None
        upstream_path = f"/call/{endpoint}"
        ts = dt.datetime.now(dt.UTC)
        shadow_task = None
        if shadow:
            (status, body, latency, service), shadow_task = await self.mirrored(
                slots[primary]["port"], slots[shadow]["port"], upstream_path, request.body
            )
        else:
            status, body, latency, service = await self.forward(
                slots[primary]["port"], upstream_path, request.body
            )
        self.count(system, primary, status == 200)
        run_id = route.get("record_run")
        if run_id and status != 404:  # a 404 is an endpoint nobody serves: nothing to replay
            self.requests.add(route.get("samples_as", system), run_id, endpoint, request.body)
        if shadow_task is not None:
            shadow_task.add_done_callback(  # cancelled only when the gateway stops: nothing to record
                lambda t: (
                    None
                    if t.cancelled()
                    else self._record_pair(
                        system,
                        run_id,
                        endpoint,
                        ts,
                        route,
                        (primary, shadow),
                        (status, body, latency, service),
                        t.result(),
                    )
                )
            )
        elif run_id:
            self.samples.add(
                route.get("samples_as", system),
                run_id,
                ts=ts,
                request_id=next(self.request_ids),
                endpoint=endpoint,
                version=slots[primary]["version"],
                slot=primary,
                primary=True,
                status=status,
                ok=status == 200,
                latency_ms=latency,
                digest=digest(status, body),
                match=None,
                **own_time(service),
            )
        if status == 0:
            return Response(502, body)
        return Response(status, body)

    def _record_pair(
        self,
        system: str,
        run_id: str | None,
        endpoint: str,
        ts: dt.datetime,
        route: dict[str, Any],
        pair: tuple[str, str],
        primary_result: Answer,
        shadow_result: Answer,
    ) -> None:
        """Count the shadow's outcome and, during a run, record both sides with the comparison."""
        primary, shadow = pair
        self.count(system, shadow, shadow_result[0] == 200)
        if not run_id:
            return
        request_id = next(self.request_ids)
        digests = {primary: digest(*primary_result[:2]), shadow: digest(*shadow_result[:2])}
        same = digests[primary] == digests[shadow]
        self.compared.inc(system)
        self.mismatched.inc(system, amount=0 if same else 1)
        keep_body = not same and self.examples.get(run_id, 0) < MISMATCH_EXAMPLES
        if keep_body:
            self.examples[run_id] = self.examples.get(run_id, 0) + 1
        recorded_as = route.get("samples_as", system)  # an A/A route records under its system
        for slot, (status, body, latency, service) in ((primary, primary_result), (shadow, shadow_result)):
            version = route["slots"][slot]["version"]
            self.samples.add(
                recorded_as,
                run_id,
                ts=ts,
                request_id=request_id,
                endpoint=endpoint,
                version=version,
                slot=slot,
                primary=slot == primary,
                status=status,
                ok=status == 200,
                latency_ms=latency,
                digest=digests[slot],
                match=same if version == "new" else None,
                body=body[:BODY_LIMIT].decode(errors="replace") if keep_body else None,
                called_first=slot == primary,
                **own_time(service),
            )

    async def flush(self) -> int:
        """Write the buffered samples, and the request samples that changed; returns sample rows written."""
        async with self.flush_lock:
            due = self.requests.take()  # on the loop: no request changes it halfway
            rows = await asyncio.to_thread(self.samples.flush)
            if due:
                await asyncio.to_thread(self.write_requests, due)
        return rows

    def write_requests(self, due: Any) -> None:
        """Best effort: a request sample that cannot be written (disk full) must not stop the segments."""
        try:
            self.requests.write(due)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the flush loop and the samples go on
            print(f"gateway: recorded requests not written: {exc}", file=sys.stderr, flush=True)

    async def flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self.flush()


async def serve(routes_file: Path, samples_dir: Path, port: int) -> None:
    gateway = Gateway(routes_file, samples_dir)
    server = await start_server(gateway.handle, LOOPBACK, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    flusher = asyncio.create_task(gateway.flush_forever())
    await stop.wait()
    server.close()
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    gateway.samples.flush()  # nothing buffered is lost on a clean stop
    gateway.write_requests(gateway.requests.take(final=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.deploy.gateway")
    parser.add_argument("--routes", required=True, type=Path)
    parser.add_argument("--samples-dir", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--owner", default="", help="tag naming the workspace that started this process")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.routes, args.samples_dir, args.port))


if __name__ == "__main__":
    main()
