"""The judge's statistics against references: scipy's rank test, the design effect of an AR(1) series."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from engine.judge.stats import bootstrap_quantile_change, design_effect, paired_served_change, rank_test


@pytest.mark.parametrize("rounding", [None, 1])
def test_rank_test_is_scipys_mann_whitney_ties_included(rounding: int | None) -> None:
    rng = np.random.default_rng(1)
    old, new = rng.lognormal(0, 1, 500), rng.lognormal(0.1, 1, 700)
    if rounding is not None:  # a clock with 0.1 ms resolution: many ties
        old, new = np.round(old, rounding), np.round(new, rounding)
    reference = stats.mannwhitneyu(new, old, alternative="two-sided", method="asymptotic")
    p, share = rank_test(np.sort(old), np.sort(new))
    assert p == pytest.approx(reference.pvalue, rel=1e-9)
    assert share == pytest.approx(reference.statistic / (500 * 700), rel=1e-12)


def test_design_effect_sees_neighbours_alike() -> None:
    rng = np.random.default_rng(2)
    assert np.mean([design_effect(rng.random(10_000) < 0.5) for _ in range(20)]) == pytest.approx(
        1.05, abs=0.1
    )
    rho, n = 0.8, 40_000
    shocks = rng.standard_normal(n)
    series = np.empty(n)
    series[0] = shocks[0]
    for i in range(1, n):
        series[i] = rho * series[i - 1] + shocks[i]
    assert design_effect(series) == pytest.approx((1 + rho) / (1 - rho), rel=0.3)  # 9 for an AR(1)


def test_served_shares_of_the_same_requests() -> None:
    everything = np.ones(1000, dtype=bool)
    same = paired_served_change(everything, everything, 0.95)
    assert same.estimate == 0 and same.high - same.low < 0.005
    dropped = everything.copy()
    dropped[::10] = False
    assert paired_served_change(everything, dropped, 0.95).estimate == pytest.approx(-0.1)


def test_the_bootstrap_is_reproducible() -> None:
    rng = np.random.default_rng(3)
    old, new = rng.lognormal(0, 0.5, 2000), rng.lognormal(0, 0.5, 2000)
    assert bootstrap_quantile_change(old, new, 0.99, 0.95, True) == bootstrap_quantile_change(
        old, new, 0.99, 0.95, True
    )
