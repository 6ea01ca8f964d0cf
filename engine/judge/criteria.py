"""The criteria of a verdict, each built from its evidence: what was measured, how, and against what.

Shared by the samples' judge and the bucket aggregates' judge where the
evidence allows, so a criterion has one name, one threshold and one wording
whichever source measured it.

Per-endpoint criteria and the family-wise error: with many endpoints, some
interval would lie wholly beyond its limit by chance alone. An endpoint
criterion therefore only *fails* when Holm's step-down procedure over every
endpoint criterion of the verdict rejects "within the limit" at the
one-sided level the intervals use. Passing needs no adjustment: GO already
requires every endpoint to pass on its own (an intersection-union test,
which holds its level without correction), so the adjustment can never make
a GO easier.
"""

from __future__ import annotations

import math

import numpy as np

from engine import units
from engine.judge.calibration import Calibration, correct
from engine.judge.latency import Drift, Latencies, central_change, drift, tail_change
from engine.judge.model import Criterion, _criterion, _num
from engine.judge.policy import Policy
from engine.judge.stats import (
    Interval,
    holm,
    p_beyond,
    proportion_difference,
    rank_test,
    wilson_interval,
    z_value,
)
from engine.judge.to_decide import duration_text

PROVABLE = 1.0
"""A guard can prove its limit when its interval's half-width is at most this share of the margin."""
MUST_PASS = 6
"""Criteria with sampling error that GO may need proven: throughput, central latency, error rate, and,
where the run can prove them, the p95, the p99 and the drift (validation and mismatches cannot fail an
unchanged version by chance at the policy's minimum sample size)."""


def primary_share(confidence: float, must_pass: int = MUST_PASS) -> float:
    """The largest interval half-width, as a share of the margin, at which a tail or the drift is primary.

    GO needs every primary criterion proven within its limit, so an unchanged
    version is GO only as often as all of them prove it at once: their misses
    add up. The budget for those misses is the policy's own error rate,
    ``1 − confidence`` (an unchanged version is GO at least as often as a GO is
    right), split evenly over the :data:`MUST_PASS` criteria. A criterion of
    half-width ``h = z_c·se`` (``z_c`` one-sided at ``confidence``) proves an
    unchanged version within margin ``m`` with probability ``Φ(m/se − z_c)``;
    at least ``1 − ε`` when ``h/m ≤ z_c / (z_c + z_ε)``: 0.41 of the margin at
    95 % (ε = 0.83 %). Wider, it is a guard (:func:`engine.judge.verdict._guard`).
    """
    z_c = z_value(2 * confidence - 1)
    z_miss = z_value(1 - 2 * (1 - confidence) / must_pass)
    return z_c / (z_c + z_miss)


TAILS = (
    (0.95, "latency_p95_increase", "max_p95_increase"),
    (0.99, "latency_p99_increase", "max_p99_increase"),
)


def validation_criterion(rate: float | None, policy: Policy) -> Criterion:
    """The seed's first condition: a measured rate, so no sampling interval (None: not measured)."""
    val = Interval(math.nan, math.nan, math.nan) if rate is None else Interval(rate, rate, rate)
    return _criterion(
        "validation_success_rate",
        val,
        policy.rule.min_validation_success_rate,
        ">=",
        0,
        0,
        "validation success rate",
        unit="share",
        method="measured by the validation gate",
    )


def throughput_criterion(
    interval: Interval, n_old: int, n_new: int, policy: Policy, method: str, detail: dict[str, float | None]
) -> Criterion:
    """What new served against what old served of the same offered requests."""
    return _criterion(
        "throughput_change",
        interval,
        policy.rule.min_throughput_change,
        ">=",
        n_old,
        n_new,
        "throughput change",
        detail,
        method=method,
    )


def error_rate_criterion(
    err_old: int,
    n_old: int,
    err_new: int,
    n_new: int,
    policy: Policy,
    design_old: float = 1.0,
    design_new: float = 1.0,
    endpoint: str | None = None,
) -> Criterion:
    """Error-rate change in points, two-proportion interval (the same for samples and buckets)."""
    err, err_p = proportion_difference(
        err_old, n_old, err_new, n_new, policy.statistics.interval_level, design_old, design_new
    )
    bursty = max(design_old, design_new) > 1.0
    return _criterion(
        "error_rate_increase" + (f"[{endpoint}]" if endpoint is not None else ""),
        err,
        policy.statistics.max_error_rate_increase,
        "<=",
        n_old,
        n_new,
        (f"endpoint {endpoint}: " if endpoint is not None else "") + "error rate change",
        {
            "old_error_rate": _num(err_old / n_old) if n_old else None,
            "new_error_rate": _num(err_new / n_new) if n_new else None,
            "two_proportion_p_value": _num(err_p),
            "design_effect_old": design_old,
            "design_effect_new": design_new,
        },
        unit="points",
        method="Newcombe's interval for two proportions"
        + (", widened for errors in bursts" if bursty else ""),
        endpoint=endpoint,
        role="primary" if endpoint is None else "guard",
    )


def mismatch_criterion(mismatches: int, compared: int, n_old: int, policy: Policy, what: str) -> Criterion:
    """Share of compared new responses that differ from old, Wilson interval."""
    return _criterion(
        "mismatch_rate",
        wilson_interval(mismatches, compared, policy.statistics.interval_level),
        policy.statistics.max_mismatch_rate,
        "<=",
        n_old,
        compared,
        what,
        {"mismatches": float(mismatches), "compared": float(compared)},
        unit="share",
        method="Wilson interval",
    )


def _quantiles(sorted_values: np.ndarray) -> list[float | None]:
    if not sorted_values.size:
        return [None, None, None]
    return [_num(float(v)) for v in np.quantile(sorted_values, [0.5, 0.95, 0.99])]


OWN_TIME = "on each version's own time (its Server-Timing span, CPU wait excluded)"
"""How the latency criteria say what they judged when the samples carry ``service_ms``."""


PROCESS_SPREAD = 0.02
"""How far apart two processes of the same code read on their own time, run to run (sd of the log ratio).

Measured: 8 A/A runs here, each with two freshly started copies of
hello_world_api (20 s at 40 req/s, load 11-16), read the copies' own-time
median ratio from -3.2 % to +0.9 % (mean -1.2 %, sd 1.5 %), each run's own
interval ±0.5-1.5 %; the same two processes kept their difference run after
run, while fresh ones drew another (two copies with PYTHONHASHSEED fixed still
read -2.9 % and +3.1 % apart). A process's place in memory and on the cores
makes it a few percent faster or slower than another copy of itself
(Mytkowicz et al., "Producing wrong data without doing anything obviously
wrong", 2009; pyperf runs many processes for this reason), and the shadow's
place after the primary adds about a percent. A run has one process per
version, so its requests cannot average it out: it is added to every
own-time comparison of the two versions, in quadrature. The round trip's own
noise is many times larger, and the drift compares the same two processes
with themselves, so neither takes it."""


def with_process_spread(interval: Interval, confidence: float, spread: float = PROCESS_SPREAD) -> Interval:
    """``interval`` (a relative change at two-sided ``confidence``) widened by the spread two processes of
    the same code show (:data:`PROCESS_SPREAD`), each side in quadrature on the log scale."""
    values = (interval.estimate, interval.low, interval.high)
    if not all(math.isfinite(v) and v > -1 for v in values):
        return interval
    est, low, high = (math.log1p(v) for v in values)
    extra = z_value(confidence) * spread
    below, above = math.hypot(est - low, extra), math.hypot(high - est, extra)
    return Interval(interval.estimate, math.expm1(est - below), math.expm1(est + above))


def process_half_width(interval: Interval, confidence: float) -> float | None:
    """The part of an own-time interval's half-width that no run length takes away, on its own scale."""
    if not math.isfinite(interval.estimate) or interval.estimate <= -1:
        return None
    return (1 + interval.estimate) * math.expm1(z_value(confidence) * PROCESS_SPREAD)


def _on(measure: str) -> str:
    """The words a latency criterion adds for its measure ("" for the round trip, as before own time)."""
    return ", own time" if measure == "own_time" else ""


def latency_criteria(
    lat: Latencies, policy: Policy, calibration: Calibration | None = None, measure: str = "round_trip"
) -> tuple[list[Criterion], Interval]:
    """The central latency criterion, the p95 and p99 criteria and the drift; and the central interval
    as measured (the seed's rule reads its estimate).

    ``measure`` is what ``lat`` holds: ``own_time`` (each version's ``service_ms``)
    or ``round_trip`` (``latency_ms``); the criteria say which. ``calibration``
    (the system's A/A reading) corrects the central criterion when it read the
    same measure: what the same measurement reads between two copies of old is
    taken out, its noise added (:func:`engine.judge.calibration.correct`).
    """
    stats = policy.statistics
    conf, q = stats.interval_level, stats.latency_quantile
    n_old, n_new = int(lat.old.size), int(lat.new.size)
    measured, method = central_change(lat, q, conf)
    if measure == "own_time":
        measured = with_process_spread(measured, conf)
        method += f"; ± {PROCESS_SPREAD:.0%} (sd) for the two processes' own spread"
    central = correct(measured, calibration, measure)
    p_value, prob_slower = rank_test(lat.old_sorted, lat.new_sorted)
    detail: dict[str, float | None] = {"rank_test_p_value": _num(p_value), "p_new_slower": _num(prob_slower)}
    if measure == "own_time":
        detail["process_half_width"] = process_half_width(central, conf)
    for side, values in (("old", lat.old_sorted), ("new", lat.new_sorted)):
        for label, value in zip(("p50", "p95", "p99"), _quantiles(values), strict=True):
            detail[f"{side}_{label}_ms"] = value
    if lat.paired:
        detail["pairs"] = float(n_old)
    what = f"p{round(q * 100)} latency change"
    if measure == "own_time":
        what += " (per request, " + OWN_TIME + ")" if "median" in method else " (" + OWN_TIME + ")"
        method += "; own time: service_ms (Server-Timing less CPU wait), not the round trip"
    elif "median" in method:
        what += " (per request)"
    aa = None if calibration is None else calibration.reading(measure)
    if calibration is not None and aa is not None and central is not measured:
        detail |= {
            "measured_change": _num(measured.estimate),
            "aa_change": aa.estimate,
            "aa_low": aa.low,
            "aa_high": aa.high,
        }
        what += (
            f", measured {units.change(measured.estimate)} less the {units.change(aa.estimate)} the same "
            "measurement reads between two copies of old"
        )
        method += f"; corrected by the A/A run {calibration.run_id}"
    out = [
        _criterion(
            "latency_increase",
            central,
            policy.rule.max_latency_increase,
            "<=",
            n_old,
            n_new,
            what,
            detail,
            method=method,
        )
    ]
    for quantile, _, _ in TAILS:
        interval, tail_method = tail_change(lat, quantile, conf)
        out.append(tail_criterion(quantile, interval, tail_method, n_old, n_new, policy, measure))
    out.append(drift_criterion(lat, policy, measure))
    return out, measured


def round_trip_criterion(lat: Latencies, policy: Policy, calibration: Calibration | None = None) -> Criterion:
    """What callers waited through the gateway, new against old: a guard beside the own-time criteria.

    Judged on own time, a version whose slowness lies outside its own span
    (its HTTP server, the size of its answers, its connections) would pass
    unseen: the round trip keeps it in view. A guard, not primary: on a busy
    machine the round trip's noise (run-queue waits, the shadow's position)
    is many times the versions' own, and it cannot be asked to prove the
    margin; it holds up GO on evidence of a regression, as an endpoint does
    (:func:`engine.judge.verdict._guard`), and fails when wholly beyond.
    Corrected by the system's A/A reading of the round trip when there is one.
    """
    stats = policy.statistics
    measured, method = central_change(lat, stats.latency_quantile, stats.interval_level)
    interval = correct(measured, calibration, "round_trip")
    detail: dict[str, float | None] = {}
    for side, values in (("old", lat.old_sorted), ("new", lat.new_sorted)):
        for label, value in zip(("p50", "p95", "p99"), _quantiles(values), strict=True):
            detail[f"{side}_{label}_ms"] = value
    what = f"round-trip p{round(stats.latency_quantile * 100)} latency change (what callers waited)"
    if interval is not measured and calibration is not None:
        detail["measured_change"] = _num(measured.estimate)
        method += f"; corrected by the A/A run {calibration.run_id}"
    return _criterion(
        "latency_round_trip_increase",
        interval,
        policy.rule.max_latency_increase,
        "<=",
        int(lat.old.size),
        int(lat.new.size),
        what,
        detail,
        method=method + "; latency_ms, the gateway's round trip",
        role="guard",
    )


def drift_criterion(lat: Latencies, policy: Policy, measure: str = "round_trip") -> Criterion:
    """The central new/old ratio in the run's second half over its first half, with its pace."""
    stats = policy.statistics
    found = drift(lat, stats.latency_quantile, stats.interval_level)
    mode = "paired" if lat.paired else "unpaired"
    return drift_from(
        found,
        f"{mode}: central change per half, compared",
        int(lat.old.size),
        int(lat.new.size),
        policy,
        measure,
    )


def drift_from(
    found: Drift | None, method: str, n_old: int, n_new: int, policy: Policy, measure: str = "round_trip"
) -> Criterion:
    """The drift criterion from a measured :class:`Drift` (None: the run was too short to halve)."""
    what = f"latency ratio drift (second half of the run over the first{_on(measure)})"
    limit = policy.statistics.max_latency_drift
    if found is None:
        nan = Interval(math.nan, math.nan, math.nan)
        return _criterion("latency_drift", nan, limit, "<=", n_old, n_new, what, method="too short to halve")
    provable = can_prove(found.change, limit, share=primary_share(policy.statistics.confidence_level))
    if not provable:
        method += "; a guard: its halves are too noisy to prove it within the limit"
    criterion = _criterion(
        "latency_drift",
        found.change,
        limit,
        "<=",
        n_old,
        n_new,
        what,
        {
            "early_change": _num(found.early),
            "late_change": _num(found.late),
            "per_10_min": _num(found.per_10_min),
            "seconds_apart": _num(found.seconds_apart),
        },
        method=method,
        role="primary" if provable else "guard",
    )
    pace = (
        f"; new/old went from {units.change(found.early)} to {units.change(found.late)} "
        f"over {duration_text(found.seconds_apart)} ({pace_text(found)})"
    )
    return criterion.model_copy(update={"explanation": criterion.explanation + pace})


def tail_criterion(
    quantile: float,
    interval: Interval,
    method: str,
    n_old: int,
    n_new: int,
    policy: Policy,
    measure: str = "round_trip",
) -> Criterion:
    """p95 or p99: proven like the others once enough requests lie beyond it, a guard before."""
    stats = policy.statistics
    name, limit = next((name, getattr(stats, lim)) for q, name, lim in TAILS if q == quantile)
    beyond = min(n_old, n_new) * (1 - quantile)
    proven = beyond >= stats.min_tail_samples and can_prove(
        interval, limit, share=primary_share(stats.confidence_level)
    )
    if beyond < stats.min_tail_samples:
        method += f"; a guard: {beyond:.0f} per version beyond it, {stats.min_tail_samples} to prove it"
    elif not proven:
        method += "; a guard: its interval is too wide at this size to prove it"
    return _criterion(
        name,
        interval,
        limit,
        "<=",
        n_old,
        n_new,
        f"p{round(quantile * 100)} latency change" + (f" ({OWN_TIME})" if measure == "own_time" else ""),
        {"beyond_per_version": float(beyond)},
        method=method,
        role="primary" if proven else "guard",
    )


def on_evidence_only(c: Criterion) -> bool:
    """Whether a guard is weighed on evidence of a regression only, never asked to be within its limit:
    an endpoint's criteria and the round trip, second views of what a primary criterion proves (the pooled
    figures, the own time). Tails and the drift are judged by no other criterion: a tail on its few
    slowest requests is the only one that sees a slow 3 % of requests (:func:`engine.judge.verdict._guard`).
    """
    return c.endpoint is not None or c.name == "latency_round_trip_increase"


def can_prove(
    interval: Interval, limit: float, direction: str = "<=", unit: str = "change", share: float = PROVABLE
) -> bool:
    """Whether this run could prove a criterion within ``limit``: its interval's half-width toward the
    limit is at most ``share`` of the margin (on the log scale for a relative change).

    With the whole margin (``PROVABLE``), an unchanged version (estimate about
    0) proves it in at least half the runs; with half of it (``PRIMARY``), in
    about 97.5 %. A tail or the drift is primary only at ``PRIMARY``, a guard
    otherwise; a guard wider than ``PROVABLE`` means the run is too small, or
    the machine too noisy, to prove it: it holds up GO only on evidence of a
    regression (:func:`engine.judge.verdict._guard`), not on its own noise.
    """
    est, low, high = interval.estimate, interval.low, interval.high
    if not all(math.isfinite(v) for v in (est, low, high, limit)):
        return False
    if unit == "change":
        if min(est, low, limit) <= -1:
            return False
        est, low, high, limit = (math.log1p(v) for v in (est, low, high, limit))
    half = high - est if direction == "<=" else est - low
    return limit != 0 and half <= share * abs(limit)


def pace_text(found: Drift) -> str:
    """The drift's pace in a unit no shorter than the time it was seen over (no wild extrapolation)."""
    unit_s, unit = next(
        ((s, u) for s, u in ((60, "min"), (600, "10 min")) if found.seconds_apart <= s * 10), (3600, "h")
    )
    per = math.expm1(math.log1p(found.change.estimate) * unit_s / found.seconds_apart)
    return f"{units.change(per)} per {unit}"


def endpoint_criteria(
    lat: Latencies,
    errors: list[tuple[int, int, int, int, float, float]],
    names: list[str],
    policy: Policy,
    measure: str = "round_trip",
) -> list[Criterion]:
    """Latency and errors of every endpoint with enough samples on its own, Holm across them.

    ``errors[code]``: (errors old, requests old, errors new, requests new,
    design effect old, design effect new) of endpoint ``names[code]``. Only
    when the run has more than one endpoint: with one, these would repeat
    the pooled criteria.
    """
    stats = policy.statistics
    conf = stats.interval_level
    if len(names) < 2:
        return []
    for_errors = max(
        stats.min_samples_per_endpoint, errors_decidable_from(stats.max_error_rate_increase, conf)
    )
    out: list[tuple[Criterion, Interval]] = []
    for code, name in enumerate(names):
        err_old, n_old, err_new, n_new, d_old, d_new = errors[code]
        if min(n_old, n_new) < stats.min_samples_per_endpoint:
            continue
        sub = lat.endpoint(code)
        interval, method = central_change(sub, stats.latency_quantile, conf)
        endpoint_detail: dict[str, float | None] = {}
        if measure == "own_time":
            interval = with_process_spread(interval, conf)
            endpoint_detail["process_half_width"] = process_half_width(interval, conf)
        latency = _criterion(
            f"latency_increase[{name}]",
            interval,
            policy.rule.max_latency_increase,
            "<=",
            int(sub.old.size),
            int(sub.new.size),
            f"endpoint {name}: p{round(stats.latency_quantile * 100)} latency change{_on(measure)}",
            endpoint_detail,
            method=method,
            endpoint=name,
            role="guard",
        )
        out.append((latency, interval))
        if min(n_old, n_new) >= for_errors:
            error = error_rate_criterion(err_old, n_old, err_new, n_new, policy, d_old, d_new, endpoint=name)
            out.append((error, _interval_of(error)))
    return _holm(out, conf)


def errors_decidable_from(margin: float, confidence: float) -> int:
    """Requests per version from which an endpoint's error rate is judged on its own: the fewest for
    which no error at all would clear ``margin`` (Wilson's bound for 0 of n is z²/(n + z²)).

    Fewer, and even a flawless endpoint's interval crosses the limit: judged
    then, every small endpoint would hold up GO without telling anything.
    """
    if margin <= 0:
        return 1 << 62
    z = z_value(confidence)
    return math.ceil(z * z * (1 - margin) / margin)


def _interval_of(c: Criterion) -> Interval:
    nan = math.nan
    return Interval(
        c.observed if c.observed is not None else nan,
        c.ci_low if c.ci_low is not None else nan,
        c.ci_high if c.ci_high is not None else nan,
    )


def _holm(items: list[tuple[Criterion, Interval]], confidence: float) -> list[Criterion]:
    """Fail an endpoint criterion only where Holm's procedure over all of them rejects (module docstring)."""
    alpha = (1 - confidence) / 2
    p_values = [p_beyond(iv, c.threshold, c.direction, confidence) for c, iv in items]
    adjusted = holm(p_values)
    out = []
    for (c, _), p, adj in zip(items, p_values, adjusted, strict=True):
        detail = c.detail | {"p_beyond_limit": _num(p), "holm_p": _num(adj)}
        update: dict[str, object] = {"detail": detail}
        if not c.passed and c.conclusive and adj >= alpha:
            update["conclusive"] = False
            update["explanation"] = (
                f"{c.explanation}, but not beyond doubt with {len(items)} endpoint criteria weighed "
                f"together (Holm-adjusted p {adj:.3f})"
            )
        out.append(c.model_copy(update=update))
    return out
