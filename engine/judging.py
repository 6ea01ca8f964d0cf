"""Judging a run, the use cases around the pure judge: which run, reading its evidence, recording the verdict.

:mod:`engine.judge` weighs frames against a policy and returns a verdict; it
reads no store and records nothing. This module does the rest, the same for
every metrics source: it chooses the run a judgement is about (and the runs
it continues), reads its samples from the store or its buckets from
Prometheus with the newest A/A calibration, and stores the verdict with the
state change. Judging from the gateway's samples (:func:`engine.migration.judge`)
and from a chosen source (:func:`judge_from_source`) differ only in where the
measurements come from; the run they may judge and how the verdict and the
state change are stored must not drift apart.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from engine.access import operator_only
from engine.deploy.strategies import validation_rate
from engine.errors import InputError, NotFoundError, StateConflictError
from engine.judge.aggregate import judge_buckets
from engine.judge.calibration import MEASURED, Calibration
from engine.judge.policy import DEFAULT_POLICY, Policy, load_policy
from engine.judge.verdict import Verdict, judge_samples
from engine.metrics.prometheus import PrometheusSource
from engine.metrics.source import naive_utc
from engine.state import Action, State, available_actions
from engine.store import connect, transaction
from engine.store import deployments as store
from engine.store import systems as systems_store
from engine.store.events import latest_after
from engine.store.samples import read_run_samples
from engine.use_case import changes_state
from engine.workspace import Workspace, check_system_name

SOURCES = ("samples", "prometheus")
"""Where :func:`judge_from_source` reads a run's measurements: the gateway's samples or Prometheus."""

# --------------------------------------------------------------------------- the run and its evidence


def judgeable_run(ws: Workspace, name: str, run_id: str | None) -> tuple[dict[str, Any], int | None]:
    """The newest completed parallel run of ``name`` (or ``run_id``) and green's failed health checks.

    Refuses unless the system has a finished parallel run (state parallel_run
    or judged) and the run is ``name``'s own.
    """
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
        run = store.get_run(con, run_id) if run_id else store.latest_run(con, name, "parallel", "completed")
        green = store.live_slot(con, name, "green")
    if Action.JUDGE not in available_actions(row["state"]):
        raise StateConflictError(f"{name} is {row['state']}: judge needs a finished parallel run")
    if run is None or run["system"] != name:
        raise NotFoundError(f"{name}: no completed parallel run to judge")
    return run, int(green["health_failures"]) if green else None


MAX_CHAIN = 100
"""Runs read as one at the most: a guard against a cycle in hand-edited data, far above any real use."""


def continued(run: dict[str, Any]) -> str | None:
    """The id of the run ``run`` continues ("Run N more minutes"), or None."""
    outcome = run.get("outcome")
    if isinstance(outcome, str):
        outcome = json.loads(outcome) if outcome else None
    return (outcome or {}).get("continues")


def run_chain(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> list[dict[str, Any]]:
    """``run`` and the earlier runs of the same system it continues, oldest first.

    An INCONCLUSIVE verdict says how many more samples would decide it; the run
    that collects them continues the judged one, and the judge weighs both runs'
    samples together (more samples, not a fresh start).
    """
    chain = [run]
    while (earlier := continued(chain[-1])) and len(chain) < MAX_CHAIN:
        row = store.get_run(con, earlier)
        if row is None or row["system"] != run["system"] or row in chain:
            break
        chain.append(row)
    return chain[::-1]


def chain_seconds(runs: list[dict[str, Any]]) -> float:
    """How long the runs ran together (a running one up to now): "inconclusive after N minutes"."""
    now = dt.datetime.now(dt.UTC)
    return sum(((r["ended_at"] or now) - r["started_at"]).total_seconds() for r in runs)


def chain_ids(ws: Workspace, run: dict[str, Any]) -> list[str]:
    """The ids of :func:`run_chain`, oldest first (what the samples are read from)."""
    with connect(ws.db_path) as con:
        return [r["id"] for r in run_chain(con, run)]


def latest_calibration(con: duckdb.DuckDBPyConnection, system: str) -> Calibration | None:
    """The newest calibration of ``system`` (:data:`engine.judge.calibration.MEASURED`), or None."""
    after = latest_after(con, system, MEASURED)
    return Calibration.model_validate(after) if after else None


# --------------------------------------------------------------------------- the verdict


def record_verdict(
    ws: Workspace,
    name: str,
    run: dict[str, Any],
    verdict: Verdict,
    result: dict[str, Any],
    *,
    actor: str,
    reason: str,
    detail: dict[str, Any] | None = None,
) -> int:
    """Store ``result`` as the verdict on ``run`` and move ``name`` to judged, in one transaction."""
    with connect(ws.db_path) as con, transaction(con):
        verdict_id = store.insert_verdict(con, name, run["id"], result, actor)
        systems_store.transition_within(
            con,
            name,
            State.JUDGED,
            actor=actor,
            reason=reason,
            detail={
                "verdict": verdict.verdict,
                "verdict_id": verdict_id,
                "run_id": run["id"],
                **(detail or {}),
            },
        )
    return verdict_id


# --------------------------------------------------------------------------- from a chosen source


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
