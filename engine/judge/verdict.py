"""The go/no-go verdict: the seed's rule, each criterion with its evidence, and the triggers.

The seed's rule stays visible as is: ``new_better`` iff validation >= 0.8,
throughput change >= -5 % and latency increase <= +10 % (point estimates).
What Switchyard adds is how far to trust it. Each criterion carries the
observed value, its threshold, a confidence interval and the sample sizes.
Thresholds are practical margins: a significant change *inside* the margin
still passes. The verdict is

* ``GO``: every criterion passes and its whole interval is on the good side;
* ``NO_GO``: some criterion fails and its whole interval is on the bad side;
* ``INCONCLUSIVE``: too few samples, or an interval straddles a threshold.

Too little data never gives GO.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from engine import units
from engine.judge.policy import Policy
from engine.judge.stats import (
    Interval,
    paired_ratio_change,
    proportion_difference,
    quantile_change,
    rank_test,
    wilson_interval,
)
from engine.judge.to_decide import MoreEvidence, duration_text, more_evidence

VerdictName = Literal["GO", "NO_GO", "INCONCLUSIVE"]


def _num(value: float | None) -> float | None:
    """JSON-safe float: NaN and infinities become None."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


class Criterion(BaseModel):
    """One criterion of the verdict with its evidence."""

    name: str
    observed: float | None = Field(description="Point estimate (a change is relative: 0.1 = +10 %).")
    threshold: float
    direction: Literal[">=", "<="] = Field(description="observed must be >= or <= threshold to pass")
    passed: bool
    conclusive: bool = Field(description="The whole interval lies on one side of the threshold.")
    ci_low: float | None
    ci_high: float | None
    n_old: int
    n_new: int
    detail: dict[str, float | None] = Field(default_factory=dict)
    explanation: str = ""
    unit: str = Field(
        "change",
        description="How observed, threshold and interval read (engine.units): change (relative, "
        "0.1 = +10 %), points (a difference of two shares), share (a fraction of a whole).",
    )


class Trigger(BaseModel):
    """One automatic rollback trigger of the seed."""

    name: str
    fired: bool
    observed: float | None
    threshold: float
    explanation: str = ""


class Verdict(BaseModel):
    verdict: VerdictName
    new_better: bool = Field(description="The seed's rule on point estimates, as the seed defines it.")
    criteria: list[Criterion]
    triggers: list[Trigger]
    reasons: list[str]
    confidence_level: float
    n_old: int
    n_new: int
    judged_at: dt.datetime
    policy: Policy
    to_decide: list[MoreEvidence] = Field(
        default_factory=list,
        description="INCONCLUSIVE only: per unsure criterion, about how much longer to run to decide it.",
    )
    duration_s: float | None = Field(None, description="Seconds the judged samples span (None: unknown).")


def _criterion(
    name: str,
    interval: Interval,
    threshold: float,
    direction: Literal[">=", "<="],
    n_old: int,
    n_new: int,
    what: str,
    detail: dict[str, float | None] | None = None,
    unit: str = "change",
) -> Criterion:
    est, low, high = interval.estimate, interval.low, interval.high
    if not math.isfinite(est):
        return Criterion(
            name=name,
            observed=None,
            threshold=threshold,
            direction=direction,
            passed=False,
            conclusive=False,
            ci_low=None,
            ci_high=None,
            n_old=n_old,
            n_new=n_new,
            detail=detail or {},
            explanation=f"{what}: not enough data to measure",
            unit=unit,
        )
    if direction == ">=":
        passed, conclusive = est >= threshold, (low >= threshold if est >= threshold else high < threshold)
    else:
        passed, conclusive = est <= threshold, (high <= threshold if est <= threshold else low > threshold)

    def fmt(v: float) -> str:
        return units.fmt(v, unit)

    side = "within" if passed else "outside"
    certainty = "" if conclusive else " (interval crosses the threshold)"
    interval = f"[{fmt(low)}, {fmt(high)}]"
    explanation = f"{what} {fmt(est)} {interval} is {side} the limit {direction} {fmt(threshold)}{certainty}"
    return Criterion(
        name=name,
        observed=_num(est),
        threshold=threshold,
        direction=direction,
        passed=bool(passed),
        conclusive=bool(conclusive),
        ci_low=_num(low),
        ci_high=_num(high),
        n_old=n_old,
        n_new=n_new,
        detail=detail or {},
        explanation=explanation,
        unit=unit,
    )


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
) -> Verdict:
    """Judge a frame of samples (see :mod:`engine.judge.samples`) against ``policy``.

    ``bucket_s`` is the aggregation bucket of the run being judged (a 60 s demo
    run uses 1 s buckets); without it, the policy's bucket.
    """
    conf = policy.statistics.confidence_level
    bucket_s = bucket_s or policy.parallel_run.bucket_s
    old = samples.filter(pl.col("version") == "old")
    new = samples.filter(pl.col("version") == "new")
    n_old, n_new = old.height, new.height
    old_ok_lat = np.sort(old.filter(pl.col("ok"))["latency_ms"].to_numpy())
    new_ok_lat = np.sort(new.filter(pl.col("ok"))["latency_ms"].to_numpy())
    criteria: list[Criterion] = []

    # 1. validation (the seed's first condition): a measured rate, no sampling interval.
    rule = policy.rule
    criteria.append(validation_criterion(validation_success_rate, policy))

    # 2. throughput: successful responses per bucket, paired buckets.
    counts = bucket_counts(samples, bucket_s) if samples.height else None
    if counts is not None and counts.height and n_new:  # no new sample at all: not measured
        tp = paired_ratio_change(counts["old"].to_numpy(), counts["new"].to_numpy(), conf)
        seconds = max(bucket_s * counts.height, 1e-9)
        tp_detail = {
            "old_rps": counts["old"].sum() / seconds,
            "new_rps": counts["new"].sum() / seconds,
            "buckets": float(counts.height),
            "bucket_s": float(bucket_s),
        }
    else:
        tp, tp_detail = Interval(math.nan, math.nan, math.nan), {}
    criteria.append(
        _criterion(
            "throughput_change",
            tp,
            rule.min_throughput_change,
            ">=",
            n_old,
            n_new,
            "throughput change",
            tp_detail,
        )
    )

    # 3. latency: the policy's quantile, with p50/p95/p99 and a rank test as evidence.
    q = policy.statistics.latency_quantile
    lat = quantile_change(old_ok_lat, new_ok_lat, q, conf)
    p_value, prob_slower = rank_test(old_ok_lat, new_ok_lat)
    lat_detail: dict[str, float | None] = {
        "rank_test_p_value": _num(p_value),
        "p_new_slower": _num(prob_slower),
    }
    for label, quant in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        lat_detail[f"old_{label}_ms"] = (
            _num(float(np.quantile(old_ok_lat, quant))) if len(old_ok_lat) else None
        )
        lat_detail[f"new_{label}_ms"] = (
            _num(float(np.quantile(new_ok_lat, quant))) if len(new_ok_lat) else None
        )
    criteria.append(
        _criterion(
            "latency_increase",
            lat,
            rule.max_latency_increase,
            "<=",
            len(old_ok_lat),
            len(new_ok_lat),
            f"p{round(q * 100)} latency change",
            lat_detail,
        )
    )

    # 4. error rate: two-proportion comparison.
    criteria.append(
        error_rate_criterion(int((~old["ok"]).sum()), n_old, int((~new["ok"]).sum()), n_new, policy)
    )

    # 5. correctness: share of new responses that differ from old.
    compared = new.filter(pl.col("match").is_not_null())
    mismatches = int((~compared["match"]).sum()) if compared.height else 0
    criteria.append(mismatch_criterion(mismatches, compared.height, n_old, policy, "response mismatch rate"))

    triggers = evaluate_triggers(samples, policy, validation_success_rate, failed_health_checks, counts)
    return conclude(
        criteria, triggers, n_old, n_new, policy, validation_success_rate, tp, lat, now, span_s(samples)
    )


def span_s(samples: pl.DataFrame) -> float | None:
    """Seconds from the first to the last sample (None for fewer than two distinct times)."""
    if samples.height < 2:
        return None
    first, last = samples["ts"].min(), samples["ts"].max()
    seconds = (last - first).total_seconds() if first is not None and last is not None else 0.0
    return seconds if seconds > 0 else None


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
    )


def error_rate_criterion(err_old: int, n_old: int, err_new: int, n_new: int, policy: Policy) -> Criterion:
    """Error-rate change in points, two-proportion interval (the same for samples and buckets)."""
    err, err_p = proportion_difference(err_old, n_old, err_new, n_new, policy.statistics.confidence_level)
    return _criterion(
        "error_rate_increase",
        err,
        policy.statistics.max_error_rate_increase,
        "<=",
        n_old,
        n_new,
        "error rate change",
        {
            "old_error_rate": _num(err_old / n_old) if n_old else None,
            "new_error_rate": _num(err_new / n_new) if n_new else None,
            "two_proportion_p_value": _num(err_p),
        },
        unit="points",
    )


def mismatch_criterion(mismatches: int, compared: int, n_old: int, policy: Policy, what: str) -> Criterion:
    """Share of compared new responses that differ from old, Wilson interval."""
    return _criterion(
        "mismatch_rate",
        wilson_interval(mismatches, compared, policy.statistics.confidence_level),
        policy.statistics.max_mismatch_rate,
        "<=",
        n_old,
        compared,
        what,
        {"mismatches": float(mismatches), "compared": float(compared)},
        unit="share",
    )


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
    verdict, reasons = _decide(criteria, triggers, n_old, n_new, policy)
    to_decide = keep_running(criteria, n_old, n_new, policy, duration_s) if verdict == "INCONCLUSIVE" else []
    return Verdict(
        verdict=verdict,
        new_better=new_better,
        criteria=criteria,
        triggers=triggers,
        reasons=reasons,
        confidence_level=policy.statistics.confidence_level,
        n_old=n_old,
        n_new=n_new,
        judged_at=now or dt.datetime.now(dt.UTC),
        policy=policy,
        to_decide=to_decide,
        duration_s=duration_s,
    )


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
        if c.conclusive:
            continue
        if c.name == "validation_success_rate":
            text = "measured by the validation gate, not by traffic: validate the v2 blueprint"
            out.append(MoreEvidence(criterion=c.name, more_samples=None, more_seconds=None, explanation=text))
            continue
        n = min(c.n_old, c.n_new)
        out.append(
            more_evidence(
                c.name, c.observed, c.ci_low, c.ci_high, c.threshold, c.direction, n, duration_s, minimum
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
    unsure = [c for c in criteria if not c.conclusive]
    reasons = [f"trigger {t.name} fired: {t.explanation}" for t in fired]
    reasons += [f"fails: {c.explanation}" for c in hard_fail]
    if fired or hard_fail:
        return "NO_GO", reasons
    if min(n_old, n_new) < minimum:
        reasons.append(f"too few samples: {n_old} old and {n_new} new, the policy needs {minimum} of each")
        return "INCONCLUSIVE", reasons + [f"unsure: {c.explanation}" for c in unsure]
    if unsure:
        return "INCONCLUSIVE", [f"unsure: {c.explanation}" for c in unsure]
    return "GO", [f"passes: {c.explanation}" for c in criteria]


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
