"""The verdict from per-bucket aggregates, for a metrics source that has no per-request samples.

Prometheus keeps counters and histograms, not requests, so the judge cannot
rank-test latencies or bootstrap from single requests. It works from the
:data:`engine.metrics.source.BUCKET_SCHEMA` frame instead, with the same
criteria, thresholds, triggers and decision as :func:`judge_samples`:

* throughput: ok responses over the window as shares of the offered load
  (the same method as unpaired samples);
* latency, p95 and p99: the quantile per bucket, the change of its mean over
  the buckets both versions answered in, a t-interval on the paired buckets;
  drift: the same in each half of the run, compared;
* error rate and mismatches: the same two-proportion and Wilson intervals,
  on counts summed over the buckets.

A column the source could not measure (mismatches, without the gateway's
counters) gives "not measured", which is never GO.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from engine.judge.criteria import (
    TAILS,
    drift_from,
    error_rate_criterion,
    mismatch_criterion,
    tail_criterion,
    throughput_criterion,
    validation_criterion,
)
from engine.judge.latency import Drift, compare_halves
from engine.judge.model import Criterion, Trigger, Verdict, _criterion, _num
from engine.judge.policy import Policy
from engine.judge.stats import NAN_INTERVAL, Interval, paired_ratio_change, served_change
from engine.judge.verdict import conclude, seed_triggers

QUANTILE_COLUMNS = {0.5: "p50_ms", 0.95: "p95_ms", 0.99: "p99_ms"}
"""No request ids and no endpoints in buckets: these are always the unpaired, pooled criteria."""


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
    conf = policy.statistics.interval_level
    rule = policy.rule
    frame = buckets.with_columns((pl.col("requests") - pl.col("errors")).alias("ok"))
    old, new = frame.filter(pl.col("version") == "old"), frame.filter(pl.col("version") == "new")
    n_old, n_new = round(old["requests"].sum() or 0), round(new["requests"].sum() or 0)
    criteria: list[Criterion] = []

    v = validation_success_rate
    criteria.append(validation_criterion(v, policy))

    ok_old, ok_new = round(old["ok"].sum() or 0), round(new["ok"].sum() or 0)
    tp = served_change(ok_old, ok_new, max(n_old, n_new), conf) if n_new else NAN_INTERVAL
    detail = {"old_ok": float(ok_old), "new_ok": float(ok_new), "offered": float(max(n_old, n_new))}
    method = "ok responses over the same window, as shares of the larger side's requests"
    criteria.append(throughput_criterion(tp, n_old, n_new, policy, method, detail))

    q = policy.statistics.latency_quantile
    column = QUANTILE_COLUMNS.get(round(q, 2))
    lat = _bucket_change(frame, column, conf) if column else NAN_INTERVAL  # the source keeps p50/p95/p99
    lat_detail: dict[str, float | None] = {"buckets": float(len(_paired(frame, column)[0]))} if column else {}
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
            method=PER_BUCKET,
        )
    )

    err_old, err_new = round(old["errors"].sum() or 0), round(new["errors"].sum() or 0)
    criteria.append(error_rate_criterion(err_old, n_old, err_new, n_new, policy))

    measured = new.filter(pl.col("compared").is_not_null())
    compared = round(measured["compared"].sum() or 0) if measured.height else 0
    mismatches = round(measured["mismatches"].sum() or 0) if measured.height else 0
    what = "response mismatch rate" + ("" if measured.height else " (not measured by this source)")
    criteria.append(mismatch_criterion(mismatches, compared, n_old, policy, what))

    for quantile, _, _ in TAILS:
        tail = _bucket_change(frame, QUANTILE_COLUMNS[quantile], conf)
        criteria.append(tail_criterion(quantile, tail, PER_BUCKET, n_old, n_new, policy))
    found = _bucket_drift(frame, column, conf) if column else None
    criteria.append(drift_from(found, PER_BUCKET + ", per half of the run, compared", n_old, n_new, policy))

    triggers = bucket_triggers(frame, policy, validation_success_rate, failed_health_checks)
    duration = _span_s(frame)
    return conclude(criteria, triggers, n_old, n_new, policy, v, tp, lat, now, duration)


PER_BUCKET = "mean of the per-bucket quantile, paired buckets"


def _bucket_change(frame: pl.DataFrame, column: str, confidence: float) -> Interval:
    """Change of a per-bucket quantile's mean over the buckets both versions answered in."""
    q_old, q_new = _paired(frame, column)
    return paired_ratio_change(q_old, q_new, confidence) if len(q_old) else NAN_INTERVAL


def _bucket_drift(frame: pl.DataFrame, column: str, confidence: float) -> Drift | None:
    """The per-bucket change in the run's second half over its first (buckets split at the middle)."""
    starts = frame["bucket"].unique().sort()
    if starts.len() < 4:
        return None
    middle = starts[0] + (starts[-1] - starts[0]) / 2
    halves = [frame.filter(pl.col("bucket") < middle), frame.filter(pl.col("bucket") >= middle)]
    early, late = (_bucket_change(h, column, confidence) for h in halves)
    apart = (starts[-1] - starts[0]).total_seconds() / 2
    return compare_halves(early, late, apart, confidence)


def _span_s(frame: pl.DataFrame) -> float | None:
    """Seconds the buckets cover: from the first bucket's start to the last one's end."""
    starts = frame["bucket"].unique().sort()
    if starts.len() < 2:
        return None
    step = (starts[1] - starts[0]).total_seconds()
    return (starts[-1] - starts[0]).total_seconds() + step


def bucket_triggers(
    frame: pl.DataFrame,
    policy: Policy,
    validation_success_rate: float | None,
    failed_health_checks: int | None,
) -> list[Trigger]:
    """The seed's automatic rollback triggers on bucket aggregates (same names and limits as the samples')."""
    old, new = frame.filter(pl.col("version") == "old"), frame.filter(pl.col("version") == "new")
    requests_new = new["requests"].sum() if new.height else 0
    err = float(new["errors"].sum() / requests_new) if requests_new else None
    p95_old, p95_new = _weighted(old, "p95_ms"), _weighted(new, "p95_ms")
    ratio = p95_new / p95_old if p95_old and p95_new is not None else None
    ok_old, ok_new = _paired(frame, "ok")
    tp_ratio = float(ok_new.sum() / ok_old.sum()) if len(ok_old) and ok_old.sum() else None
    return seed_triggers(
        policy,
        validation=validation_success_rate,
        error_rate=err,
        p95_ratio=ratio,
        throughput_ratio=tp_ratio,
        failed_health_checks=failed_health_checks,
    )
