"""Page, KPI and judge speed on a workspace of 10 M samples (or 1 M ... 100 M): cold and warm, apart.

Run: python -m bench.page_speed_10m [REPETITIONS] [--samples N] [--scale 1000000,10000000,100000000]
     [--pages standup,go_no_go,...] [--data-dir DIR] [--any-day] [--no-judge] [--no-process]

The workspace is :mod:`bench.big_workspace` (built once, then cached outside
the repo): the sample fleet with eight days of migration history and N
parallel-run samples, a third of them in the 24 h run of ``hello_world_api``,
which the Go / No-Go page opens on; every run ended as the engine ends one
(compacted, its aggregates stored).

What is timed, each the median of REPETITIONS (default 5):

* pages, **cold**: a new session after ``st.cache_data.clear()`` (and the
  pages' own chart cache, :func:`pages._charts.glance_chart`): what the first
  visitor of the morning (or the first after any write) waits for; the page's
  script time inside AppTest as app.py draws it, in one store connection
  (:data:`bench.page_speed.TIMED_PAGE`), with AppTest's wall time beside it
  (AppTest alone adds 0.2-0.3 s around an empty page here). Target < 1 s.
* pages, **new process**: the same in a process that has only started
  Streamlit, once per page (``--no-process`` leaves it out): the first visitor
  after the server starts also pays the imports (engine, polars, plotly,
  DuckDB) and the workspace's start-up check. No target; printed beside.
* pages, **warm**: a new session while the cache holds the page's views
  (every later visitor until the store changes). Target < 0.3 s. The ratio
  cold / warm is printed: both are taken in the same run, so the machine's
  load weighs on both alike.
* ``services.kpis`` and ``services.overview``: called directly; the engine
  caches nothing, so every call is cold. Target < 0.3 s.
* the judge, **in process**: ``services.judge_system`` on the 24 h run, from
  reading the run's file on disk to the recorded verdict, and **the CLI**:
  ``python -m engine judge hello_world_api`` in a new process, start-up and
  imports included. Both on a scratch copy of the store (the samples shared,
  read only), so the cached workspace keeps its history.

With ``--scale`` the same figures are taken on each size and printed as a
table with the growth from one size to the next: pages and KPIs read
aggregates, whose size follows the runs' duration and bucket count, not the
samples, so they should stay flat; the judge reads every sample of the run.
Nothing is asserted (speed targets live here, not in tests); the machine's
load average is printed before and after, as the figures depend on it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from bench import big_workspace
from bench.page_speed import quiet_apptest, time_page
from engine import services
from engine.workspace import REPO_ROOT, WORKSPACE_ENV, Workspace
from pages import _charts

PAGE_TARGET_S = 1.0
WARM_TARGET_S = KPI_TARGET_S = 0.3
PAGES = (
    *("standup", "go_no_go", "timeline", "risks", "report"),  # these read samples (through aggregates)
    *("audit", "inventory", "conversion", "validation"),
)
JUDGED = "hello_world_api"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


@dataclass
class Figures:
    """Medians (seconds) for one workspace; ``walls`` is AppTest's wall time beside each page's script."""

    samples: int
    cold: dict[str, float] = field(default_factory=dict)
    warm: dict[str, float] = field(default_factory=dict)
    walls: dict[str, float] = field(default_factory=dict)
    fresh: dict[str, float] = field(default_factory=dict)
    calls: dict[str, float] = field(default_factory=dict)


def clear_caches() -> None:
    """What a write (or the cache's TTL) empties: the pages' cached views and their cached charts."""
    st.cache_data.clear()
    _charts.glance_chart_cache_clear()


FRESH_PROCESS = """
import json, logging, sys, time
from streamlit.testing.v1 import AppTest
from bench import _timings
from bench.page_speed import TIMED_PAGE, quiet_apptest
quiet_apptest()
AppTest.from_string("import streamlit as st\\nst.write('up')").run(timeout=60)  # the server is up
at = AppTest.from_string(TIMED_PAGE.format(path=sys.argv[1]), default_timeout=120)
at.run(timeout=120)
print(json.dumps({"script_s": _timings.script_seconds[-1], "error": bool(at.exception)}))
"""
"""One page in a process that has only started Streamlit: its imports and the workspace check included."""


def fresh_process(path: Path) -> float | None:
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(path)], capture_output=True, text=True, cwd=REPO_ROOT
    )
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        print(f"  {path.name} in a new process: {done.stderr.strip()[-300:]}")
        return None
    return None if result["error"] else float(result["script_s"])


def measure_pages(figures: Figures, pages: list[str], repetitions: int, *, process: bool) -> None:
    for name in pages:
        path = REPO_ROOT / "pages" / f"{name}.py"
        try:
            cold = []
            for _ in range(repetitions):
                clear_caches()
                cold.append(time_page(path, 0)[0])
            warm = time_page(path, repetitions)[1:]  # the first run of these is cold again: left out
        except SystemExit as exc:  # a page broken by work in progress: say so, measure the others
            print(f"  {name}.py: {exc}")
            continue
        figures.cold[name] = statistics.median(r.script_s for r in cold)
        figures.warm[name] = statistics.median(r.script_s for r in warm)
        figures.walls[name] = statistics.median(r.wall_s for r in cold)
        fresh = fresh_process(path) if process else None
        if fresh is not None:
            figures.fresh[name] = fresh


def scratch_copy(ws: Workspace, into: Path) -> Workspace:
    """The workspace's store and files copied into ``into``, its samples shared (the judge reads them)."""
    root = into / "ws"
    root.mkdir(parents=True)
    for entry in ws.root.iterdir():
        target = root / entry.name
        if entry.name == "samples":
            target.symlink_to(entry, target_is_directory=True)
        elif entry.is_dir():
            shutil.copytree(entry, target, symlinks=True)
        else:
            shutil.copy2(entry, target)
    return Workspace(root)


def measure_judge(figures: Figures, ws: Workspace, repetitions: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        copy = scratch_copy(ws, Path(tmp))
        actor = services.default_actor()
        inside = [timed(lambda: services.judge_system(copy, JUDGED, actor=actor)) for _ in range(repetitions)]
        command = [sys.executable, "-m", "engine", "--workspace", str(copy.root), "judge", JUDGED]
        cli = []
        for _ in range(max(1, repetitions // 2)):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=REPO_ROOT)
            cli.append(time.perf_counter() - start)
    figures.calls["judge (in process)"] = statistics.median(inside)
    figures.calls["judge (CLI command)"] = statistics.median(cli)


def measure(samples: int, args: argparse.Namespace) -> Figures:
    started = time.perf_counter()
    ws, built = big_workspace.cached(samples, args.segment_s, data_dir=args.data_dir, any_day=args.any_day)
    files = sum(1 for _ in ws.samples_dir.glob("system=*/run=*/part-*.parquet"))
    print(
        f"workspace {ws.root}: {big_workspace.sample_count(ws):,} samples in {files:,} files "
        f"({'built' if built else 'cached'}, {time.perf_counter() - started:.1f} s)"
    )
    os.environ[WORKSPACE_ENV] = str(ws.root)
    services.ensure_initialised(ws, actor="bench")  # a pending store migration is paid here, not by a page
    figures = Figures(samples)
    reps = args.repetitions
    figures.calls["services.kpis"] = statistics.median(timed(lambda: services.kpis(ws)) for _ in range(reps))
    overview = [timed(lambda: services.overview(ws)) for _ in range(reps)]
    figures.calls["services.overview"] = statistics.median(overview)
    measure_pages(figures, args.pages, reps, process=not args.no_process)
    if not args.no_judge:
        measure_judge(figures, ws, reps)
    return figures


def ratio(value: float, target: float) -> str:
    return f"{value:7.3f} s ({value / target:4.2f})"


def print_one(figures: Figures) -> None:
    print(f"\n{figures.samples:,} samples; ratios to the target in brackets (<= 1.00 meets it)")
    for name, value in figures.calls.items():
        target = KPI_TARGET_S if name.startswith("services") else None
        print(f"  {name:<22} {ratio(value, target) if target else f'{value:7.3f} s'}")
    print(
        f"  {'page':<22} {'cold (target 1 s)':<22} {'warm (target 0.3 s)':<22} {'cold/warm':>9} "
        f"{'AppTest wall, cold':>19} {'new process':>12}"
    )
    for name in figures.cold:
        cold, warm = figures.cold[name], figures.warm[name]
        fresh = f"{figures.fresh[name]:10.3f} s" if name in figures.fresh else f"{'-':>12}"
        print(
            f"  {name + '.py':<22} {ratio(cold, PAGE_TARGET_S):<22} {ratio(warm, WARM_TARGET_S):<22} "
            f"{cold / warm:8.1f}x {figures.walls[name]:17.3f} s {fresh}"
        )
    if figures.cold:
        slowest = max(figures.cold, key=figures.cold.__getitem__)
        print(f"  slowest cold page: {slowest}.py, ratio {figures.cold[slowest] / PAGE_TARGET_S:.2f}")


def print_scale(all_figures: list[Figures]) -> None:
    """Each figure at each size, and how it grew from one size to the next (x)."""
    sizes = [f"{f.samples / 1e6:g} M" for f in all_figures]
    print("\nscale: seconds (median) per size, and growth from the size before\n")
    header = f"  {'figure':<26}" + "".join(f"{s:>10}" for s in sizes)
    header += "".join(f"{a + ' -> ' + b:>16}" for a, b in zip(sizes, sizes[1:], strict=False))
    print(header)
    rows = [(k, "calls") for k in all_figures[0].calls] + [(k, "cold") for k in all_figures[0].cold]
    rows += [(k, "warm") for k in all_figures[0].warm] + [(k, "fresh") for k in all_figures[0].fresh]
    for key, kind in rows:
        values = [getattr(f, kind).get(key) for f in all_figures]
        label = key if kind == "calls" else f"{key}.py {'new process' if kind == 'fresh' else kind}"
        line = f"  {label:<26}" + "".join(f"{v:10.3f}" if v is not None else f"{'-':>10}" for v in values)
        for a, b in zip(values, values[1:], strict=False):
            line += f"{b / a:15.2f}x" if a and b else f"{'-':>16}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repetitions", nargs="?", type=int, default=5)
    parser.add_argument("--samples", type=int, default=big_workspace.SAMPLES)
    parser.add_argument("--scale", help="comma-separated sample counts, e.g. 1000000,10000000,100000000")
    parser.add_argument("--segment-s", type=float, default=big_workspace.SEGMENT_S)
    parser.add_argument("--pages", type=lambda s: s.split(","), default=list(PAGES))
    parser.add_argument("--no-judge", action="store_true", help="pages and KPIs only")
    parser.add_argument("--no-process", action="store_true", help="leave out the pages in a new process")
    big_workspace.add_data_options(parser)
    args = parser.parse_args()
    quiet_apptest()
    # imports and Streamlit's own start-up are paid once here, not by the first page measured
    warm_up = "import plotly.graph_objects, polars, streamlit as st\nst.write('warm')"
    AppTest.from_string(warm_up).run(timeout=60)
    print(load())
    sizes = [int(float(s)) for s in args.scale.split(",")] if args.scale else [args.samples]
    all_figures = []
    for samples in sizes:
        all_figures.append(measure(samples, args))
        print_one(all_figures[-1])
    if len(all_figures) > 1:
        print_scale(all_figures)
    print(f"\n{load()}")


if __name__ == "__main__":
    main()
