"""Time to draw each page (target < 2 s), measured with AppTest on the sample fleet, converted and validated.

Run: python -m bench.page_speed [REPETITIONS]

Each page file in ``pages/`` is run on its own (``AppTest.from_file``), as
the tests do, in a fresh initialised workspace where the whole fleet has
been converted and validated, so the Conversion and Validation pages have
their reports, charts and tables to draw. The first run of each page is a
warm-up (imports, caches) and is not counted; the median of the others is
printed with its ratio to the 2 s budget.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine import access, services
from engine.workspace import REPO_ROOT, WORKSPACE_ENV, Workspace

TARGET_S = 2.0
PAGES = sorted(p for p in (REPO_ROOT / "pages").glob("*.py") if not p.name.startswith("_"))


def prepare(root: Path) -> Workspace:
    ws = Workspace(root)
    services.init_workspace(ws, actor="bench")
    access.write_roles(ws, access.Roles(operators=["bench", services.default_actor()]))
    names = services.select_systems(ws, all_systems=True)
    services.convert_systems(ws, names, actor="bench")
    services.validate_systems_v2(ws, names, actor="bench")
    return ws


def time_page(page: Path, repetitions: int) -> list[float]:
    times = []
    for _ in range(repetitions + 1):
        at = AppTest.from_file(str(page), default_timeout=60)
        start = time.perf_counter()
        at.run(timeout=60)
        times.append(time.perf_counter() - start)
        if at.exception:
            raise SystemExit(f"{page.name} raised: {at.exception[0].message}")
    return times[1:]


def main() -> None:
    # AppTest outside `streamlit run` warns on every run that it has no script context; it is expected here
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage()
    )
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        ws = prepare(Path(tmp) / "ws")
        os.environ[WORKSPACE_ENV] = str(ws.root)
        print(f"workspace: 52 systems converted and validated in {time.perf_counter() - started:.1f} s")
        worst = 0.0
        for page in PAGES:
            median = statistics.median(time_page(page, repetitions))
            worst = max(worst, median)
            print(f"{page.name:<16} median {median:6.3f} s   ratio to the 2 s budget {median / TARGET_S:.2f}")
        print(f"slowest page: ratio {worst / TARGET_S:.2f} (<= 1.00 meets it; median of {repetitions} runs)")


if __name__ == "__main__":
    main()
