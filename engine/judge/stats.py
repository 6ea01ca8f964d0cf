"""Small, vectorised statistics for comparing old and new: intervals and tests.

Everything here takes NumPy arrays and returns plain floats, so the judge can
run on a million samples per side in well under a second.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np


@functools.cache
def _sps() -> ModuleType:
    """``scipy.stats``, imported on first use: it is 1.6 s of the CLI's 3.2 s start-up, and most
    commands (status, events, deploy, every page but the verdict's) never judge anything."""
    from scipy import stats

    return stats


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def z_value(confidence: float) -> float:
    """Two-sided normal quantile for ``confidence`` (1.96 for 0.95)."""
    return float(_sps().norm.ppf(0.5 + confidence / 2))


def quantile_interval(sorted_values: np.ndarray, q: float, confidence: float) -> Interval:
    """Distribution-free interval for the ``q`` quantile, from order statistics.

    The ranks bracketing the quantile come from the binomial distribution of
    how many samples fall below it (normal approximation), so no assumption
    about the latency distribution is needed.
    """
    n = len(sorted_values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    z = z_value(confidence)
    half = z * math.sqrt(n * q * (1 - q))
    lo = int(max(0, math.floor(n * q - half)))
    hi = int(min(n - 1, math.ceil(n * q + half)))
    est = float(np.quantile(sorted_values, q, method="linear"))
    return Interval(est, float(sorted_values[lo]), float(sorted_values[hi]))


def quantile_change(old_sorted: np.ndarray, new_sorted: np.ndarray, q: float, confidence: float) -> Interval:
    """Relative change of the ``q`` quantile, new over old minus one, with its interval.

    Each side's distribution-free interval (order statistics) gives the
    standard error of the log of its quantile; the two sides are independent,
    so the log ratio's standard error is their root sum of squares (the
    approach of Price and Bonett's interval for a ratio of medians). Taking the
    extremes of the two intervals instead, as a first version did, is about
    1.6 times wider and left equal versions INCONCLUSIVE at a few thousand
    samples.
    """
    o = quantile_interval(old_sorted, q, confidence)
    n = quantile_interval(new_sorted, q, confidence)
    if not (o.estimate > 0 and o.low > 0 and n.estimate > 0 and n.low > 0):
        return Interval(math.nan, math.nan, math.nan)
    z = z_value(confidence)
    se_old = (math.log(o.high) - math.log(o.low)) / (2 * z)
    se_new = (math.log(n.high) - math.log(n.low)) / (2 * z)
    log_ratio = math.log(n.estimate / o.estimate)
    half = z * math.hypot(se_old, se_new)
    return Interval(
        n.estimate / o.estimate - 1, math.exp(log_ratio - half) - 1, math.exp(log_ratio + half) - 1
    )


def wilson_interval(successes: int, n: int, confidence: float) -> Interval:
    """Wilson score interval for a proportion (sane at 0 and at small n)."""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    z = z_value(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def proportion_difference(
    k_old: int, n_old: int, k_new: int, n_new: int, confidence: float
) -> tuple[Interval, float]:
    """Difference of two proportions (new minus old) with Newcombe's interval, and the z-test p-value."""
    if n_old == 0 or n_new == 0:
        return Interval(math.nan, math.nan, math.nan), math.nan
    a = wilson_interval(k_old, n_old, confidence)
    b = wilson_interval(k_new, n_new, confidence)
    diff = b.estimate - a.estimate
    low = diff - math.sqrt((b.estimate - b.low) ** 2 + (a.high - a.estimate) ** 2)
    high = diff + math.sqrt((b.high - b.estimate) ** 2 + (a.estimate - a.low) ** 2)
    pooled = (k_old + k_new) / (n_old + n_new)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_old + 1 / n_new))
    p_value = 1.0 if se == 0 else float(2 * _sps().norm.sf(abs(diff) / se))
    return Interval(diff, low, high), p_value


def rank_test(old: np.ndarray, new: np.ndarray) -> tuple[float, float]:
    """Mann-Whitney U: (p-value, probability that a new latency exceeds an old one)."""
    if len(old) == 0 or len(new) == 0:
        return math.nan, math.nan
    result = _sps().mannwhitneyu(new, old, alternative="two-sided", method="asymptotic")
    return float(result.pvalue), float(result.statistic / (len(old) * len(new)))


def paired_ratio_change(old_counts: np.ndarray, new_counts: np.ndarray, confidence: float) -> Interval:
    """Relative change of a per-bucket total (new over old minus one), t-interval on paired buckets."""
    buckets = len(old_counts)
    total_old = float(old_counts.sum())
    if buckets == 0 or total_old == 0:
        return Interval(math.nan, math.nan, math.nan)
    est = float(new_counts.sum()) / total_old - 1
    if buckets < 2:
        return Interval(est, -math.inf, math.inf)
    diffs = new_counts.astype(float) - old_counts.astype(float)
    se = float(diffs.std(ddof=1)) / math.sqrt(buckets)
    t = float(_sps().t.ppf(0.5 + confidence / 2, buckets - 1))
    mean_old = total_old / buckets
    return Interval(est, est - t * se / mean_old, est + t * se / mean_old)
