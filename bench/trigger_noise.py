"""How often the mid-run latency/throughput triggers fire on noise, and how late on a real slow-down.

Run: python -m bench.trigger_noise [FILE.parquet ...] [--windows 3,5,10]

Replays stored real runs of an unchanged system (default: the two real runs of
``hello_world_api`` in tests/data/judge, 60 s and 30 s at 60 req/s on this busy
2-core machine) through :class:`engine.judge.running.RunningTriggers` as the watch
does: a watch of W seconds starting at every second of the run, a check per
1 s tick once new has 50 requests. Each start is one watch; a watch "fires"
when the latency or throughput trigger fires in it. On the same runs with new's
latencies multiplied by 3 (a real slow-down), it counts the watches that catch
it and the mean tick they fire at. Printed per policy variant: checks in a row
(``breach_checks``) and the p95's minimum sample (``min_p95_samples``).

Measured at 19:05 UTC 2026-12-04 (the two stored runs, 68-82 watches per length):
one check and no minimum (the seed's rule as the watch applied it) fired on
7/82 3 s watches, 10/78 5 s, 10/68 10 s; two checks with 100 requests on 1, 2,
2; three checks with 100 requests (the policy's default) on 0, 0, 0. Of the 3x
slow-downs, 10 s watches caught the same 16 of 20 (the other 4 start past the
end of the 30 s run) about 3 ticks later (tick 4.8 instead of 1.9); 3 s watches
cannot hold three checks over 100 requests at 60 req/s and caught none.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import polars as pl

from engine.judge.policy import Policy, TriggerPolicy
from engine.judge.running import CONFIRMED, RunningTriggers
from engine.parallel.run import MIN_TRIGGER_SAMPLES

RUNS = Path(__file__).resolve().parent.parent / "tests" / "data" / "judge"
DEFAULT_FILES = [RUNS / "hello_world_in_turns.parquet", RUNS / "hello_world_mirrored.parquet"]
VARIANTS = [(1, 1), (1, 100), (2, 1), (2, 100), (3, 100), (3, 200)]


def watch(frame: pl.DataFrame, start_s: int, window_s: int, policy: Policy, scale: float = 1.0) -> int | None:
    """The tick a latency/throughput trigger fires at in a watch over [start, start + window), or None."""
    first = frame["ts"].min()
    assert isinstance(first, dt.datetime)
    totals = RunningTriggers()
    for tick in range(1, window_s + 1):
        lo = first + dt.timedelta(seconds=start_s + tick - 1)
        hi = lo + dt.timedelta(seconds=1)
        batch = frame.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
        if scale != 1.0:
            slower = pl.when(pl.col("version") == "new").then(pl.col("latency_ms") * scale)
            batch = batch.with_columns(slower.otherwise(pl.col("latency_ms")).alias("latency_ms"))
        totals.add(batch)
        if totals.new.requests < MIN_TRIGGER_SAMPLES:
            continue
        if any(t.fired for t in totals.evaluate(policy, 0.9, 0) if t.name in CONFIRMED):
            return tick
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--windows", default="3,5,10", help="watch lengths in seconds")
    args = parser.parse_args()
    frames = [pl.read_parquet(f).select("ts", "version", "latency_ms", "ok") for f in args.files]
    for window in (int(w) for w in args.windows.split(",")):
        for checks, least in VARIANTS:
            policy = Policy(triggers=TriggerPolicy(breach_checks=checks, min_p95_samples=least))
            watches = noise = 0
            caught: list[int | None] = []
            for frame in frames:
                span = int((frame["ts"].max() - frame["ts"].min()).total_seconds())  # type: ignore[operator]
                for start in range(span - window):
                    watches += 1
                    noise += watch(frame, start, window, policy) is not None
                caught += [watch(frame, start, window, policy, scale=3.0) for start in range(0, 50, 5)]
            hits = [t for t in caught if t is not None]
            late = f"tick {sum(hits) / len(hits):.1f}" if hits else "-"
            print(
                f"W={window:2d} s  breach_checks={checks}  min_p95_samples={least:3d}:  "
                f"noise fired {noise}/{watches} ({noise / watches:.0%})  "
                f"3x slower caught {len(hits)}/{len(caught)} at {late}"
            )


if __name__ == "__main__":
    main()
