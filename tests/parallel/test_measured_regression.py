"""A real regression, measured for real, gets NO_GO: old against a copy of old that sleeps 10 ms more.

The measurement path only (two served v1 processes, the gateway mirroring one to
the other, the workload at 40 req/s), then the judge under the shipped policy.
The slowed copy answers exactly what old answers, so only latency tells them apart.
10 ms, not less: on these 2 cores, busy with other work, old itself took up to 20-30 ms
at p50, and a 3 ms regression was then inside the 10 % margin.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from bench.aa_calibration import ROOT, SYSTEM, mirrored_samples, serve, slowed_copy
from engine.judge.policy import DEFAULT_POLICY, load_policy
from engine.judge.samples import normalise_samples
from engine.judge.verdict import judge_samples


def test_a_copy_of_old_that_sleeps_10_ms_more_gets_no_go_on_its_latency(tmp_path: Path) -> None:
    procs = [serve(SYSTEM), serve(slowed_copy(SYSTEM, tmp_path / "slow", delay_s=0.010))]
    try:
        samples = mirrored_samples(ROOT, (procs[0][1], procs[1][1]), 40, 10, tmp_path)
    finally:
        for proc, _ in procs:
            proc.terminate()
    new = samples.filter(pl.col("version") == "new")
    assert new.height >= 350 and new["ok"].all() and new["match"].all()  # slower, never wrong

    frame = normalise_samples(samples.select("ts", "version", "latency_ms", "ok", "endpoint", "match"))
    verdict = judge_samples(frame, load_policy(DEFAULT_POLICY), validation_success_rate=1.0, bucket_s=1.0)
    assert verdict.verdict == "NO_GO", verdict.reasons
    latency = next(c for c in verdict.criteria if c.name == "latency_increase")
    assert not latency.passed and latency.conclusive and latency.ci_low > 0.10  # its whole interval is bad
