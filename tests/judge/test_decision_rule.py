"""The decision rule's levels (issue 16 point 7): GO as an intersection-union test at the policy's
confidence, primary tails and drift from a share of the error budget, burst-widened errors only when
the errors are bursty, endpoint guards weighed on evidence."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from engine.judge.criteria import MUST_PASS, error_rate_criterion, primary_share
from engine.judge.model import _criterion
from engine.judge.policy import Policy, load_policy
from engine.judge.stats import Interval, burst_effect, design_effect, proportion_difference
from engine.judge.verdict import _guard


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def test_each_interval_end_is_a_one_sided_bound_at_the_policy_s_confidence(policy: Policy) -> None:
    """GO claims every primary is within its limit: one-sided at 95 % each gives GO 95 %, so intervals
    are 90 % two-sided. At 1,000 requests a side, 0.2 % errors of old and four errors of new (+0.4 pt)
    is within +1 pt at one-sided 95 %; the 95 % two-sided interval crossed +1 pt (INCONCLUSIVE)."""
    assert policy.statistics.confidence_level == 0.95
    assert policy.statistics.interval_level == pytest.approx(0.90)
    assert proportion_difference(0, 1000, 4, 1000, 0.95)[0].high > 0.01  # the old rule's interval
    c = error_rate_criterion(0, 1000, 4, 1000, policy)
    assert c.passed and c.conclusive and c.ci_high <= 0.01
    # a real +2 pt still fails: its lower one-sided bound is beyond the limit
    bad = error_rate_criterion(2, 1000, 40, 1000, policy)
    assert not bad.passed and bad.conclusive


def test_a_tail_or_the_drift_is_primary_only_where_it_fits_its_share_of_the_error_budget() -> None:
    """With half-width share·margin (z_c·se), an unchanged version proves a criterion with probability
    Φ(margin/se − z_c); the six criteria that must all pass share the 5 % an unchanged version may miss."""
    share = primary_share(0.95)
    assert share == pytest.approx(0.4073, abs=1e-3)
    z_c = sps.norm.ppf(0.95)
    proved = sps.norm.cdf(z_c / share - z_c)
    assert proved == pytest.approx(1 - 0.05 / MUST_PASS, abs=1e-9)


def test_a_few_scattered_errors_are_not_read_as_a_burst() -> None:
    """Four errors in 1,000 requests, two of them in the same batch of 31: the batch-means design effect
    reads 1.4, which widened an unchanged version's error interval past +1 pt; chance spreads them so."""
    errors = np.zeros(1000, dtype=bool)
    errors[[40, 45, 500, 900]] = True
    assert design_effect(errors) > 1.4
    assert burst_effect(errors, 0.95) == 1.0
    burst = np.zeros(1000, dtype=bool)
    burst[300:320] = True  # a version failing for a stretch of the run: a real burst
    assert burst_effect(burst, 0.95) == pytest.approx(design_effect(burst)) and burst_effect(burst, 0.95) > 5


def _guard_of(policy: Policy, name: str, interval: Interval, limit: float, endpoint: str | None = None):
    c = _criterion(name, interval, limit, "<=", 900, 900, name, endpoint=endpoint, role="guard")
    return _guard(c, policy)


def test_an_endpoint_is_weighed_on_evidence_a_tail_must_be_within_where_it_could_prove_it(
    policy: Policy,
) -> None:
    """+8.5 % [+4.5 %, +12.5 %] against +10 %: a tail or a drift could prove the limit at this width and
    is not within it at 80 %; an endpoint is one of a family and holds up GO on evidence only."""
    close = Interval(0.085, 0.045, 0.125)
    drift = _guard_of(policy, "latency_drift", close, 0.10)
    assert drift.holds_up_go and "not within it at 80%" in drift.explanation
    endpoint = _guard_of(policy, "latency_increase[/b]", close, 0.10, endpoint="/b")
    assert endpoint.guard_clear and not endpoint.holds_up_go
    assert "no evidence beyond its limit" in endpoint.explanation
    slow = _guard_of(policy, "latency_increase[/b]", Interval(0.30, 0.12, 0.50), 0.10, endpoint="/b")
    assert slow.holds_up_go and slow.conclusive and not slow.passed  # wholly beyond: fails
    over = _guard_of(policy, "latency_increase[/b]", Interval(0.16, 0.06, 0.27), 0.10, endpoint="/b")
    assert over.holds_up_go and not over.conclusive  # beyond at 70 %: evidence of a regression
    assert math.isclose(over.detail["guard_can_prove"], 0.0)
    wide = Interval(0.15, -0.20, 0.60)  # estimate past the limit, no evidence: a tail waits, an endpoint not
    assert _guard_of(policy, "latency_increase[/b]", wide, 0.10, endpoint="/b").guard_clear
    assert _guard_of(policy, "latency_drift", wide, 0.10).holds_up_go
