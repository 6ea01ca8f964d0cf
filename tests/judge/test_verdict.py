"""The judge on generated sample sets with known differences."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.judge.policy import Policy, load_policy
from engine.judge.verdict import judge_samples

T0 = dt.datetime(2025, 8, 1, 12, 0, 0)


@pytest.fixture(scope="module")
def policy() -> Policy:
    pol = load_policy()
    return pol.model_copy(update={"parallel_run": pol.parallel_run.model_copy(update={"bucket_s": 1.0})})


def samples(
    n: int = 3000,
    *,
    latency_factor: float = 1.0,
    new_error_rate: float = 0.0,
    drop_new: float = 0.0,
    mismatch_rate: float = 0.0,
    error_burst: tuple[int, int] | None = None,
    seed: int = 7,
) -> pl.DataFrame:
    """Mirrored traffic over 60 s: every request seen by old and (unless dropped) by new."""
    rng = np.random.default_rng(seed)
    ts = [T0 + dt.timedelta(seconds=60 * i / n) for i in range(n)]
    old_lat = rng.lognormal(1.0, 0.3, n)
    new_lat = rng.lognormal(1.0, 0.3, n) * latency_factor
    new_ok = rng.random(n) >= new_error_rate
    if error_burst:
        new_ok[error_burst[0] : error_burst[1]] = False
    keep = rng.random(n) >= drop_new
    match = rng.random(n) >= mismatch_rate
    old = pl.DataFrame(
        {"ts": ts, "version": "old", "latency_ms": old_lat, "ok": True, "endpoint": "e"}
    ).with_columns(pl.lit(None, pl.Boolean).alias("match"))
    new = pl.DataFrame(
        {"ts": ts, "version": "new", "latency_ms": new_lat, "ok": new_ok, "endpoint": "e", "match": match}
    ).filter(pl.Series(keep))
    return pl.concat([old, new.cast(old.schema)], how="vertical")


def by_name(verdict):
    return {c.name: c for c in verdict.criteria}


def test_no_difference_is_go(policy: Policy) -> None:
    v = judge_samples(samples(), policy, validation_success_rate=0.9)
    assert v.verdict == "GO" and v.new_better
    assert all(c.passed and c.conclusive for c in v.criteria)
    assert not any(t.fired for t in v.triggers)


def test_large_latency_regression_is_no_go(policy: Policy) -> None:
    v = judge_samples(samples(latency_factor=1.4), policy, validation_success_rate=0.9)
    assert v.verdict == "NO_GO" and not v.new_better
    lat = by_name(v)["latency_increase"]
    assert not lat.passed and lat.conclusive and lat.ci_low > 0.10
    assert lat.detail["rank_test_p_value"] < 0.001
    assert any("latency" in r for r in v.reasons)


def test_significant_change_inside_the_margin_still_passes(policy: Policy) -> None:
    v = judge_samples(samples(n=20000, latency_factor=1.03), policy, validation_success_rate=0.9)
    lat = by_name(v)["latency_increase"]
    assert lat.detail["rank_test_p_value"] < 0.05  # a real, detectable slowdown...
    assert lat.passed and lat.conclusive  # ...well inside the 10 % margin
    assert v.verdict == "GO"


def test_small_regression_near_the_margin_is_inconclusive(policy: Policy) -> None:
    v = judge_samples(samples(latency_factor=1.08), policy, validation_success_rate=0.9)
    assert v.verdict == "INCONCLUSIVE"
    assert not by_name(v)["latency_increase"].conclusive


def test_error_burst_fires_trigger_and_fails(policy: Policy) -> None:
    v = judge_samples(samples(error_burst=(1000, 1400)), policy, validation_success_rate=0.9)
    assert v.verdict == "NO_GO"
    assert {t.name for t in v.triggers if t.fired} == {"error_rate"}
    assert not by_name(v)["error_rate_increase"].passed


def test_dropped_requests_lower_throughput(policy: Policy) -> None:
    v = judge_samples(samples(drop_new=0.6), policy, validation_success_rate=0.9)
    tp = by_name(v)["throughput_change"]
    assert tp.observed == pytest.approx(-0.6, abs=0.03)
    assert v.verdict == "NO_GO"
    assert {t.name for t in v.triggers if t.fired} == {"throughput_ratio"}


def test_no_new_sample_at_all_is_missing_data_not_a_collapse(policy: Policy) -> None:
    """A samples file with old rows only says nothing of new: INCONCLUSIVE, no trigger; whereas a new
    version that answers nothing still leaves (error) samples, and those fire (the test above)."""
    v = judge_samples(samples(drop_new=1.0), policy, validation_success_rate=0.9)
    assert v.verdict == "INCONCLUSIVE"
    assert not [t.name for t in v.triggers if t.fired]
    assert by_name(v)["throughput_change"].observed is None
    assert any("0 new" in r for r in v.reasons)


def test_mismatches_fail_correctness(policy: Policy) -> None:
    v = judge_samples(samples(mismatch_rate=0.05), policy, validation_success_rate=0.9)
    mm = by_name(v)["mismatch_rate"]
    assert not mm.passed and mm.conclusive and v.verdict == "NO_GO"


def test_tiny_sample_is_never_go(policy: Policy) -> None:
    v = judge_samples(samples(n=40), policy, validation_success_rate=0.95)
    assert v.verdict == "INCONCLUSIVE"
    assert any("too few samples" in r for r in v.reasons)


def test_low_validation_is_no_go_and_below_07_fires(policy: Policy) -> None:
    v = judge_samples(samples(), policy, validation_success_rate=0.75)
    assert v.verdict == "NO_GO" and not v.new_better
    assert not any(t.fired for t in v.triggers)
    v = judge_samples(samples(), policy, validation_success_rate=0.6)
    assert {t.name for t in v.triggers if t.fired} == {"validation_success_rate"}


def test_a_quiet_trigger_reads_as_quiet_and_a_fired_one_as_fired(policy: Policy) -> None:
    """The explanation states the comparison as it stands: 'validation 1.00 < 0.7' on a quiet trigger
    (as the CLI printed) told a lead the opposite of the truth."""
    calm = judge_samples(samples(), policy, validation_success_rate=0.9).triggers
    quiet = {t.name: t.explanation for t in calm}
    assert quiet["validation_success_rate"] == "validation 90.0% >= 70.0%"
    assert quiet["error_rate"].endswith("<= 5.0%")
    burst = judge_samples(samples(error_burst=(1000, 1400)), policy, validation_success_rate=0.6).triggers
    fired = {t.name: t.explanation for t in burst}
    assert fired["validation_success_rate"] == "validation 60.0% < 70.0%"
    assert fired["error_rate"].endswith("> 5.0%")


def test_health_check_trigger(policy: Policy) -> None:
    v = judge_samples(samples(), policy, validation_success_rate=0.9, failed_health_checks=4)
    assert v.verdict == "NO_GO"
    assert [t.name for t in v.triggers if t.fired] == ["failed_health_checks"]


def test_verdict_records_policy_and_is_json_safe(policy: Policy) -> None:
    v = judge_samples(samples(n=10), policy, validation_success_rate=None)
    data = v.model_dump(mode="json")
    assert data["policy"]["rule"]["max_latency_increase"] == 0.10
    assert v.verdict == "INCONCLUSIVE"
