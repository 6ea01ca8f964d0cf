"""Judge time on 1 M samples per side (target < 1 s). Prints the figure and its ratio to the target.

Run: python -m bench.judge_speed [SAMPLES_PER_SIDE]
"""

from __future__ import annotations

import datetime as dt
import sys
import time

import numpy as np
import polars as pl

from engine.judge.policy import load_policy
from engine.judge.verdict import judge_samples

TARGET_S = 1.0


def make(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    start = np.datetime64(dt.datetime(2025, 8, 1), "us")
    ts = start + (np.arange(n) * (86_400_000_000 // n)).astype("timedelta64[us]")
    side = {"ts": ts, "endpoint": np.full(n, "e")}
    old = pl.DataFrame(
        {**side, "version": "old", "latency_ms": rng.lognormal(1, 0.3, n), "ok": rng.random(n) > 0.001}
    )
    new = pl.DataFrame(
        {**side, "version": "new", "latency_ms": rng.lognormal(1, 0.3, n), "ok": rng.random(n) > 0.001}
    )
    old = old.with_columns(pl.lit(None, pl.Boolean).alias("match"))
    new = new.with_columns(pl.Series("match", rng.random(n) > 0.0001))
    return pl.concat([old, new]).select("ts", "version", "latency_ms", "ok", "endpoint", "match")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    frame = make(n)
    policy = load_policy()
    judge_samples(frame.head(10_000), policy, validation_success_rate=0.9)  # warm-up
    start = time.perf_counter()
    verdict = judge_samples(frame, policy, validation_success_rate=0.9)
    elapsed = time.perf_counter() - start
    print(f"judge on {n:,} samples per side: {elapsed:.3f} s (verdict {verdict.verdict})")
    print(f"ratio to the 1 s target: {elapsed / TARGET_S:.2f} (<= 1.00 meets it)")


if __name__ == "__main__":
    main()
