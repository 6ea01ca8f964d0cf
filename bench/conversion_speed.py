"""Issue 4's figures: fleet convert+validate time (target < 10 s) and port vs RPC runtime throughput.

Run: python -m bench.conversion_speed [REQUESTS_PER_SYSTEM]

Throughput is measured in-process (no HTTP) on the same request load for
both runtimes, so the ratio compares the runtimes, not the web server. The
seed's KPI target is +20 % throughput for port-based (ratio >= 1.2).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import anyio

from engine.convert.converter import convert_blueprint
from engine.convert.writer import write_v2_system
from engine.models import load_v1_blueprint
from engine.runtime.legacy import LegacySystem, example_message
from engine.runtime.port_system import PortSystem
from engine.validate.gate import validate_v2_dir
from engine.workspace import SAMPLE_FLEET_DIR

SYSTEMS = ("todo_api_system", "hello_world_api", "simple_rest_api", "data_processing_geo_enricher")


def fleet_convert_and_validate() -> float:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for d in sorted(p for p in SAMPLE_FLEET_DIR.iterdir() if p.is_dir()):
            folder = write_v2_system(convert_blueprint(load_v1_blueprint(d / "blueprint.yaml"), d), Path(tmp))
            validate_v2_dir(folder)
    return time.perf_counter() - start


def throughput(name: str, requests: int) -> tuple[float, float, float]:
    """Requests/s on RPC (one caller), port (one caller, same loop) and port (all requests at once)."""
    d = SAMPLE_FLEET_DIR / name
    v1 = load_v1_blueprint(d / "blueprint.yaml")
    legacy = LegacySystem.load(d, v1)
    port = PortSystem(convert_blueprint(v1, d).blueprint)
    endpoints = sorted(port.endpoints().items())
    load = [
        (ep, example_message(shape)) for i in range(requests) for ep, shape in [endpoints[i % len(endpoints)]]
    ]
    start = time.perf_counter()
    for ep, msg in load:
        legacy.handle(ep, msg)
    v1_rps = requests / (time.perf_counter() - start)

    async def drive() -> tuple[float, float]:
        async with port.running():
            t0 = time.perf_counter()
            for ep, msg in load:
                await port.handle(ep, msg)
            sequential = requests / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for ep, msg in load:
                    tg.start_soon(port.handle, ep, msg)
            return sequential, requests / (time.perf_counter() - t0)

    return (v1_rps, *anyio.run(drive))


def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    elapsed = fleet_convert_and_validate()
    print(
        f"convert + validate the whole fleet (52 systems): {elapsed:.2f} s; ratio to the 10 s target "
        f"{elapsed / 10:.2f} (<= 1.00 meets it)"
    )
    for name in SYSTEMS:
        v1_rps, v2_rps, v2_burst = throughput(name, requests)
        print(
            f"{name:32s} RPC {v1_rps:8.0f} req/s   port {v2_rps:8.0f} req/s (all at once {v2_burst:6.0f})  "
            f"ratio {v2_rps / v1_rps:.2f} (target >= 1.20)"
        )


if __name__ == "__main__":
    main()
