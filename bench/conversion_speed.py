"""Issue 4's figures: fleet convert+validate time (target < 10 s) and port vs RPC runtime throughput.

Run: python -m bench.conversion_speed [REQUESTS_PER_SYSTEM]

Throughput is measured in-process (no HTTP) on the same request load for
both runtimes, so the ratio compares the runtimes, not the web server. The
seed's KPI target is +20 % throughput for port-based (ratio >= 1.2).

Conversion probes each system's code in a sandbox (recipe or hosted code,
:mod:`engine.convert.probe`), and the gate runs v1 and v2 side by side in
sandboxes, so the fleet figure now includes both. ``auth_token_api`` keeps its
Authenticator's code (hosted): its line is what hosting costs per request.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import anyio

from engine.convert.converter import convert_blueprint
from engine.convert.probe import probe_code
from engine.convert.writer import write_v2_system
from engine.models import load_v1_blueprint, load_v2_blueprint
from engine.runtime.legacy import LegacySystem, example_message
from engine.runtime.port_system import PortSystem
from engine.validate.gate import validate_v2_dir
from engine.workspace import SAMPLE_FLEET_DIR

SYSTEMS = (
    "todo_api_system",
    "hello_world_api",
    "simple_rest_api",
    "data_processing_geo_enricher",
    "auth_token_api",
)


def converted(d: Path, out: Path) -> Path:
    v1 = load_v1_blueprint(d / "blueprint.yaml")
    return write_v2_system(convert_blueprint(v1, d, *probe_code(v1, d)), out)


def fleet_convert_and_validate() -> tuple[float, float]:
    """Seconds to convert the whole fleet, and to run the gate on it."""
    convert_s = validate_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for d in sorted(p for p in SAMPLE_FLEET_DIR.iterdir() if p.is_dir()):
            start = time.perf_counter()
            folder = converted(d, Path(tmp))
            middle = time.perf_counter()
            validate_v2_dir(folder, d)
            convert_s, validate_s = convert_s + middle - start, validate_s + time.perf_counter() - middle
    return convert_s, validate_s


def throughput(name: str, requests: int) -> tuple[float, float, float]:
    """Requests/s on RPC (one caller), port (one caller, same loop) and port (all requests at once)."""
    d = SAMPLE_FLEET_DIR / name
    v1 = load_v1_blueprint(d / "blueprint.yaml")
    legacy = LegacySystem.load(d, v1)
    folder = converted(d, Path(tempfile.mkdtemp()))
    port = PortSystem(load_v2_blueprint(folder / "blueprint.yaml"), folder / "components")
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
    convert_s, validate_s = fleet_convert_and_validate()
    elapsed = convert_s + validate_s
    print(
        f"convert ({convert_s:.1f} s) + validate ({validate_s:.1f} s) the whole fleet (52 systems): "
        f"{elapsed:.2f} s; ratio to the 10 s target {elapsed / 10:.2f} (<= 1.00 meets it)"
    )
    for name in SYSTEMS:
        v1_rps, v2_rps, v2_burst = throughput(name, requests)
        print(
            f"{name:32s} RPC {v1_rps:8.0f} req/s   port {v2_rps:8.0f} req/s (all at once {v2_burst:6.0f})  "
            f"ratio {v2_rps / v1_rps:.2f} (target >= 1.20)"
        )


if __name__ == "__main__":
    main()
