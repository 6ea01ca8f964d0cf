"""Tails (point 3), per-endpoint criteria with Holm (point 4) and drift (point 5), paired and unpaired."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from bench.judge_power import SCENARIOS, simulate_run
from engine.judge.criteria import _holm
from engine.judge.model import Verdict, _criterion
from engine.judge.policy import Policy, load_policy
from engine.judge.samples import normalise_samples
from engine.judge.stats import Interval, holm
from engine.judge.verdict import judge_samples


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def judge(frame: pl.DataFrame, policy: Policy) -> Verdict:
    return judge_samples(frame, policy, validation_success_rate=1.0)


def by_name(verdict: Verdict) -> dict:
    return {c.name: c for c in verdict.criteria}


def run(scenario: str, n: int, paired: bool, seed: int = 11) -> pl.DataFrame:
    return simulate_run(SCENARIOS[scenario], n, seed, paired)


@pytest.mark.parametrize("paired", [True, False])
def test_three_percent_of_requests_twelve_times_slower_is_no_go(policy: Policy, paired: bool) -> None:
    """The issue's case: p99 3.7x, p95 1.26x, the median barely moved. It got GO."""
    v = judge(run("p99 tail", 3000, paired), policy)
    c = by_name(v)
    assert v.verdict == "NO_GO"
    assert not c["latency_p99_increase"].passed and c["latency_p99_increase"].conclusive
    assert c["latency_p99_increase"].observed > 1.0 and c["latency_p99_increase"].threshold == 0.5
    assert any(r.startswith("fails: p99 latency change") for r in v.reasons)
    assert c["latency_increase"].observed < 0.1  # the median alone would not have told


@pytest.mark.parametrize("paired", [True, False])
def test_wider_spread_around_the_same_median_does_not_pass_every_criterion(
    policy: Policy, paired: bool
) -> None:
    v = judge(run("spread x1.5", 3000, paired), policy)
    c = by_name(v)
    assert v.verdict != "GO"
    assert abs(c["latency_increase"].observed) < 0.08
    assert not c["latency_p95_increase"].passed  # the p95's estimate is beyond +25 %
    assert c["latency_p95_increase"].n_old >= 2900 and c["latency_p95_increase"].ci_low is not None


def test_a_tail_with_few_requests_beyond_it_guards_and_with_enough_is_proven(policy: Policy) -> None:
    """p99 at 3,000 requests rests on 30: it may stop a GO, not hold one up; p95 (150) is proven."""
    c = by_name(judge(run("unchanged", 3000, True), policy))
    assert c["latency_p99_increase"].role == "guard" and c["latency_p95_increase"].role == "primary"
    assert c["latency_p95_increase"].conclusive and c["latency_p95_increase"].passed
    c = by_name(judge(run("unchanged", 6000, True), policy))
    assert c["latency_p99_increase"].role == "primary"


def _endpoints_frame(slow_factor: float, n: int = 4000, paired: bool = True) -> pl.DataFrame:
    """Five endpoints alike but for ``/b``, a fifth of the traffic, which new serves ``slow_factor``
    times slower; written as a user might (string ids, one row per answer, sorted by endpoint)."""
    rng = np.random.default_rng(21)
    endpoint = rng.choice(["/a", "/b", "/c", "/d", "/e"], n)
    shared = rng.lognormal(0.0, 0.3, n)
    start = np.datetime64(dt.datetime(2026, 2, 2, 10), "us")
    ts = start + (np.arange(n) * 20_000).astype("timedelta64[us]")
    ids = [f"req-{i:05d}" if paired else None for i in range(n)]
    old = pl.DataFrame(
        {"ts": ts, "version": "old", "latency_ms": shared * rng.lognormal(0, 0.1, n), "ok": True}
    )
    factor = np.where(endpoint == "/b", slow_factor, 1.0)
    new = pl.DataFrame(
        {"ts": ts, "version": "new", "latency_ms": shared * factor * rng.lognormal(0, 0.1, n), "ok": True}
    )
    rows = pl.concat(
        [f.with_columns(pl.Series("endpoint", endpoint), pl.Series("request_id", ids)) for f in (old, new)]
    )
    rows = rows.with_columns(pl.when(pl.col("version") == "new").then(True).alias("match"))
    return normalise_samples(rows.sort("endpoint"))


@pytest.mark.parametrize("paired", [True, False])
def test_one_endpoint_sixty_percent_slower_is_no_go_and_named(policy: Policy, paired: bool) -> None:
    v = judge(_endpoints_frame(1.6, paired=paired), policy)
    assert v.verdict == "NO_GO" and v.paired == paired
    slow = by_name(v)["latency_increase[/b]"]
    assert slow.endpoint == "/b" and not slow.passed and slow.conclusive
    assert slow.observed == pytest.approx(0.6, abs=0.08)
    assert any("endpoint /b" in r for r in v.reasons if r.startswith("fails:"))
    assert all(by_name(v)[f"latency_increase[{e}]"].passed for e in ("/a", "/c", "/d", "/e"))


def test_endpoints_alike_pass_and_a_small_endpoint_is_not_judged_alone(policy: Policy) -> None:
    v = judge(_endpoints_frame(1.0), policy)
    assert v.verdict == "GO"
    few = (
        _endpoints_frame(1.0)
        .with_columns(
            pl.when(pl.col("endpoint") == "/e")
            .then(pl.lit("/rare"))
            .otherwise(pl.col("endpoint"))
            .alias("endpoint")
        )
        .filter((pl.col("endpoint") != "/rare") | (pl.col("request_id") % 8 == 0))
    )
    names = set(by_name(judge(few, policy)))
    assert "latency_increase[/a]" in names and "latency_increase[/rare]" not in names


def test_holm_keeps_the_family_wise_error() -> None:
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])


def test_an_endpoint_beyond_its_limit_by_chance_among_many_is_not_a_failure(policy: Policy) -> None:
    """Ten endpoint criteria: one interval just beyond the limit (one-sided p about 0.01) fails alone
    but not once the ten are weighed together; one far beyond still fails."""
    margin = policy.rule.max_latency_increase

    def endpoint(name: str, low: float, est: float) -> tuple:
        interval = Interval(est, low, est + (est - low))
        c = _criterion(f"latency_increase[{name}]", interval, margin, "<=", 500, 500, name, endpoint=name)
        return c, interval

    items = [endpoint(f"/e{i}", -0.05, 0.0) for i in range(8)]
    items.append(endpoint("/chance", 0.102, 0.15))  # beyond the limit, but barely
    items.append(endpoint("/broken", 0.40, 0.60))
    judged = {c.endpoint: c for c in _holm(items, policy.statistics.confidence_level)}
    assert not judged["/chance"].conclusive and "Holm" in judged["/chance"].explanation
    assert judged["/broken"].conclusive and not judged["/broken"].passed
    assert judged["/e0"].conclusive and judged["/e0"].passed


@pytest.mark.parametrize("paired", [True, False])
def test_a_version_that_gets_worse_over_the_run_is_never_go(policy: Policy, paired: bool) -> None:
    """New/old climbs from 0.9 to 1.2 over the run: on average +5 %, inside the latency margin."""
    v = judge(run("drift 0.9->1.2", 3000, paired), policy)
    drift = by_name(v)["latency_drift"]
    assert v.verdict != "GO" and not drift.passed
    assert drift.detail["late_change"] > drift.detail["early_change"] + 0.08
    assert "per min" in drift.explanation and drift.detail["per_10_min"] > 0
    if paired:
        assert v.verdict == "NO_GO" and drift.conclusive


def test_a_steady_version_has_no_drift(policy: Policy) -> None:
    drift = by_name(judge(run("+5%", 3000, True), policy))["latency_drift"]
    assert drift.passed and drift.conclusive and abs(drift.observed) < 0.05


def _guard_of(policy: Policy, est: float, low: float, high: float):
    from engine.judge.verdict import _guard

    c = _criterion(
        "latency_p95_increase", Interval(est, low, high), 0.25, "<=", 990, 990, "p95", role="guard"
    )
    return _guard(c, policy)


def test_a_guard_the_run_could_prove_must_be_within_at_the_guard_confidence(policy: Policy) -> None:
    """+23 % [+17 %, +29 %] against +25 %: narrow enough to prove the limit, yet not within it at 80 %."""
    close = _guard_of(policy, 0.23, 0.17, 0.29)
    assert close.detail["guard_can_prove"] == 1.0
    assert close.passed and not close.guard_clear and close.holds_up_go
    assert "not within it at 80%" in close.explanation
    clear = _guard_of(policy, 0.0, -0.08, 0.09)
    assert clear.guard_clear and not clear.holds_up_go and clear.conclusive


def test_a_guard_too_noisy_to_prove_holds_up_go_only_on_evidence_of_a_regression(policy: Policy) -> None:
    """Real A/A runs here read p99 +49 % [-33 %, +234 %] (limit +50 %): too wide to tell anything; it is
    no reason to wait. +90 % [+20 %, +200 %] is beyond +25 % at 70 %: it is. A tail whose estimate is
    itself beyond its limit holds GO up however wide: GO never passes what the point estimate fails."""
    noise = _guard_of(policy, 0.20, -0.33, 2.34)
    assert noise.detail["guard_can_prove"] == 0.0 and noise.guard_clear and not noise.holds_up_go
    assert "no evidence beyond its limit" in noise.explanation
    past = _guard_of(policy, 0.49, -0.33, 2.34)
    assert not past.guard_clear and past.holds_up_go and "estimate is beyond its limit" in past.explanation
    over = _guard_of(policy, 0.90, 0.20, 2.0)
    assert not over.guard_clear and over.holds_up_go and not over.conclusive
    assert "beyond its limit at 70%" in over.explanation
    failed = _guard_of(policy, 1.5, 0.4, 3.0)  # wholly beyond: fails, whatever its width
    assert failed.conclusive and not failed.passed and failed.holds_up_go
