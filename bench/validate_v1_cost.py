"""What the sandbox costs the v1 validation of the whole sample fleet (52 systems), side by side.

"in process" runs the same checks the way the validator did before issue 15: the fleet's modules
imported into this process (which a module calling os._exit would end). "sandboxed" is
validate_v1_system: one confined child per system, forked from a warm worker, on a scratch copy of
the system folder. Alternates the two REPS times and prints the medians and their ratio.

Run: python -m bench.validate_v1_cost [REPS]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from engine.models.blueprint_v1 import load_v1_blueprint
from engine.sandbox import child
from engine.validate import v1
from engine.workspace import SAMPLE_FLEET_DIR


def in_process(folders: list[Path]) -> None:
    child._State.result_fd = child.os.open(child.os.devnull, child.os.O_WRONLY)  # emit() goes nowhere
    for folder in folders:
        blueprint = load_v1_blueprint(folder / "blueprint.yaml")
        v1.checks_in_child({"system_dir": str(folder), "blueprint": blueprint.model_dump(mode="json")})
    child.os.close(child._State.result_fd)
    child._State.result_fd = -1


def sandboxed(folders: list[Path]) -> None:
    for folder in folders:
        v1.validate_v1_system(folder)


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    folders = sorted(p for p in SAMPLE_FLEET_DIR.iterdir() if (p / "blueprint.yaml").is_file())
    sandboxed(folders[:1])  # the worker's start-up, paid once per process
    times: dict[str, list[float]] = {"in process": [], "sandboxed": []}
    for _ in range(reps):
        for label, run in (("in process", in_process), ("sandboxed", sandboxed)):
            start = time.perf_counter()
            run(folders)
            times[label].append(time.perf_counter() - start)
    medians = {label: statistics.median(t) for label, t in times.items()}
    for label, median in medians.items():
        each = median / len(folders) * 1000
        print(f"{label:>10}: {median:.2f} s for {len(folders)} systems ({each:.0f} ms each)")
    print(f"ratio sandboxed / in process: {medians['sandboxed'] / medians['in process']:.2f}")


if __name__ == "__main__":
    main()
