"""Time to draw each page (target < 2 s), measured with AppTest on the sample fleet, converted and validated.

Run: python -m bench.page_speed [REPETITIONS]

Each page file in ``pages/`` is run on its own in AppTest, as the tests do
(through :data:`TIMED_PAGE`, which also keeps the script's own time), in a
fresh initialised workspace where the whole fleet has
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
from dataclasses import dataclass
from pathlib import Path

from streamlit.testing.v1 import AppTest

from bench import _timings
from engine import access, services
from engine.workspace import REPO_ROOT, WORKSPACE_ENV, Workspace

TARGET_S = 2.0
PAGES = sorted(p for p in (REPO_ROOT / "pages").glob("*.py") if not p.name.startswith("_"))


def prepare(root: Path, operators: list[str] | None = None) -> Workspace:
    """A new workspace at ``root`` on the sample fleet, every system converted and validated."""
    ws = Workspace(root)
    services.init_workspace(ws, actor="bench")
    access.write_roles(ws, access.Roles(operators=operators or ["bench", services.default_actor()]))
    names = services.select_systems(ws, all_systems=True)
    services.convert_systems(ws, names, actor="bench")
    services.validate_systems_v2(ws, names, actor="bench")
    return ws


TIMED_PAGE = """
import runpy, time
from bench import _timings
from engine import services
from engine.workspace import Workspace
started = time.perf_counter()
try:
    with services.one_connection(Workspace.at()):  # as app.py draws every page
        runpy.run_path({path!r}, run_name="__main__")
finally:  # st.stop() ends a page by raising; the session state is closed by then
    _timings.script_seconds.append(time.perf_counter() - started)
"""
"""Runs a page inside AppTest as app.py runs it (inside one store connection), and keeps how long its
script took, without AppTest's own work around it."""


@dataclass(frozen=True)
class PageRun:
    wall_s: float
    """``AppTest.run()`` as a whole: the script plus AppTest's thread, messages and element tree."""
    script_s: float
    """The page's script alone, from its first line to its last (Streamlit calls included)."""


def time_page(page: Path, repetitions: int) -> list[PageRun]:
    """``repetitions + 1`` runs of the page, each a new session (AppTest); the first included."""
    runs = []
    for _ in range(repetitions + 1):
        at = AppTest.from_string(TIMED_PAGE.format(path=str(page)), default_timeout=120)
        _timings.script_seconds.clear()
        start = time.perf_counter()
        at.run(timeout=120)
        wall = time.perf_counter() - start
        if at.exception:
            raise SystemExit(f"{page.name} raised: {at.exception[0].message}")
        runs.append(PageRun(wall_s=wall, script_s=_timings.script_seconds[-1]))
    return runs


def quiet_apptest() -> None:
    """AppTest outside `streamlit run` warns that it has no script context, or runtime; expected here."""
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage()
    )
    logging.getLogger("streamlit.runtime.caching.cache_data_api").addFilter(
        lambda record: "No runtime found" not in record.getMessage()
    )


def main() -> None:
    quiet_apptest()
    repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        ws = prepare(Path(tmp) / "ws")
        os.environ[WORKSPACE_ENV] = str(ws.root)
        print(f"workspace: 52 systems converted and validated in {time.perf_counter() - started:.1f} s")
        worst = 0.0
        for page in PAGES:
            median = statistics.median(r.wall_s for r in time_page(page, repetitions)[1:])
            worst = max(worst, median)
            print(f"{page.name:<16} median {median:6.3f} s   ratio to the 2 s budget {median / TARGET_S:.2f}")
        print(f"slowest page: ratio {worst / TARGET_S:.2f} (<= 1.00 meets it; median of {repetitions} runs)")


if __name__ == "__main__":
    main()
