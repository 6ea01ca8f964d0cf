"""Paired judgement (issue 16 point 1): mirrored requests compared with themselves, throughput as served
over offered; without request ids the independent-samples analysis, where equal served counts are no loss."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bench.judge_power import BUSY, SCENARIOS, simulate_run
from engine.judge.model import Verdict
from engine.judge.policy import Policy, load_policy
from engine.judge.samples import read_samples_file
from engine.judge.verdict import judge_samples

REAL_RUN = Path(__file__).parents[1] / "data" / "judge" / "hello_world_mirrored.parquet"
"""A real mirrored run of hello_world_api v1 -> v2 on this machine (1,800 requests at 60/s, the gateway's
samples as it wrote them), not generated: load from other work slowed both versions at once."""


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def judge(frame: pl.DataFrame, policy: Policy) -> Verdict:
    return judge_samples(frame, policy, validation_success_rate=1.0)


def criterion(verdict: Verdict, name: str):
    return next(c for c in verdict.criteria if c.name == name)


def width(verdict: Verdict, name: str) -> float:
    c = criterion(verdict, name)
    return c.ci_high - c.ci_low


def drop_ids(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.lit(None, pl.Int64).alias("request_id"))


def test_a_real_mirrored_run_is_judged_per_request(policy: Policy) -> None:
    """The same 1,800 requests: paired, the p50 change is pinned to about a percent; as two independent
    samples its interval is many times wider, because the load both versions saw no longer cancels."""
    samples = read_samples_file(REAL_RUN)
    paired, unpaired = judge(samples, policy), judge(drop_ids(samples), policy)
    assert paired.paired and not unpaired.paired
    latency = criterion(paired, "latency_increase")
    assert latency.conclusive and latency.passed and width(paired, "latency_increase") < 0.03
    assert "per-request" in latency.method
    assert width(unpaired, "latency_increase") > 8 * width(paired, "latency_increase")


def test_shared_load_cancels_in_paired_runs(policy: Policy) -> None:
    """Busy-machine noise (fitted to the run above): paired is decisive where unpaired is not."""
    frame = simulate_run(SCENARIOS["unchanged"], 2000, seed=3, noise=BUSY)
    paired, unpaired = judge(frame, policy), judge(drop_ids(frame), policy)
    assert criterion(paired, "latency_increase").conclusive
    assert width(unpaired, "latency_increase") > 4 * width(paired, "latency_increase")
    slower = judge(simulate_run(SCENARIOS["+20%"], 2000, seed=3, noise=BUSY), policy)
    assert slower.verdict == "NO_GO" and criterion(slower, "latency_increase").observed == pytest.approx(
        0.20, abs=0.03
    )


def _mirrored(n: int, seed: int = 1) -> pl.DataFrame:
    return simulate_run(SCENARIOS["unchanged"], n, seed)


def test_paired_throughput_is_what_each_served_of_what_both_were_offered(policy: Policy) -> None:
    frame = _mirrored(3000)
    rng = np.random.default_rng(0)
    lost = set(rng.choice(3000, 240, replace=False).tolist())  # 8 % of requests
    is_lost = pl.col("request_id").is_in(list(lost)) & (pl.col("version") == "new")
    failing = frame.with_columns(pl.when(is_lost).then(False).otherwise(pl.col("ok")).alias("ok"))
    missing = frame.filter(~is_lost)  # no row at all for new: not served either
    for broken in (failing, missing):
        v = judge(broken, policy)
        tp = criterion(v, "throughput_change")
        assert v.paired and tp.observed == pytest.approx(-0.08, abs=0.01)
        assert not tp.passed and tp.conclusive and v.verdict == "NO_GO"
    both = frame.with_columns(  # a request both versions failed is no loss of new's
        pl.when(pl.col("request_id").is_in(list(lost))).then(False).otherwise(pl.col("ok")).alias("ok")
    )
    tp = criterion(judge(both, policy), "throughput_change")
    assert tp.observed == pytest.approx(0.0, abs=0.003) and tp.passed and tp.conclusive


def test_equal_served_counts_without_ids_are_no_throughput_loss(policy: Policy) -> None:
    """A user's file: old and new each served 3,000 requests over the same minute, timed by different
    clocks (new's stamps off by up to 1.5 s), so per-second counts differ though the totals do not.
    The per-bucket interval crossed -5 % and blocked GO; served over offered it is narrow at 0."""
    rng = np.random.default_rng(5)
    n = 3000
    t0 = np.datetime64(dt.datetime(2026, 3, 1, 9), "us")
    base = t0 + (np.sort(rng.random(n)) * 60e6).astype("timedelta64[us]")
    jitter = (rng.uniform(-1.5, 1.5, n) * 1e6).astype("timedelta64[us]")
    old = pl.DataFrame({"ts": base, "version": "old", "latency_ms": rng.lognormal(0, 0.3, n), "ok": True})
    new = pl.DataFrame(
        {"ts": base + jitter, "version": "new", "latency_ms": rng.lognormal(0, 0.3, n), "ok": True}
    )
    frame = pl.concat([old, new]).with_columns(pl.lit("e").alias("endpoint"), pl.lit(True).alias("match"))
    v = judge_samples(frame.sort("ts"), policy, validation_success_rate=1.0, bucket_s=1.0)
    tp = criterion(v, "throughput_change")
    assert not v.paired and tp.observed == 0.0 and tp.conclusive and tp.passed
    assert tp.ci_low > -0.01 and v.verdict == "GO"


def test_ids_repeated_or_sparse_pair_the_same_requests(policy: Policy) -> None:
    """A gateway restarted mid-run counts from 1 again; a user's ids may be any numbers: the same pairs."""
    frame = _mirrored(1200)
    dense = criterion(judge(frame, policy), "latency_increase").observed
    repeated = frame.with_columns(pl.col("request_id") % 600)  # every id used twice, in time order
    sparse = frame.with_columns(pl.col("request_id") * 7_919_993 + 12_345)
    for other in (repeated, sparse):
        v = judge(other, policy)
        assert v.paired and criterion(v, "latency_increase").observed == pytest.approx(dense)


def test_a_canary_split_is_judged_as_independent_samples(policy: Policy) -> None:
    """Each request to one version only: ids never meet, so there is nothing to pair."""
    frame = _mirrored(2000)
    split = frame.filter((pl.col("request_id") % 2 == 0) == (pl.col("version") == "old"))
    v = judge(split, policy)
    assert not v.paired and "unpaired" in criterion(v, "latency_increase").method


IN_TURNS = Path(__file__).parents[1] / "data" / "judge" / "hello_world_in_turns.parquet"
"""A real run of hello_world_api v1 -> v2 (3,600 requests at 60/s) through the gateway that calls the two
versions of a mirrored request in turn, in random order, recording ``called_first``."""


def test_the_first_called_versions_handicap_cancels_by_call_order(policy: Policy) -> None:
    """Here the first-called version is ~5 % slower: the two orders' medians lie +5.7 % and -4.3 %.
    Averaged per order the handicap cancels and the interval is narrower than the pooled median's."""
    samples = read_samples_file(IN_TURNS)
    by_order = criterion(judge(samples, policy), "latency_increase")
    pooled = criterion(
        judge(samples.with_columns(pl.lit(None, pl.Boolean).alias("called_first")), policy),
        "latency_increase",
    )
    assert "call order" in by_order.method and "call order" not in pooled.method
    assert by_order.ci_high - by_order.ci_low < 0.85 * (pooled.ci_high - pooled.ci_low)
    assert by_order.ci_low < 0 < by_order.ci_high


def test_an_uneven_call_order_does_not_bias_the_change(policy: Policy) -> None:
    """Equal versions, the first-called one 10 % slower, new called first for 70 % of requests: the
    pooled median reads new as slower; per call order it reads no change."""
    frame = _mirrored(3000, seed=4)
    rng = np.random.default_rng(8)
    new_first = pl.Series(rng.random(3000) < 0.7)
    order = pl.DataFrame({"request_id": np.arange(3000), "nf": new_first})
    frame = frame.join(order, on="request_id").with_columns(
        (pl.col("nf") == (pl.col("version") == "new")).alias("called_first")
    )
    frame = frame.with_columns(
        pl.when(pl.col("called_first"))
        .then(pl.col("latency_ms") * 1.10)
        .otherwise(pl.col("latency_ms"))
        .alias("latency_ms")
    ).drop("nf")
    by_order = criterion(judge(frame, policy), "latency_increase")
    pooled = criterion(
        judge(frame.with_columns(pl.lit(None, pl.Boolean).alias("called_first")), policy), "latency_increase"
    )
    assert pooled.observed > 0.02 and pooled.ci_low > 0  # reads new as slower, beyond doubt
    assert abs(by_order.observed) < 0.02 and by_order.ci_low < 0 < by_order.ci_high
