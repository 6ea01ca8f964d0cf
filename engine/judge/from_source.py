"""Judge a parallel run from a chosen metrics source: the engine's own samples or Prometheus.

The use case behind ``judge NAME --source prometheus`` and the page's source
choice. Same preconditions, same state change and same audit trail as
:func:`engine.migration.judge`; the stored verdict also says which source
and which window it was made from, so two verdicts on one run can be told
apart.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any, Literal

import polars as pl

from engine.access import operator_only
from engine.deploy.strategies import validation_rate
from engine.errors import InputError
from engine.judge.aggregate import judge_buckets
from engine.judge.calibration import latest_calibration
from engine.judge.policy import Policy, load_policy
from engine.judge.runs import judgeable_run, record_verdict
from engine.judge.verdict import Verdict, judge_samples
from engine.metrics.prometheus import PrometheusSource
from engine.metrics.source import naive_utc
from engine.store import connect
from engine.store.samples import read_run_samples
from engine.use_case import changes_state
from engine.workspace import DEFAULT_POLICY, Workspace, check_system_name

SOURCES = ("samples", "prometheus")
Source = Literal["samples", "prometheus"]


def run_window(run: dict[str, Any], window_s: float | None) -> tuple[dt.datetime, dt.datetime]:
    """The run's span (until now if it has no end yet), or its last ``window_s`` seconds."""
    start = run["started_at"]
    end = run["ended_at"] or dt.datetime.now(dt.UTC)
    if window_s is not None:
        start = max(start, end - dt.timedelta(seconds=window_s))
    return start, end


def verdict_from_source(
    ws: Workspace,
    name: str,
    run: dict[str, Any],
    policy: Policy,
    source: str,
    *,
    window_s: float | None = None,
    failed_health_checks: int | None = None,
) -> tuple[Verdict, dict[str, Any]]:
    """The verdict on ``run`` from ``source`` and a description of what was read (nothing is stored)."""
    start, end = run_window(run, window_s)
    bucket_s = float(run["bucket_s"])
    rate = validation_rate(ws, name)
    described: dict[str, Any] = {
        "name": source,
        "run_id": run["id"],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "bucket_s": bucket_s,
    }
    if source == "samples":
        samples = read_run_samples(ws, name, run["id"])
        samples = samples.filter((pl.col("ts") >= naive_utc(start)) & (pl.col("ts") < naive_utc(end)))
        with connect(ws.db_path) as con:
            calibrated = latest_calibration(con, name)  # the gateway's own measurement, as in judge
        verdict = judge_samples(
            samples,
            policy,
            validation_success_rate=rate,
            failed_health_checks=failed_health_checks,
            bucket_s=bucket_s,
            calibration=calibrated,
        )
    else:
        prometheus = PrometheusSource(policy.prometheus)
        buckets = prometheus.buckets(name, start, end, bucket_s)
        verdict = judge_buckets(
            buckets, policy, validation_success_rate=rate, failed_health_checks=failed_health_checks
        )
        described |= {"url": policy.prometheus.url, "buckets": buckets.height}
    return verdict, described


@operator_only("judge a run (it records a verdict)")
@changes_state
def judge_from_source(
    ws: Workspace,
    name: str,
    *,
    actor: str,
    source: str = "samples",
    window_s: float | None = None,
    run_id: str | None = None,
    policy_path: Path = DEFAULT_POLICY,
) -> Verdict:
    """Judge the newest completed parallel run (or ``run_id``) from ``source`` and record the verdict.

    ``window_s`` judges only the run's last seconds. Prometheus is asked
    about the run's own time span, so both sources judge the same traffic.
    """
    check_system_name(name)
    if source not in SOURCES:
        raise InputError("--source", "value", " | ".join(SOURCES), repr(source))
    if window_s is not None and not (math.isfinite(window_s) and window_s > 0):
        raise InputError("--window", "value", "a positive number of seconds", str(window_s))
    policy = load_policy(policy_path)
    run, health = judgeable_run(ws, name, run_id)
    verdict, described = verdict_from_source(
        ws, name, run, policy, source, window_s=window_s, failed_health_checks=health
    )
    result = json.loads(verdict.model_dump_json()) | {"source": described}
    record_verdict(
        ws,
        name,
        run,
        verdict,
        result,
        actor=actor,
        reason=f"verdict {verdict.verdict} on run {run['id']} (source: {source})",
        detail={"source": described},
    )
    return verdict
