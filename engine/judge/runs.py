"""Which run a judgement is about, and recording its verdict: the same for every metrics source.

Judging from the gateway's samples (:func:`engine.migration.judge`) and from
Prometheus (:func:`engine.judge.from_source.judge_from_source`) differ only in
where the measurements come from; the run they may judge and how the verdict
and the state change are stored must not drift apart.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb

from engine.errors import NotFoundError, StateConflictError
from engine.judge.verdict import Verdict
from engine.state import Action, State, available_actions
from engine.store import connect, transaction
from engine.store import deployments as store
from engine.store import systems as systems_store
from engine.workspace import Workspace


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
