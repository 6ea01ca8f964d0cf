"""Latency evidence: the central change, the tails and the drift, paired when the run allows it.

Paired (a mirrored run, requests joined on ``request_id``): the central
change is the median of the per-request ratios new/old with the sign test's
interval (:func:`engine.judge.stats.median_log_ratio`); a tail is the ratio
of the two versions' quantiles over the same requests, its interval from the
pairs (:func:`engine.judge.stats.paired_quantile_change`).

Unpaired (no ids, or a canary that sent each request to one version): the
ratio of the two versions' quantiles, its variance from time windows, so
load both saw in the same seconds still cancels as far as it can
(:func:`engine.judge.stats.timed_quantile_change`).

Drift compares the central change in the first and the second half of the
run (by time): the late ratio over the early one. A version that leaks, or
whose cache or pool degrades, shows a ratio that climbs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from engine.judge.stats import (
    BOOTSTRAP_LIMIT,
    Interval,
    bootstrap_quantile_change,
    median_log_ratio,
    paired_quantile_change,
    timed_quantile_change,
    z_value,
)

FLOOR_MS = 1e-3
"""Latencies below 1 µs are read as 1 µs, so a ratio never divides by a clock's zero."""
TAIL_FROM = 0.9
"""From this quantile up the interval comes from a block bootstrap at small sizes (see
:func:`engine.judge.stats.bootstrap_quantile_change`); below, order statistics are well calibrated."""
MIN_HALF = 20
"""Fewer samples than this in a half of the run: no drift is measured."""


@dataclass(frozen=True)
class Latencies:
    """Ok latencies of both versions in time order, with when and where each was measured.

    Paired: ``old[i]`` and ``new[i]`` answered the same request (equal
    lengths, shared seconds and endpoint). Unpaired: two independent samples.
    """

    paired: bool
    old: np.ndarray
    new: np.ndarray
    old_seconds: np.ndarray
    new_seconds: np.ndarray
    old_endpoint: np.ndarray
    new_endpoint: np.ndarray
    log_ratios: np.ndarray | None = None
    """Per-request log(new/old), paired only (computed once, then cut with the rest)."""
    new_first: np.ndarray | None = None
    """Paired only: new was called before old for this request (None: not recorded)."""

    @functools.cached_property
    def old_sorted(self) -> np.ndarray:
        return np.sort(self.old)

    @functools.cached_property
    def new_sorted(self) -> np.ndarray:
        return np.sort(self.new)

    @classmethod
    def pairs(
        cls,
        old: np.ndarray,
        new: np.ndarray,
        seconds: np.ndarray,
        endpoint: np.ndarray,
        new_first: np.ndarray | None = None,
    ) -> Latencies:
        """Latencies of the same requests (``old[i]`` and ``new[i]`` answered request ``i``)."""
        ratios = np.log(np.maximum(new, FLOOR_MS) / np.maximum(old, FLOOR_MS))
        return cls(True, old, new, seconds, seconds, endpoint, endpoint, ratios, new_first)

    def subset(self, old_at: np.ndarray | slice, new_at: np.ndarray | slice) -> Latencies:
        """The latencies at ``old_at``/``new_at`` (index arrays in time order, or slices: views)."""
        if self.paired:  # one selection for both sides
            seconds, endpoint = self.old_seconds[old_at], self.old_endpoint[old_at]
            ratios = None if self.log_ratios is None else self.log_ratios[old_at]
            return Latencies(
                True, self.old[old_at], self.new[old_at], seconds, seconds, endpoint, endpoint, ratios
            )
        return Latencies(
            False,
            self.old[old_at],
            self.new[new_at],
            self.old_seconds[old_at],
            self.new_seconds[new_at],
            self.old_endpoint[old_at],
            self.new_endpoint[new_at],
        )

    @functools.cached_property
    def _old_groups(self) -> tuple[np.ndarray, np.ndarray]:
        return endpoint_groups(self.old_endpoint)

    @functools.cached_property
    def _new_groups(self) -> tuple[np.ndarray, np.ndarray]:
        return self._old_groups if self.paired else endpoint_groups(self.new_endpoint)

    def endpoint(self, code: int) -> Latencies:
        """One endpoint's latencies (grouped once per side: a million rows are not masked per endpoint)."""
        (old_order, old_bounds), (new_order, new_bounds) = self._old_groups, self._new_groups
        return self.subset(old_order[_bounds(old_bounds, code)], new_order[_bounds(new_bounds, code)])

    def halves(self) -> tuple[Latencies, Latencies] | None:
        """The first and the second half of the run by time (slices: the arrays are in time order)."""
        if not (self.old.size and self.new.size):
            return None
        first = min(self.old_seconds[0], self.new_seconds[0])
        last = max(self.old_seconds[-1], self.new_seconds[-1])
        middle = (float(first) + float(last)) / 2
        cut_old = int(np.searchsorted(self.old_seconds, middle))
        cut_new = int(np.searchsorted(self.new_seconds, middle))
        return self.subset(slice(0, cut_old), slice(0, cut_new)), self.subset(
            slice(cut_old, None), slice(cut_new, None)
        )


def endpoint_groups(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers grouped by endpoint code, each group in time order, and where each group starts."""
    small = codes.astype(np.int16) if codes.size and int(codes.max()) < 32_767 else codes
    order = np.argsort(small, kind="stable")  # radix sort for 16-bit codes
    bounds = np.searchsorted(small[order], np.arange(int(codes.max()) + 2 if codes.size else 1))
    return order, bounds


def _bounds(bounds: np.ndarray, code: int) -> slice:
    if code + 1 >= bounds.size:
        return slice(0, 0)
    return slice(int(bounds[code]), int(bounds[code + 1]))


def central_change(lat: Latencies, q: float, confidence: float) -> tuple[Interval, str]:
    """The policy's latency quantile change and how it was measured (see the module docstring)."""
    if lat.log_ratios is not None and round(q, 3) == 0.5:
        by_order = _by_call_order(lat.log_ratios, lat.new_first, confidence)
        if by_order is not None:
            return by_order, "paired: median of per-request ratios new/old in each call order, averaged"
        return median_log_ratio(lat.log_ratios, confidence), "paired: median of per-request ratios new/old"
    if not lat.paired and q < TAIL_FROM:
        return _timed(lat, q, confidence), f"unpaired: p{round(q * 100)} new over p{round(q * 100)} old"
    return tail_change(lat, q, confidence)


def _timed(lat: Latencies, q: float, confidence: float) -> Interval:
    return timed_quantile_change(
        lat.old, lat.new, lat.old_seconds, lat.new_seconds, q, confidence, lat.old_sorted, lat.new_sorted
    )


MIN_ORDER_SHARE = 0.1
"""Each call order must hold this share of the pairs (and MIN_HALF of them) to be judged apart."""


def _by_call_order(ratios: np.ndarray, new_first: np.ndarray | None, confidence: float) -> Interval | None:
    """The per-request median within each call order (new first, old first), averaged on the log scale.

    The gateway calls the two versions of a mirrored request one after the
    other, in random order, and the one called first is a few percent
    slower (measured here: +5.7 % and -4.3 % medians for the two orders of
    one run). Pooled, the two orders make a two-humped ratio whose median
    sits between the humps, where few ratios are: a wide interval. Within an
    order the handicap is a constant that the other order mirrors, so the
    average of the two medians has it cancel exactly, whatever the share of
    each order. Each median has the sign test's interval; their log standard
    errors combine as independent (the orders are drawn per request).
    """
    if new_first is None:
        return None
    halves = [ratios[new_first], ratios[~new_first]]
    if min(h.size for h in halves) < max(MIN_HALF, MIN_ORDER_SHARE * ratios.size):
        return None
    z = z_value(confidence)
    logs = [_log_se(median_log_ratio(h, confidence), z) for h in halves]
    if not all(math.isfinite(v) for pair in logs for v in pair):
        return None
    mean = (logs[0][0] + logs[1][0]) / 2
    se = math.hypot(logs[0][1], logs[1][1]) / 2
    return Interval(math.expm1(mean), math.expm1(mean - z * se), math.expm1(mean + z * se))


def tail_change(lat: Latencies, q: float, confidence: float) -> tuple[Interval, str]:
    """The ``q`` quantile of new over old's, from the same requests when paired."""
    label = f"p{round(q * 100)}"
    mode = "paired" if lat.paired else "unpaired"
    what = f"{mode}: {label} new over {label} old" + (" on the same requests" if lat.paired else "")
    if max(lat.old.size, lat.new.size) <= BOOTSTRAP_LIMIT and q >= TAIL_FROM:
        interval = bootstrap_quantile_change(lat.old, lat.new, q, confidence, lat.paired)
        return interval, what + ", block bootstrap"
    if lat.paired:
        interval = paired_quantile_change(lat.old, lat.new, q, confidence, lat.old_sorted, lat.new_sorted)
        return interval, what + ", Bahadur interval on the pairs"
    return _timed(lat, q, confidence), what + ", variance over time windows"


def _log_se(interval: Interval, z: float) -> tuple[float, float]:
    """An interval on a relative change as (log ratio, standard error of it); NaN when not measured."""
    if not (interval.low > -1 and math.isfinite(interval.high) and interval.estimate > -1):
        return math.nan, math.nan
    return math.log1p(interval.estimate), (math.log1p(interval.high) - math.log1p(interval.low)) / (2 * z)


@dataclass(frozen=True)
class Drift:
    """Late half's central ratio over the early half's, and what that is per 10 minutes."""

    change: Interval
    early: float
    late: float
    per_10_min: float
    seconds_apart: float


def drift(lat: Latencies, q: float, confidence: float) -> Drift | None:
    """How the central new/old ratio moved from the first half of the run to the second (None: too short)."""
    halves = lat.halves()
    if halves is None or any(min(h.old.size, h.new.size) < MIN_HALF for h in halves):
        return None
    early, late = (central_change(h, q, confidence)[0] for h in halves)
    centre = [float(np.concatenate([h.old_seconds, h.new_seconds]).mean()) for h in halves]
    found = compare_halves(early, late, centre[1] - centre[0], confidence)
    spread = None if lat.log_ratios is None else _between_batches_se(lat.log_ratios, confidence)
    if found is None or spread is None:
        return found
    z = z_value(confidence)
    diff = math.log1p(found.change.estimate)
    se = (math.log1p(found.change.high) - math.log1p(found.change.low)) / (2 * z)
    if spread <= se:
        return found
    change = Interval(found.change.estimate, math.expm1(diff - z * spread), math.expm1(diff + z * spread))
    return Drift(change, found.early, found.late, found.per_10_min, found.seconds_apart)


DRIFT_BATCHES = 16
"""The paired drift's error is also read from this many consecutive batches of the run (see below)."""


def _between_batches_se(log_ratios: np.ndarray, confidence: float) -> float | None:
    """Standard error of (late half − early half) from the spread of per-batch medians, scaled to z.

    Within a half, the sign test's interval treats the ratio's centre as
    fixed. On a shared machine it is not: the shadow's handicap follows the
    load from second to second (a real 6-second A/A-like run here read
    new/old -14.8 % early and +20.4 % late, "+41 % [-3.5 %, +107 %]"). The
    medians of 16 consecutive batches carry that wander; their spread
    within each half, with Student's t for the few batches, bounds what the
    halves may differ by chance. None below 16 batches of 20 pairs.
    """
    size = log_ratios.size // DRIFT_BATCHES
    if size < MIN_HALF:
        return None
    medians = np.median(log_ratios[: size * DRIFT_BATCHES].reshape(DRIFT_BATCHES, size), axis=1)
    half = DRIFT_BATCHES // 2
    early, late = medians[:half], medians[half:]
    pooled = (early.var(ddof=1) + late.var(ddof=1)) / 2
    se = math.sqrt(pooled * (1 / half + 1 / half))
    t = float(_t_quantile(confidence, DRIFT_BATCHES - 2))
    return se * t / z_value(confidence)


def _t_quantile(confidence: float, df: int) -> float:
    from scipy import stats  # already loaded by z_value

    return float(stats.t.ppf(0.5 + confidence / 2, df))


def compare_halves(early: Interval, late: Interval, seconds_apart: float, confidence: float) -> Drift | None:
    """The late half's change over the early half's, their log standard errors combined as independent."""
    z = z_value(confidence)
    (a, se_a), (b, se_b) = _log_se(early, z), _log_se(late, z)
    if not all(math.isfinite(v) for v in (a, b, se_a, se_b)):
        return None
    diff, se = b - a, math.hypot(se_a, se_b)
    change = Interval(math.expm1(diff), math.expm1(diff - z * se), math.expm1(diff + z * se))
    apart = max(seconds_apart, 1e-9)
    return Drift(change, math.expm1(a), math.expm1(b), math.expm1(diff * 600 / apart), apart)
