"""The A/A calibration in a verdict: the measurement's own reading is taken out, its noise added."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from engine.judge.calibration import Calibration, correct
from engine.judge.policy import Policy, load_policy
from engine.judge.stats import Interval
from engine.judge.verdict import judge_samples
from tests.judge.test_verdict import samples


def aa(change: float, low: float, high: float, **more: object) -> Calibration:
    """A calibration reading ``change`` [``low``, ``high``]; ``more``: its other fields (measure...)."""
    return Calibration(
        system="s",
        run_id="calibration-1",
        measured_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        actor="lead",
        pairs=800,
        rps=40,
        duration_s=20,
        verdict="GO",
        latency_change=change,
        low=low,
        high=high,
        **more,
    )


def test_a_bias_the_a_a_run_also_reads_is_taken_out_and_its_noise_added() -> None:
    run = Interval(0.08, 0.05, 0.11)
    fixed = correct(run, aa(0.08, 0.06, 0.10))
    assert fixed.estimate == pytest.approx(0.0, abs=1e-12)
    assert fixed.low < 0 < fixed.high
    assert fixed.high - fixed.low > run.high - run.low  # wider than the run's own interval, never narrower


def test_an_unbiased_calibration_only_widens_and_none_changes_nothing() -> None:
    run = Interval(0.20, 0.15, 0.25)
    fixed = correct(run, aa(0.0, -0.02, 0.02))
    assert fixed.estimate == pytest.approx(0.20)
    assert fixed.low < 0.15 and fixed.high > 0.25
    half_run, half_aa = math.log(1.25 / 1.20), math.log(1.02)
    assert math.log1p(fixed.high) - math.log1p(0.20) == pytest.approx(math.hypot(half_run, half_aa), rel=0.02)
    assert correct(run, None) is run
    assert correct(run, aa(0.0, -0.02, 0.02).model_copy(update={"low": None})) is run


def test_the_verdict_says_what_it_corrected_and_keeps_the_seed_rule_raw() -> None:
    policy: Policy = load_policy()
    frame = samples(latency_factor=1.12)  # 12 % slower: outside the 10 % limit
    raw = judge_samples(frame, policy, validation_success_rate=0.9, bucket_s=1.0)
    assert raw.verdict != "GO" and raw.calibration is None
    # the same measurement reads +10 % between two copies of old: new is really ~2 % slower
    fixed = judge_samples(
        frame, policy, validation_success_rate=0.9, bucket_s=1.0, calibration=aa(0.10, 0.09, 0.11)
    )
    latency = next(c for c in fixed.criteria if c.name == "latency_increase")
    assert latency.observed == pytest.approx((1 + raw_latency(raw)) / 1.10 - 1)
    assert latency.passed and "two copies of old" in latency.explanation
    assert latency.detail["measured_change"] == pytest.approx(raw_latency(raw))
    assert fixed.calibration is not None and fixed.calibration.run_id == "calibration-1"
    assert fixed.new_better == raw.new_better  # the seed's rule on the raw point estimates


def raw_latency(verdict) -> float:
    return next(c for c in verdict.criteria if c.name == "latency_increase").observed
