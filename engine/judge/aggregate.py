"""The verdict from per-bucket aggregates, for a metrics source that has no per-request samples.

Prometheus keeps counters and histograms, not requests, so the judge cannot
rank-test latencies or bootstrap from single requests. It works from the
:data:`engine.metrics.source.BUCKET_SCHEMA` frame instead, with the same
criteria, thresholds, triggers and decision as :func:`judge_samples`:

* throughput: ok responses per bucket, paired buckets (the same method);
* latency: the policy's quantile per bucket, the change of its mean over the
  buckets both versions answered in, a t-interval on the paired buckets;
* error rate and mismatches: the same two-proportion and Wilson intervals,
  on counts summed over the buckets.

A column the source could not measure (mismatches, without the gateway's
counters) gives "not measured", which is never GO.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl

from engine.judge.policy import Policy
from engine.judge.stats import Interval, paired_ratio_change, proportion_difference, wilson_interval
from engine.judge.verdict import Criterion, Trigger, Verdict, _criterion, _decide, _num

QUANTILE_COLUMNS = {0.5: "p50_ms", 0.95: "p95_ms", 0.99: "p99_ms"}


def _paired(buckets: pl.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """``column`` of old and new in the buckets where both have a value."""
    wide = (
        buckets.filter(pl.col(column).is_not_null())
        .pivot(on="version", index="bucket", values=column)
        .sort("bucket")
    )
    if "old" not in wide.columns or "new" not in wide.columns:
        return np.array([]), np.array([])
    wide = wide.drop_nulls(["old", "new"])
    return wide["old"].to_numpy().astype(float), wide["new"].to_numpy().astype(float)


def _weighted(frame: pl.DataFrame, column: str) -> float | None:
    """The ok-request-weighted mean of a per-bucket quantile (None without data)."""
    rows = frame.filter(pl.col(column).is_not_null()).with_columns(
        (pl.col("requests") - pl.col("errors")).alias("w")
    )
    total = rows["w"].sum() if rows.height else 0
    if not total:
        return None
    return float((rows[column] * rows["w"]).sum() / total)


def judge_buckets(
    buckets: pl.DataFrame,
    policy: Policy,
    *,
    validation_success_rate: float | None,
    failed_health_checks: int | None = None,
    now: dt.datetime | None = None,
) -> Verdict:
    """Judge a bucketed frame of old vs new against ``policy`` (see the module docstring)."""
    conf = policy.statistics.confidence_level
    rule = policy.rule
    frame = buckets.with_columns((pl.col("requests") - pl.col("errors")).alias("ok"))
    old, new = frame.filter(pl.col("version") == "old"), frame.filter(pl.col("version") == "new")
    n_old, n_new = round(old["requests"].sum() or 0), round(new["requests"].sum() or 0)
    criteria: list[Criterion] = []

    v = validation_success_rate
    val = Interval(math.nan, math.nan, math.nan) if v is None else Interval(v, v, v)
    criteria.append(
        _criterion(
            "validation_success_rate",
            val,
            rule.min_validation_success_rate,
            ">=",
            0,
            0,
            "validation success rate",
            as_percent=False,
        )
    )

    ok_old, ok_new = _paired(frame, "ok")
    tp = paired_ratio_change(ok_old, ok_new, conf) if len(ok_old) else Interval(math.nan, math.nan, math.nan)
    criteria.append(
        _criterion(
            "throughput_change",
            tp,
            rule.min_throughput_change,
            ">=",
            n_old,
            n_new,
            "throughput change",
            {"buckets": float(len(ok_old)), "old_ok": float(ok_old.sum()), "new_ok": float(ok_new.sum())},
        )
    )

    q = policy.statistics.latency_quantile
    column = QUANTILE_COLUMNS.get(round(q, 2))
    if column is None:  # the source keeps p50/p95/p99 only
        lat = Interval(math.nan, math.nan, math.nan)
        lat_detail: dict[str, float | None] = {}
    else:
        q_old, q_new = _paired(frame, column)
        lat = (
            paired_ratio_change(q_old, q_new, conf) if len(q_old) else Interval(math.nan, math.nan, math.nan)
        )
        lat_detail = {"buckets": float(len(q_old))}
    for label, col in (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms")):
        lat_detail[f"old_{label}_ms"] = _num(_weighted(old, col)) if old.height else None
        lat_detail[f"new_{label}_ms"] = _num(_weighted(new, col)) if new.height else None
    criteria.append(
        _criterion(
            "latency_increase",
            lat,
            rule.max_latency_increase,
            "<=",
            n_old,
            n_new,
            f"p{round(q * 100)} latency change (mean per bucket)",
            lat_detail,
        )
    )

    err_old, err_new = round(old["errors"].sum() or 0), round(new["errors"].sum() or 0)
    err, err_p = proportion_difference(err_old, n_old, err_new, n_new, conf)
    criteria.append(
        _criterion(
            "error_rate_increase",
            err,
            policy.statistics.max_error_rate_increase,
            "<=",
            n_old,
            n_new,
            "error rate change (points)",
            {
                "old_error_rate": _num(err_old / n_old) if n_old else None,
                "new_error_rate": _num(err_new / n_new) if n_new else None,
                "two_proportion_p_value": _num(err_p),
            },
        )
    )

    measured = new.filter(pl.col("compared").is_not_null())
    compared = round(measured["compared"].sum() or 0) if measured.height else 0
    mismatches = round(measured["mismatches"].sum() or 0) if measured.height else 0
    mm = wilson_interval(mismatches, compared, conf)
    criteria.append(
        _criterion(
            "mismatch_rate",
            mm,
            policy.statistics.max_mismatch_rate,
            "<=",
            n_old,
            compared,
            "response mismatch rate"
            if measured.height
            else "response mismatch rate (not measured by this source)",
            {"mismatches": float(mismatches), "compared": float(compared)},
        )
    )

    triggers = bucket_triggers(frame, policy, validation_success_rate, failed_health_checks)
    new_better = bool(
        v is not None
        and v >= rule.min_validation_success_rate
        and math.isfinite(tp.estimate)
        and tp.estimate >= rule.min_throughput_change
        and math.isfinite(lat.estimate)
        and lat.estimate <= rule.max_latency_increase
    )
    verdict, reasons = _decide(criteria, triggers, n_old, n_new, policy)
    return Verdict(
        verdict=verdict,
        new_better=new_better,
        criteria=criteria,
        triggers=triggers,
        reasons=reasons,
        confidence_level=conf,
        n_old=n_old,
        n_new=n_new,
        judged_at=now or dt.datetime.now(dt.UTC),
        policy=policy,
    )


def bucket_triggers(
    frame: pl.DataFrame,
    policy: Policy,
    validation_success_rate: float | None,
    failed_health_checks: int | None,
) -> list[Trigger]:
    """The seed's automatic rollback triggers on bucket aggregates (same names and limits as the samples')."""
    t = policy.triggers
    old, new = frame.filter(pl.col("version") == "old"), frame.filter(pl.col("version") == "new")
    out: list[Trigger] = []

    def add(name: str, observed: float | None, threshold: float, fired: bool, text: str) -> None:
        out.append(
            Trigger(name=name, fired=fired, observed=_num(observed), threshold=threshold, explanation=text)
        )

    v = validation_success_rate
    add(
        "validation_success_rate",
        v,
        t.min_validation_success_rate,
        v is not None and v < t.min_validation_success_rate,
        f"validation {v:.2f} < {t.min_validation_success_rate}" if v is not None else "not measured",
    )
    requests_new = new["requests"].sum() if new.height else 0
    err = float(new["errors"].sum() / requests_new) if requests_new else None
    add(
        "error_rate",
        err,
        t.max_error_rate,
        err is not None and err > t.max_error_rate,
        f"new error rate {err:.1%} > {t.max_error_rate:.0%}" if err is not None else "no new requests",
    )
    p95_old, p95_new = _weighted(old, "p95_ms"), _weighted(new, "p95_ms")
    ratio = p95_new / p95_old if p95_old and p95_new is not None else None
    add(
        "latency_p95_ratio",
        ratio,
        t.max_p95_ratio,
        ratio is not None and ratio > t.max_p95_ratio,
        f"new p95 is {ratio:.2f}x the baseline (limit {t.max_p95_ratio}x)"
        if ratio is not None
        else "not measured",
    )
    ok_old, ok_new = _paired(frame, "ok")
    tp_ratio = float(ok_new.sum() / ok_old.sum()) if len(ok_old) and ok_old.sum() else None
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
