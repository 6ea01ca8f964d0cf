"""Latency judged on the versions' own time (``service_ms``) when the samples carry it, the round trip
kept as a guard beside it, and files without it judged as before."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from bench.judge_power import SCENARIOS, simulate_run
from engine.errors import InputError
from engine.judge.calibration import Calibration
from engine.judge.criteria import PROCESS_SPREAD
from engine.judge.model import Verdict
from engine.judge.policy import Policy, load_policy
from engine.judge.samples import normalise_samples, read_samples_file
from engine.judge.verdict import judge_samples
from tests.judge.test_calibration import aa


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def judge(frame: pl.DataFrame, policy: Policy, calibration: Calibration | None = None) -> Verdict:
    return judge_samples(
        normalise_samples(frame), policy, validation_success_rate=1.0, calibration=calibration
    )


def by_name(verdict: Verdict) -> dict:
    return {c.name: c for c in verdict.criteria}


def run(scenario: str, n: int = 2000, seed: int = 5) -> pl.DataFrame:
    return simulate_run(SCENARIOS[scenario], n, seed, True, own=True)


def test_own_time_is_judged_and_the_verdict_says_so(policy: Policy) -> None:
    v = judge(run("unchanged"), policy)
    c = by_name(v)
    assert v.verdict == "GO" and v.latency_measure == "own_time"
    latency = c["latency_increase"]
    assert "own time" in latency.explanation and "CPU wait excluded" in latency.explanation
    assert (
        "own time" in c["latency_p95_increase"].explanation and "own time" in c["latency_drift"].explanation
    )
    trip = c["latency_round_trip_increase"]
    assert trip.role == "guard" and "round-trip" in trip.explanation
    assert any("own time" in r for r in v.reasons)  # a GO lists why each criterion passes


def test_a_file_without_own_time_is_judged_on_the_round_trip_as_before(policy: Policy) -> None:
    frame = run("unchanged").drop("service_ms")
    v = judge(frame, policy)
    assert v.latency_measure == "round_trip" and "latency_round_trip_increase" not in by_name(v)
    assert "own time" not in by_name(v)["latency_increase"].explanation
    # one ok request without it (a version that did not say) and the whole run is judged on the round trip
    holes = run("unchanged").with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col("service_ms")).alias("service_ms")
    )
    assert judge(holes, policy).latency_measure == "round_trip"


def test_a_regression_in_the_version_s_own_code_is_no_go_though_the_round_trip_barely_moves(
    policy: Policy,
) -> None:
    """+20 % own time is +4 % of a round trip five times as long, inside the seed's +10 %."""
    v = judge(run("+20%"), policy)
    c = by_name(v)
    assert v.verdict == "NO_GO"
    assert not c["latency_increase"].passed and c["latency_increase"].conclusive
    assert c["latency_round_trip_increase"].observed < 0.10


def test_a_regression_only_callers_see_cannot_pass(policy: Policy) -> None:
    """Own time unchanged, the round trip 30 % slower (the version's HTTP layer, its answers' size)."""
    v = judge(run("round trip +30%"), policy)
    c = by_name(v)
    assert c["latency_increase"].passed and c["latency_increase"].conclusive
    assert v.verdict != "GO" and c["latency_round_trip_increase"].holds_up_go
    assert any("round-trip" in r for r in v.reasons)


def test_two_processes_of_one_version_never_read_closer_than_their_own_spread(policy: Policy) -> None:
    """At 20,000 pairs the requests' own noise is a fraction of a percent; the interval keeps the
    spread two processes of the same code show (±3.3 % at one-sided 95 %), and an INCONCLUSIVE inside
    it is told that no run length decides it."""
    v = judge(run("unchanged", n=20_000), policy)
    latency = by_name(v)["latency_increase"]
    assert latency.ci_high - latency.observed >= 1.6449 * PROCESS_SPREAD * 0.99
    assert latency.detail["process_half_width"] == pytest.approx(
        (1 + latency.observed) * (2.718281828 ** (1.6449 * PROCESS_SPREAD) - 1), rel=1e-3
    )
    near = judge(run("+8%", n=20_000), policy)
    assert near.verdict == "INCONCLUSIVE"
    said = {m.criterion: m for m in near.to_decide}["latency_increase"]
    assert said.more_samples is None and "spread of two processes" in said.explanation


def _calibration(measure: str, change: float) -> Calibration:
    trip = (-0.05, -0.09, -0.01) if measure == "own_time" else (None, None, None)
    return aa(
        change,
        change - 0.03,
        change + 0.03,
        measure=measure,
        round_trip_change=trip[0],
        round_trip_low=trip[1],
        round_trip_high=trip[2],
    )


def test_a_calibration_corrects_only_what_it_measured(policy: Policy) -> None:
    """A calibration from before own time read the round trip: it corrects the round-trip guard, never
    the own-time criterion; an own-time one corrects both, each with its own reading."""
    frame = run("unchanged")
    plain = by_name(judge(frame, policy))
    old_style = by_name(judge(frame, policy, _calibration("round_trip", -0.04)))
    assert old_style["latency_increase"].observed == plain["latency_increase"].observed
    assert old_style["latency_round_trip_increase"].observed != plain["latency_round_trip_increase"].observed
    own = by_name(judge(frame, policy, _calibration("own_time", -0.02)))
    assert own["latency_increase"].observed == pytest.approx(
        (1 + plain["latency_increase"].observed) / 0.98 - 1, rel=1e-6
    )
    assert own["latency_round_trip_increase"].observed == pytest.approx(
        (1 + plain["latency_round_trip_increase"].observed) / 0.95 - 1, rel=1e-6
    )
    assert "own time" in _calibration("own_time", -0.02).describe()


def test_a_samples_file_with_own_time_is_read_and_a_bad_value_named(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "samples.csv"
    run("unchanged", n=600).write_csv(path)
    assert judge_samples(read_samples_file(path), policy, validation_success_rate=1.0).latency_measure == (
        "own_time"
    )
    bad = run("unchanged", n=600).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(-1.0).otherwise(pl.col("service_ms")).alias("service_ms")
    )
    bad.write_csv(path)
    with pytest.raises(InputError, match="service_ms"):
        read_samples_file(path)
