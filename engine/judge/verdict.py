"""The go/no-go verdict: the seed's rule, each criterion with its evidence, and the triggers.

The seed's rule stays visible as is: ``new_better`` iff validation >= 0.8,
throughput change >= -5 % and latency increase <= +10 % (point estimates).
What Switchyard adds is how far to trust it. Each criterion carries the
observed value, its threshold, a confidence interval and the sample sizes.
Thresholds are practical margins: a significant change *inside* the margin
still passes. The verdict is

* ``GO``: every primary criterion passes and its whole interval is on the
  good side, and no guard has evidence of being beyond its limit;
* ``NO_GO``: some criterion fails and its whole interval is on the bad side
  (for the endpoints, after Holm's adjustment), or a seed trigger fired;
* ``INCONCLUSIVE``: too few samples, a primary criterion's interval
  straddles its threshold, or a guard holds GO up (:func:`_guard`).

Each interval's ends are one-sided bounds at the policy's
``confidence_level`` (a 90 % interval for 95 %: ``interval_level``). GO is
an intersection-union test: it claims that *every* primary criterion is
within its limit, and it is wrong only if one of them is not, so each
one-sided test at level ``α = 1 − confidence`` gives GO that level with no
correction for their number (Berger 1982; the TOST of equivalence trials).
Intervals at the two-sided ``confidence`` tested each part at ``α/2``: that
bought no safety the verdict promises and cost its power, since an
unchanged version is GO only when all primaries prove it at once (their
misses add up: 1 run in 10 of 1,000 paired requests was INCONCLUSIVE).

Primary: the seed's three, the error rate, the mismatches, and the tails
(p95, p99) and the drift once the run can prove them with a share of that
error budget (:func:`engine.judge.criteria.primary_share`). Guards: each
endpoint on its own, a tail or a drift too noisy for that. A guard looks for
a regression the pooled figures hide; it stops a GO when its evidence points
to one, but need not be proven within its limit, or no run on a busy
machine would ever be long enough.

Mirrored runs with request ids are judged per request (:mod:`engine.judge.pairs`):
load that slowed both versions at once cancels. Too little data never gives GO.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl

from engine import units
from engine.judge.calibration import Calibration
from engine.judge.criteria import (
    can_prove,
    endpoint_criteria,
    error_rate_criterion,
    latency_criteria,
    mismatch_criterion,
    on_evidence_only,
    round_trip_criterion,
    throughput_criterion,
    validation_criterion,
)
from engine.judge.latency import Latencies, endpoint_groups
from engine.judge.model import Criterion, LatencyMeasure, Trigger, Verdict, VerdictName, _criterion, _num
from engine.judge.pairs import Pairs, Side, pair_requests, split_sides
from engine.judge.policy import Policy
from engine.judge.stats import (
    Interval,
    burst_effect,
    p_beyond,
    p_not_within,
    paired_served_change,
    served_change,
)
from engine.judge.to_decide import MoreEvidence, duration_text, more_evidence

__all__ = [
    "Criterion",
    "Trigger",
    "Verdict",
    "VerdictName",
    "_criterion",
    "_num",
    "error_rate_criterion",
    "mismatch_criterion",
    "validation_criterion",
]


def bucket_counts(samples: pl.DataFrame, bucket_s: float) -> pl.DataFrame:
    """Successful responses per time bucket and version: columns bucket, old, new."""
    every = f"{max(1, int(round(bucket_s * 1000)))}ms"
    counted = (
        samples.filter(pl.col("ok"))
        .with_columns(pl.col("ts").dt.truncate(every).alias("bucket"))
        .group_by("bucket", "version")
        .len()
        .pivot(on="version", index="bucket", values="len")
    )
    all_buckets = samples.select(pl.col("ts").dt.truncate(every).alias("bucket")).unique()
    out = all_buckets.join(counted, on="bucket", how="left")
    for version in ("old", "new"):
        if version not in out.columns:
            out = out.with_columns(pl.lit(0, pl.UInt32).alias(version))
    return out.select("bucket", pl.col("old").fill_null(0), pl.col("new").fill_null(0)).sort("bucket")


def judge_samples(
    samples: pl.DataFrame,
    policy: Policy,
    *,
    validation_success_rate: float | None,
    failed_health_checks: int | None = None,
    now: dt.datetime | None = None,
    bucket_s: float | None = None,
    calibration: Calibration | None = None,
) -> Verdict:
    """Judge a frame of samples (see :mod:`engine.judge.samples`) against ``policy``.

    Paired when the frame is a mirrored run with request ids (see
    :mod:`engine.judge.pairs`), as two independent samples otherwise.
    ``bucket_s`` is accepted for the callers that pass the run's bucket; no
    criterion needs buckets any more (throughput compares served counts).
    ``calibration`` is the system's A/A reading: the central latency change is
    corrected by it (:func:`engine.judge.calibration.correct`); the seed's rule
    keeps the raw figure.
    """
    del bucket_s
    conf = policy.statistics.interval_level
    old, new, names = split_sides(samples)
    pairs = pair_requests(old, new)
    n_old, n_new = old.size, new.size
    criteria = [validation_criterion(validation_success_rate, policy)]

    # throughput: what each version served of what it was offered
    tp, tp_method = _throughput(old, new, pairs, conf)
    duration = span_s(samples)
    ok_old, ok_new = int(old.ok.sum()), int(new.ok.sum())
    tp_detail: dict[str, float | None] = {
        "old_ok": float(ok_old),
        "new_ok": float(ok_new),
        "offered": float(pairs.size if pairs is not None else max(n_old, n_new)),
        "old_rps": _num(ok_old / duration) if duration else None,
        "new_rps": _num(ok_new / duration) if duration else None,
    }
    criteria.append(throughput_criterion(tp, n_old, n_new, policy, tp_method, tp_detail))

    # latency: the central change, p95, p99 and the drift over the run
    lat, round_trip = _latencies(old, new, pairs)
    measure: LatencyMeasure = "round_trip" if round_trip is None else "own_time"
    latency, central = latency_criteria(lat, policy, calibration, measure)
    criteria.append(latency[0])

    # error rate: two proportions, widened when errors come in bursts
    err_old, err_new = n_old - ok_old, n_new - ok_new
    d_old, d_new = (
        burst_effect(~old.ok, policy.statistics.confidence_level),
        burst_effect(~new.ok, policy.statistics.confidence_level),
    )
    criteria.append(error_rate_criterion(err_old, n_old, err_new, n_new, policy, d_old, d_new))

    # correctness: share of new responses that differ from old
    on_new = pl.col("version") == "new"
    compared, mismatches = samples.select(
        (on_new & pl.col("match").is_not_null()).sum().alias("c"),
        (on_new & ~pl.col("match")).sum().alias("m"),
    ).row(0)
    criteria.append(mismatch_criterion(mismatches or 0, compared, n_old, policy, "response mismatch rate"))

    criteria += latency[1:]
    if round_trip is not None:  # a regression only callers see (its HTTP layer, answers' size) still counts
        criteria.append(round_trip_criterion(round_trip, policy, calibration))
    errors = _endpoint_errors(old, new, len(names), policy.statistics.confidence_level)
    criteria += endpoint_criteria(lat, errors, names, policy, measure)

    # the seed's p95 trigger reads what the latency criteria read: on own time, the run-queue waits of a
    # busy machine are not a version's p95 (a real A/A run here, load 12: round-trip p95 2.02x, NO_GO on
    # two identical copies). Mid-run, RunningTriggers reads the round trip, with breach_checks against noise.
    p95_old = float(np.quantile(lat.old_sorted, 0.95)) if lat.old.size else None
    p95_new = float(np.quantile(lat.new_sorted, 0.95)) if lat.new.size else None
    triggers = seed_triggers(
        policy,
        validation=validation_success_rate,
        error_rate=err_new / n_new if n_new else None,
        p95_ratio=p95_new / p95_old if p95_old and p95_new is not None else None,
        throughput_ratio=throughput_ratio(ok_old, ok_new, n_new, None),
        failed_health_checks=failed_health_checks,
    )
    verdict = conclude(
        criteria, triggers, n_old, n_new, policy, validation_success_rate, tp, central, now, duration
    )
    update = {"paired": pairs is not None, "calibration": calibration, "latency_measure": measure}
    return verdict.model_copy(update=update)


def _throughput(old: Side, new: Side, pairs: Pairs | None, confidence: float) -> tuple[Interval, str]:
    if pairs is not None:
        return (
            paired_served_change(pairs.old_ok, pairs.new_ok, confidence),
            "paired: share of the requests offered to both that each answered ok",
        )
    if not new.size:  # no new sample at all: not measured (a failing new version still leaves error rows)
        return Interval(math.nan, math.nan, math.nan), "no new samples"
    offered = max(old.size, new.size)
    interval = served_change(int(old.ok.sum()), int(new.ok.sum()), offered, confidence)
    return interval, "unpaired: ok responses over the same window, as shares of the larger side"


def _latencies(old: Side, new: Side, pairs: Pairs | None) -> tuple[Latencies, Latencies | None]:
    """The latencies the criteria judge, and the round trip beside them when those are the versions' own time.

    Own time (``service_ms``: each version's ``Server-Timing`` span less the
    time its thread waited for a CPU) when every ok request of both versions
    reports it; the round trip (``latency_ms``) otherwise, alone. On a busy
    machine most of a fast service's round trip is outside either version
    (HTTP, wake-ups, run-queue waits), and it differed between the two calls
    of one request more than the versions did: per-request log ratio sd
    0.9-1.6 on the round trip, 0.25-0.38 on own time (3 real A/A runs of
    hello_world_api here, load ~10).
    """
    if pairs is not None:
        both = pairs.old_ok & pairs.new_ok
        seconds, endpoint = pairs.seconds[both], pairs.endpoint[both]
        first = None if pairs.new_first is None else pairs.new_first[both]
        trip = Latencies.pairs(pairs.old_ms[both], pairs.new_ms[both], seconds, endpoint, first)
        if pairs.old_own is None or pairs.new_own is None:
            return trip, None
        own_old, own_new = pairs.old_own[both], pairs.new_own[both]
        if not (own_old.size and np.isfinite(own_old).all() and np.isfinite(own_new).all()):
            return trip, None
        return Latencies.pairs(own_old, own_new, seconds, endpoint, first), trip
    o, n = old.ok_only(), new.ok_only()
    trip = Latencies(False, o.ms, n.ms, o.seconds, n.seconds, o.endpoint, n.endpoint)
    if o.own_ms is None or n.own_ms is None or not (o.size and n.size):
        return trip, None
    if not (np.isfinite(o.own_ms).all() and np.isfinite(n.own_ms).all()):
        return trip, None
    return Latencies(False, o.own_ms, n.own_ms, o.seconds, n.seconds, o.endpoint, n.endpoint), trip


def _endpoint_errors(
    old: Side, new: Side, endpoints: int, confidence: float
) -> list[tuple[int, int, int, int, float, float]]:
    """Per endpoint code: errors and requests of each version, and their burstiness (design effects)."""
    if endpoints < 2:
        return []
    sides = []
    for side in (old, new):
        order, bounds = endpoint_groups(side.endpoint)
        failed = ~side.ok[order]
        sides.append(
            [
                failed[bounds[c] : bounds[c + 1]] if c + 1 < bounds.size else failed[:0]
                for c in range(endpoints)
            ]
        )
    return [
        (
            int(o.sum()),
            int(o.size),
            int(n.sum()),
            int(n.size),
            burst_effect(o, confidence),
            burst_effect(n, confidence),
        )
        for o, n in zip(*sides, strict=True)
    ]


def span_s(samples: pl.DataFrame) -> float | None:
    """Seconds from the first to the last sample (None for fewer than two distinct times)."""
    if samples.height < 2:
        return None
    first, last = samples["ts"].min(), samples["ts"].max()
    seconds = (last - first).total_seconds() if first is not None and last is not None else 0.0
    return seconds if seconds > 0 else None


def conclude(
    criteria: list[Criterion],
    triggers: list[Trigger],
    n_old: int,
    n_new: int,
    policy: Policy,
    validation_success_rate: float | None,
    throughput: Interval,
    latency: Interval,
    now: dt.datetime | None,
    duration_s: float | None = None,
) -> Verdict:
    """The verdict from its criteria and triggers, beside the seed's own rule on point estimates.

    One place for both judges (samples and bucket aggregates), so a source can
    never decide differently from the same evidence.
    """
    rule = policy.rule
    v = validation_success_rate
    new_better = bool(
        v is not None
        and v >= rule.min_validation_success_rate
        and math.isfinite(throughput.estimate)
        and throughput.estimate >= rule.min_throughput_change
        and math.isfinite(latency.estimate)
        and latency.estimate <= rule.max_latency_increase
    )
    criteria = [_guard(c, policy) for c in criteria]
    verdict, reasons = _decide(criteria, triggers, n_old, n_new, policy)
    to_decide = keep_running(criteria, n_old, n_new, policy, duration_s) if verdict == "INCONCLUSIVE" else []
    return Verdict(
        verdict=verdict,
        new_better=new_better,
        criteria=criteria,
        triggers=triggers,
        reasons=reasons,
        confidence_level=policy.statistics.confidence_level,
        interval_level=policy.statistics.interval_level,
        n_old=n_old,
        n_new=n_new,
        judged_at=now or dt.datetime.now(dt.UTC),
        policy=policy,
        to_decide=to_decide,
        duration_s=duration_s,
    )


def _guard(c: Criterion, policy: Policy) -> Criterion:
    """A guard with whether it lets a GO through (one-sided tests on the log scale for a change).

    A guard is a criterion the run cannot be asked to prove at the verdict's
    confidence (an endpoint, a tail resting on its few slowest requests, a
    drift from two noisy halves). It holds up GO on evidence of a regression:
    beyond its limit at ``guard_evidence`` (70 %) one-sided. A tail or a drift
    whose interval could prove its limit (:func:`engine.judge.criteria.can_prove`,
    half-width at most the margin) is asked more: within it at
    ``guard_confidence`` (80 %); a run that could have shown it within and did
    not is a reason to wait. That demand is what keeps a tail regression from
    GO at the sizes where the tail is not yet primary (simulated, p99 tail,
    busy noise, 3,000 requests: GO 4 % with it, 36 % without).

    An endpoint, and the round trip beside own time, are only ever weighed on
    evidence (:func:`engine.judge.criteria.on_evidence_only`): second views of
    what a primary criterion already proves. The endpoints are a family
    (five in the simulated runs, more in real systems), each a fraction of
    the run: asking every one of them to be within at 80 % is an
    intersection-union test at 20 %, whose power falls with their number
    for any change, even one well inside the margin ("errors +0.5 pt", right
    GO, stayed GO in ~48 % of runs of 10,000 requests, every endpoint error
    guard a coin toss on its own). A slower or failing endpoint is far beyond
    its limit, where the evidence is plain (endpoint +60 %: GO 0 of 60 at
    1,000 requests either way). Asked to be proven within, a noisy guard
    would hold up nearly every GO on a busy machine (10 real A/A runs of 800
    pairs here: 9 INCONCLUSIVE on p99 and drift alone), whatever the version.

    A tail or a drift too noisy to prove its limit also holds up GO while its
    estimate is beyond the limit: GO never passes a figure the seed's own
    point-estimate rule would read as worse than allowed (simulated p99 tail,
    1,000 requests: GO 1-4 % without this, 0 of 60 with it, in each mode;
    unchanged 97-98 % GO either way). Not the second views: the round trip's
    A/A reading wanders by ~9 % run to run here, and would hold up identical
    versions.

    Either way an interval wholly beyond the limit fails (NO_GO). Measured in
    bench/judge_power.py (table in the note).
    """
    if c.role != "guard" or c.observed is None or c.ci_low is None or c.ci_high is None:
        return c
    stats = policy.statistics
    interval, limit = _on_scale(Interval(c.observed, c.ci_low, c.ci_high), c.threshold, c.unit)
    powered = not on_evidence_only(c) and can_prove(
        Interval(c.observed, c.ci_low, c.ci_high), c.threshold, c.direction, c.unit
    )
    if powered:
        p = p_not_within(interval, limit, c.direction, stats.interval_level)
        clear = p < 1 - stats.guard_confidence
        note = "" if clear else f" (a guard, not within it at {stats.guard_confidence:.0%})"
    else:
        p = p_beyond(interval, limit, c.direction, stats.interval_level)
        clear = p > 1 - stats.guard_evidence
        what = (
            "a guard weighed on evidence" if on_evidence_only(c) else "a guard the run is too small to prove"
        )
        note = (
            f" ({what}; no evidence beyond its limit)"
            if clear
            else f" (a guard, beyond its limit at {stats.guard_evidence:.0%})"
        )
        if clear and not c.passed and not on_evidence_only(c):  # no GO past a tail's or drift's estimate
            clear = False
            note = " (a guard the run is too small to prove, but its estimate is beyond its limit)"
    return c.model_copy(
        update={
            "guard_clear": bool(clear),
            "detail": c.detail | {"guard_p": _num(p), "guard_can_prove": float(powered)},
            "explanation": c.explanation + ("" if c.conclusive else note),
        }
    )


def _on_scale(interval: Interval, threshold: float, unit: str) -> tuple[Interval, float]:
    """A relative change's interval and limit on the log scale (where ratio intervals are symmetric)."""
    values = (interval.estimate, interval.low, interval.high, threshold)
    if unit != "change" or min(values) <= -1:
        return interval, threshold
    est, low, high, limit = (math.log1p(v) for v in values)
    return Interval(est, low, high), limit


def keep_running(
    criteria: list[Criterion], n_old: int, n_new: int, policy: Policy, duration_s: float | None
) -> list[MoreEvidence]:
    """Per unsure criterion, about how many more samples (and seconds) would decide it.

    The validation rate is measured by the gate, not by traffic: running
    longer never decides it. A run below the policy's minimum sample size
    needs at least the difference even when every interval is already clear.
    """
    minimum = policy.statistics.min_samples_per_version
    out: list[MoreEvidence] = []
    for c in criteria:
        if not c.holds_up_go:
            continue
        if c.name == "validation_success_rate":
            text = "measured by the validation gate, not by traffic: validate the v2 blueprint"
            out.append(MoreEvidence(criterion=c.name, more_samples=None, more_seconds=None, explanation=text))
            continue
        n = min(c.n_old, c.n_new)
        out.append(
            more_evidence(
                c.name,
                c.observed,
                c.ci_low,
                c.ci_high,
                c.threshold,
                c.direction,
                n,
                duration_s,
                minimum,
                c.detail.get("process_half_width") or 0.0,
            )
        )
    if not out and min(n_old, n_new) < minimum:
        n = min(n_old, n_new)
        more = minimum - n
        seconds = more * duration_s / n if duration_s and n else None
        when = f" (~{duration_text(seconds)} at the run's rate)" if seconds is not None else ""
        text = f"{more:,} more samples per version{when}: the policy needs {minimum} of each"
        out.append(
            MoreEvidence(
                criterion="min_samples_per_version", more_samples=more, more_seconds=seconds, explanation=text
            )
        )
    return out


def _decide(
    criteria: list[Criterion], triggers: list[Trigger], n_old: int, n_new: int, policy: Policy
) -> tuple[VerdictName, list[str]]:
    minimum = policy.statistics.min_samples_per_version
    fired = [t for t in triggers if t.fired]
    hard_fail = [c for c in criteria if not c.passed and c.conclusive]
    unsure = [c for c in criteria if c.holds_up_go]
    reasons = [f"trigger {t.name} fired: {t.explanation}" for t in fired]
    reasons += [f"fails: {c.explanation}" for c in hard_fail]
    if fired or hard_fail:
        return "NO_GO", reasons
    if min(n_old, n_new) < minimum:
        reasons.append(f"too few samples: {n_old} old and {n_new} new, the policy needs {minimum} of each")
        return "INCONCLUSIVE", reasons + [f"unsure: {c.explanation}" for c in unsure]
    if unsure:
        return "INCONCLUSIVE", [f"unsure: {c.explanation}" for c in unsure]
    return "GO", [_passing(c) for c in criteria]


def _passing(c: Criterion) -> str:
    """Why a criterion lets a GO through: proven, or a guard with no evidence beyond its limit."""
    if c.conclusive:
        return f"passes: {c.explanation}"
    return f"guard, not proven but no evidence beyond its limit: {c.explanation}"


def evaluate_triggers(
    samples: pl.DataFrame,
    policy: Policy,
    validation_success_rate: float | None,
    failed_health_checks: int | None,
    counts: pl.DataFrame | None = None,
    new_share: float | None = None,
) -> list[Trigger]:
    """The seed's automatic rollback triggers on the samples so far (cheap enough to run every bucket).

    ``new_share`` is the fraction of requests routed to the new version when
    traffic is *split* (a canary step) rather than mirrored: throughput is then
    compared per unit of offered traffic, or a 10 % step would always look
    like a 0.11x collapse.
    """
    old = samples.filter(pl.col("version") == "old")
    new = samples.filter(pl.col("version") == "new")
    err = float((~new["ok"]).mean()) if new.height else None
    old_ok = old.filter(pl.col("ok"))["latency_ms"]
    new_ok = new.filter(pl.col("ok"))["latency_ms"]
    ratio = None
    if old_ok.len() and new_ok.len():
        base = old_ok.quantile(0.95)
        ratio = (new_ok.quantile(0.95) / base) if base else None
    if counts is None and samples.height:
        counts = bucket_counts(samples, policy.parallel_run.bucket_s)
    tp_ratio = None
    if counts is not None and counts.height:
        tp_ratio = throughput_ratio(int(counts["old"].sum()), int(counts["new"].sum()), new.height, new_share)
    return seed_triggers(
        policy,
        validation=validation_success_rate,
        error_rate=err,
        p95_ratio=ratio,
        throughput_ratio=tp_ratio,
        failed_health_checks=failed_health_checks,
    )


def throughput_ratio(ok_old: int, ok_new: int, new_requests: int, new_share: float | None) -> float | None:
    """New's ok responses per old's, per unit of offered traffic when a canary splits it (see above).

    No new request at all is missing data (a file of old rows only), not a
    collapse: a new version that fails or does not answer still leaves samples
    (errors), and then the ratio is measured, and fires.
    """
    if not new_requests or not ok_old:
        return None
    ratio = ok_new / ok_old
    if new_share is not None and 0 < new_share < 1:
        ratio *= (1 - new_share) / new_share
    return ratio


def seed_triggers(
    policy: Policy,
    *,
    validation: float | None,
    error_rate: float | None,
    p95_ratio: float | None,
    throughput_ratio: float | None,
    failed_health_checks: int | None,
) -> list[Trigger]:
    """The seed's five triggers from their observed values (None: not measured, never fires).

    Shared by the samples' and the bucket aggregates' evaluation, so the names,
    limits and wording are the same whichever source measured them.
    """
    t = policy.triggers
    out: list[Trigger] = []

    def add(name: str, observed: float | None, threshold: float, fired: bool, text: str) -> None:
        out.append(
            Trigger(name=name, fired=fired, observed=_num(observed), threshold=threshold, explanation=text)
        )

    # each text states the comparison as it stands, so a quiet trigger never reads as a fired one
    v = validation
    fired = v is not None and v < t.min_validation_success_rate
    add(
        "validation_success_rate",
        v,
        t.min_validation_success_rate,
        fired,
        f"validation {units.share(v)} {'<' if fired else '>='} {units.share(t.min_validation_success_rate)}"
        if v is not None
        else "not measured",
    )
    err = error_rate
    fired = err is not None and err > t.max_error_rate
    add(
        "error_rate",
        err,
        t.max_error_rate,
        fired,
        f"new error rate {units.share(err)} {'>' if fired else '<='} {units.share(t.max_error_rate)}"
        if err is not None
        else "no new requests",
    )
    ratio = p95_ratio
    add(
        "latency_p95_ratio",
        ratio,
        t.max_p95_ratio,
        ratio is not None and ratio > t.max_p95_ratio,
        f"new p95 is {ratio:.2f}x the baseline (limit {t.max_p95_ratio}x)"
        if ratio is not None
        else "not measured",
    )
    tp_ratio = throughput_ratio
    add(
        "throughput_ratio",
        tp_ratio,
        t.min_throughput_ratio,
        tp_ratio is not None and tp_ratio < t.min_throughput_ratio,
        f"new throughput is {tp_ratio:.2f}x the baseline (limit {t.min_throughput_ratio}x)"
        if tp_ratio is not None
        else "not measured",
    )
    hc = failed_health_checks
    add(
        "failed_health_checks",
        None if hc is None else float(hc),
        t.max_failed_health_checks,
        hc is not None and hc > t.max_failed_health_checks,
        f"{hc} failed health checks (limit {t.max_failed_health_checks})"
        if hc is not None
        else "not measured",
    )
    return out
