"""Serve one system version as an HTTP/JSON service on 127.0.0.1 (one OS process per version).

``python -m engine.runtime.serve --system-dir DIR --runtime v1 --port P``

* ``GET /health``: 200 with ``{"status": "ok", "system": ..., "runtime": ...}``
* ``GET /endpoints``: the entry methods and the message shape each accepts
* ``POST /call/<endpoint>``: the JSON body is the message; the reply is the
  system's response, or 502 with ``{"error": {"kind", "target", "detail"}}``

Binding is to loopback only: a system under migration is never exposed beyond
this machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.models.blueprint_v1 import load_v1_blueprint
from engine.runtime.legacy import LegacySystem, RpcError

LOOPBACK = "127.0.0.1"


def legacy_app(system_dir: Path) -> Starlette:
    """A Starlette app serving a v1 system on the legacy RPC runtime."""
    blueprint = load_v1_blueprint(system_dir / "blueprint.yaml")
    system = LegacySystem.load(system_dir, blueprint)

    async def health(request: Request) -> JSONResponse:
        status = "ok" if not system.load_errors else "degraded"
        return JSONResponse(
            {
                "status": status,
                "system": blueprint.system.name,
                "runtime": "v1",
                "load_errors": system.load_errors,
            }
        )

    async def endpoints(request: Request) -> JSONResponse:
        return JSONResponse({"entry": system.entry, "endpoints": system.endpoints()})

    async def call(request: Request) -> JSONResponse:
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
            # Synchronous on purpose: the legacy runtime handles one call at a time, as the old RPC stack did.
            result = system.handle(endpoint, message)
        except RpcError as exc:
            error = {"kind": exc.kind, "target": exc.target, "detail": exc.detail}
            return JSONResponse({"error": error}, status_code=502)
        return JSONResponse(result)

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/endpoints", endpoints),
            Route("/call/{endpoint}", call, methods=["POST"]),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.runtime.serve")
    parser.add_argument("--system-dir", required=True, type=Path)
    parser.add_argument("--runtime", choices=["v1"], default="v1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    app = legacy_app(args.system_dir)
    uvicorn.run(app, host=LOOPBACK, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
