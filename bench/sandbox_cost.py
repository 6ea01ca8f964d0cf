"""What isolation costs per call: a fork from the sandbox's worker vs a fresh interpreter per call.

Both import one component module of the sample fleet through the engine's own loader (the work a v1
check does for each module). Prints the per-call times and their ratio.

Run: python -m bench.sandbox_cost [CALLS]
"""

from __future__ import annotations

import subprocess
import sys
import time

from engine.sandbox import run_isolated
from engine.workspace import REPO_ROOT, SAMPLE_FLEET_DIR

MODULE = SAMPLE_FLEET_DIR / "hello_world_api" / "components" / "greeter.py"
FRESH = (
    "import sys; from pathlib import Path; from engine.runtime.legacy import load_component_module; "
    "load_component_module(Path(sys.argv[1]))"
)


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    folder = MODULE.parent.parent
    run_isolated("engine.sandbox.targets:load_module", {"path": str(MODULE)}, timeout_s=10, memory_mb=256)
    start = time.perf_counter()
    for _ in range(calls):
        result = run_isolated(
            "engine.sandbox.targets:load_module",
            {"path": str(MODULE)},
            timeout_s=10,
            memory_mb=256,
            writable=[folder],
        )
        assert result.ok, result.failure
    sandboxed = (time.perf_counter() - start) / calls
    start = time.perf_counter()
    for _ in range(calls):
        subprocess.run([sys.executable, "-c", FRESH, str(MODULE)], check=True, cwd=REPO_ROOT)
    fresh = (time.perf_counter() - start) / calls
    print(f"sandboxed call (fork from the worker): {sandboxed * 1000:.1f} ms")
    print(f"fresh interpreter per call:            {fresh * 1000:.1f} ms")
    print(f"ratio sandboxed / fresh: {sandboxed / fresh:.3f}")


if __name__ == "__main__":
    main()
