"""Judge time on 1 M samples per side (target < 1 s), paired and unpaired, beside an earlier judge.

Run: python -m bench.judge_speed [SAMPLES_PER_SIDE] [--against REV] [--rounds 3]

The frame is a mirrored run: request ids, five endpoints, lognormal
latencies, 0.1 % errors. "paired" judges its round trip alone (no ``service_ms``),
"own" each version's own time with the round trip as a guard beside it (what a
gateway run now records), "unpaired" the round trip without the ids. With
``--against`` the judge of git revision REV (default: the last one before
the paired analysis) judges the same frames in a subprocess, in turns with
this one, so both see the same machine load; the ratio is the comparison to
trust on a busy machine, the seconds are what a lead waits.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

TARGET_S = 1.0
BEFORE = "58f6cea"
"""The judge before issue 16's paired analysis (independent samples, per-bucket throughput)."""

TIMER = """
import sys, time, polars as pl
from engine.judge.policy import load_policy
from engine.judge.verdict import judge_samples
frame = pl.read_parquet(sys.argv[1])
if sys.argv[2] != "own":
    frame = frame.drop("service_ms")
if sys.argv[2] == "unpaired":
    frame = frame.with_columns(pl.lit(None, pl.Int64).alias("request_id"))
policy = load_policy()
judge_samples(frame.head(10_000), policy, validation_success_rate=0.9)
start, cpu = time.perf_counter(), time.process_time()
verdict = judge_samples(frame, policy, validation_success_rate=0.9)
print(time.perf_counter() - start, time.process_time() - cpu, verdict.verdict)
"""


def make(n: int) -> pl.DataFrame:
    """A mirrored run of ``n`` requests: both versions' rows of a request share its ts and id."""
    rng = np.random.default_rng(0)
    start = np.datetime64(dt.datetime(2025, 8, 1), "us")
    ts = start + (np.arange(n) * (86_400_000_000 // n)).astype("timedelta64[us]")
    endpoint = rng.choice(["/orders", "/users", "/search", "/health", "/cart"], n)
    side = {"ts": ts, "endpoint": endpoint, "request_id": np.arange(n)}
    shared = rng.lognormal(1, 0.3, n)
    old = pl.DataFrame(
        {
            **side,
            "version": "old",
            "latency_ms": shared * rng.lognormal(0, 0.2, n),
            "service_ms": 0.2 * shared * rng.lognormal(0, 0.2, n),
            "ok": rng.random(n) > 0.001,
        }
    )
    new = pl.DataFrame(
        {
            **side,
            "version": "new",
            "latency_ms": shared * rng.lognormal(0, 0.2, n),
            "service_ms": 0.2 * shared * rng.lognormal(0, 0.2, n),
            "ok": rng.random(n) > 0.001,
        }
    )
    old = old.with_columns(pl.lit(None, pl.Boolean).alias("match"))
    new = new.with_columns(pl.Series("match", rng.random(n) > 0.0001))
    columns = ["ts", "version", "latency_ms", "ok", "endpoint", "match", "request_id", "service_ms"]
    return pl.concat([old.select(columns), new.select(columns)]).sort("ts", maintain_order=True)


def timed(source: Path, frame_file: Path, mode: str) -> tuple[float, float, str]:
    """Wall and CPU seconds one judgement took under the engine at ``source``, in a fresh interpreter.

    On a machine shared with other work the wall time is mostly waiting for a
    core; the CPU time (all threads) is what the judgement costs.
    """
    out = subprocess.run(
        [sys.executable, "-c", TIMER, str(frame_file), mode],
        cwd=source,
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"PYTHONPATH": str(source)},
    ).stdout.split()
    return float(out[0]), float(out[1]), out[2]


def checkout(rev: str, into: Path) -> Path:
    """The ``engine`` package and policy of ``rev`` under ``into`` (git archive, nothing else touched)."""
    root = Path(__file__).resolve().parents[1]
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev, "engine", "data"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--against", default=BEFORE, help="git revision to compare with ('' for none)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        frame_file = Path(tmp) / "samples.parquet"
        make(args.n).write_parquet(frame_file)
        before = checkout(args.against, Path(tmp) / "before") if args.against else None
        for mode in ("paired", "own", "unpaired"):
            now, cpu, then, then_cpu, verdicts = [], [], [], [], set()
            for _ in range(args.rounds):  # in turns, so both see the same load
                seconds, cpu_seconds, verdict = timed(here, frame_file, mode)
                now.append(seconds)
                cpu.append(cpu_seconds)
                verdicts.add(verdict)
                if before is not None:
                    wall, cpu_before, _ = timed(before, frame_file, mode)
                    then.append(wall)
                    then_cpu.append(cpu_before)
            m = statistics.median
            line = f"{mode:8s} judge on {args.n:,} samples per side: wall {m(now):.3f} s, cpu {m(cpu):.3f} s"
            line += (
                f" (median of {args.rounds}; verdict {'/'.join(sorted(verdicts))}; target {TARGET_S:.0f} s)"
            )
            if then:
                line += f"; {args.against}: wall {m(then):.3f} s, cpu {m(then_cpu):.3f} s"
                line += f", ratio wall {m(now) / m(then):.2f}, cpu {m(cpu) / m(then_cpu):.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
