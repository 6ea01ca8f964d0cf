"""Reading a long run before and after its segments are compacted (store.samples.compact_run).

Run: python -m bench.compaction [--segments 10000] [--rps 50]

The gateway writes one segment a second, so a run of N seconds is N files; the
seed's 24 h run is 86 400 of them, whose evidence took 236 s to draw
(bench/page_speed_10m.py). This writes ``--segments`` one-second segments the
way the gateway does (``write_segment``, temp name then rename) at ``--rps``
mirrored requests a second, then times reading the whole run for the judge
(``read_run_samples``) and one aggregate query of the page (``query_run``)
before and after compaction, and the compaction itself. Prints seconds and
ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from engine.deploy.gateway import SAMPLE_COLUMNS, write_segment
from engine.store.samples import compact_run, query_run, read_run_samples, run_folder
from engine.workspace import Workspace

SYSTEM, RUN = "hello_world_api", "parallel-bench-compaction"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PER_BUCKET = "SELECT date_trunc('second', ts) AS bucket, version, count(*) AS n, quantile_cont(latency_ms, 0.5) AS p50 FROM s GROUP BY ALL"  # noqa: E501


def one_second(index: int, rps: int, rng: np.random.Generator) -> pl.DataFrame:
    """Second ``index`` of the run: ``rps`` requests, each answered by old and new."""
    n = 2 * rps
    offsets = np.repeat(np.sort(rng.integers(0, 1_000_000, rps)), 2)
    return pl.DataFrame(
        {
            "ts": [START + dt.timedelta(seconds=index, microseconds=int(o)) for o in offsets],
            "run_id": [RUN] * n,
            "request_id": np.repeat(np.arange(index * rps, (index + 1) * rps), 2),
            "endpoint": ["hello"] * n,
            "version": ["old", "new"] * rps,
            "slot": ["blue", "green"] * rps,
            "primary": [True, False] * rps,
            "status": [200] * n,
            "ok": [True] * n,
            "latency_ms": rng.lognormal(1.0, 0.3, n),
            "digest": ["d"] * n,
            "match": [None, True] * rps,
            "body": [None] * n,
            "called_first": [True, False] * rps,
            "service_ms": [None] * n,
            "cpu_wait_ms": [None] * n,
        },
        schema=SAMPLE_COLUMNS,
    )


def timed(what: Callable[[], object]) -> float:
    start = time.perf_counter()
    what()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=10_000)
    parser.add_argument("--rps", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory(prefix="switchyard-compaction-") as tmp:
        ws = Workspace(Path(tmp) / "ws")
        folder = run_folder(ws, SYSTEM, RUN)
        folder.mkdir(parents=True)
        for index in range(args.segments):
            write_segment(one_second(index, args.rps, rng), folder / f"part-1-{index:06d}.parquet")
        rows = 2 * args.rps * args.segments
        print(f"{args.segments} segments, {rows} samples ({args.segments / 3600:.1f} h at {args.rps} req/s)")
        before_read = timed(lambda: read_run_samples(ws, SYSTEM, RUN))
        before_query = timed(lambda: query_run(ws, SYSTEM, RUN, PER_BUCKET))
        compaction = timed(lambda: compact_run(ws, SYSTEM, RUN))
        after_read = timed(lambda: read_run_samples(ws, SYSTEM, RUN))
        after_query = timed(lambda: query_run(ws, SYSTEM, RUN, PER_BUCKET))
        print(f"compaction itself: {compaction:.2f} s")
        print(
            f"read the run for the judge: {before_read:.2f} s -> {after_read:.2f} s "
            f"({before_read / after_read:.0f}x faster)"
        )
        print(
            f"per-bucket query of the page: {before_query:.2f} s -> {after_query:.2f} s "
            f"({before_query / after_query:.0f}x faster)"
        )


if __name__ == "__main__":
    main()
