"""Use cases of the migration itself: checklist, deploy, parallel run, judge, promote, rollback, status, down.

Pages and the CLI reach these through :mod:`engine.services`. Each starts by
reconciling the store with the processes really running (:func:`recover`),
so a crash of an earlier command is found and recorded before anything new
happens. Those that change state first check that their actor is an operator
(``@operator_only``); what the engine does on its own (recovery, automatic
rollbacks) is not checked, as nobody asked for it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel

from engine import units
from engine.access import operator_only
from engine.convert.writer import settle_convert
from engine.deploy import slots, supervisor
from engine.deploy.checklist import ACKNOWLEDGED_ITEMS, ITEMS, Checklist, run_checklist
from engine.deploy.checklist import label as checklist_label
from engine.deploy.strategies import (
    DeployOutcome,
    PromoteOutcome,
    deploy_system,
    promote_system,
    settle_deploy,
    settle_promote,
    validation_rate,
)
from engine.deploy.warm import decommission_expired, window_open
from engine.errors import InputError, NotFoundError, StateConflictError, SwitchyardError
from engine.governance.approvals import require_approval
from engine.governance.hold import ensure_not_held, hold_of
from engine.judge.policy import DEFAULT_POLICY, Policy, load_policy
from engine.judge.stats import import_ahead
from engine.judge.verdict import Verdict, judge_samples
from engine.judging import (
    chain_ids,
    chain_seconds,
    judgeable_run,
    latest_calibration,
    record_verdict,
    run_chain,
)
from engine.parallel import calibrate as calibration
from engine.parallel import capacity, compare
from engine.parallel.run import new_run_id, watch
from engine.parallel.workload import request_mix
from engine.progress import Progress, no_progress
from engine.rollback.manager import RollbackOutcome, rollback_on_trigger, rollback_system, settle_rollback
from engine.state import Action, State, available_actions
from engine.store import connect, transaction
from engine.store import deployments as store
from engine.store import systems as systems_store
from engine.store.events import append_events
from engine.store.operations import operation
from engine.store.samples import read_run_samples
from engine.use_case import changes_state
from engine.workspace import Workspace, check_system_name


def _policy(path: Path = DEFAULT_POLICY) -> Policy:
    return load_policy(path)


# --------------------------------------------------------------------------- recovery


def recover(ws: Workspace, actor: str = "supervisor") -> list[dict[str, Any]]:
    """Reconcile processes, then settle what interrupted operations left half done (recorded as events).

    Each interrupted operation's finding carries ``next``: what was put right
    and what the operator does now (also in the ``reconcile:interrupted``
    event's reason and on :func:`status`).
    """
    if not ws.exists():
        return []
    findings = supervisor.reconcile(ws, actor, settle=lambda f: _settle(ws, f, actor))
    decommission_expired(ws, actor)  # old versions whose fast-rollback window has ended
    if any(f["kind"] != "orphan_stopped" for f in findings):
        with connect(ws.db_path) as con:
            has_gateway = store.live_gateway(con) is not None
        if has_gateway:
            supervisor.publish_routes(ws, actor)
    return findings


def _settle(ws: Workspace, finding: dict[str, Any], actor: str) -> str:
    """Put right what one interrupted operation left half done; returns what to do next.

    Each workflow's settle step sits beside the workflow and reuses its steps
    (the swap a convert rolls forward, the slots a failed deploy stops, the
    emergency a rollback records): from the recorded state, the next step.
    """
    name, kind, detail = finding["system"], finding["operation"], finding["detail"]
    if kind == "convert":
        return settle_convert(ws.v2_dir, detail, supervisor.pid_alive)
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
        running = store.list_runs(con, name).filter(pl.col("status") == "running")
    for run in running.iter_rows(named=True):  # their samples stop here; the gateway records no more
        with connect(ws.db_path) as con, transaction(con):
            store.finish_run(con, run["id"], "interrupted", outcome={"reason": "its process died"})
    state = State(row["state"])
    if kind == "deploy":
        return settle_deploy(ws, name, state, detail, actor)
    if kind == "parallel_run":
        return _settle_parallel_run(ws, name, actor)
    if kind == "calibrate":
        return calibration.settle_calibrate(ws, name, actor)
    if kind == "promote":
        return settle_promote(ws, name, state)
    if kind == "rollback":
        return settle_rollback(ws, name, state, actor)
    return f"{name} is {state}: check status {name}, then run {kind} again"


# --------------------------------------------------------------------------- checklist


@operator_only("run the pre-migration checklist or acknowledge its items")
@changes_state
def checklist(
    ws: Workspace, name: str, *, actor: str, ack: str | None = None, note: str | None = None
) -> Checklist:
    """Run the pre-migration checklist; ``ack`` records a person's acknowledgement first.

    When every item holds and the system is ``validated``, it becomes ``ready``
    in the same transaction as the audit event that lists the items.
    """
    check_system_name(name)
    if ack is not None and ack not in ACKNOWLEDGED_ITEMS:
        raise InputError("--ack", repr(ack), f"one of: {', '.join(sorted(ACKNOWLEDGED_ITEMS))}")
    if ack is not None and not actor.strip():
        raise InputError("--actor", "''", "the name of the person acknowledging")
    policy = _policy()
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
        with transaction(con):
            if ack is not None:
                store.add_ack(con, name, ack, actor, note)
            result = run_checklist(con, ws, row, policy)
            append_events(
                con,
                [
                    {
                        "actor": actor,
                        "system": name,
                        "action": "checklist",
                        "reason": (
                            f"acknowledged {checklist_label(ack)}" + (f": {note}" if note else "")
                            if ack
                            else None
                        ),
                        "after": result.as_flags(),
                    }
                ],
            )
            if result.ready_to_migrate and row["state"] == State.VALIDATED:
                systems_store.transition_within(
                    con,
                    name,
                    State.READY,
                    actor=actor,
                    reason="pre-migration checklist complete",
                    detail=result.as_flags(),
                )
    return result


# --------------------------------------------------------------------------- deploy / run / judge


@operator_only("deploy")
@changes_state
def deploy(
    ws: Workspace,
    name: str,
    strategy: str = "blue_green",
    *,
    actor: str,
    reason: str = "deploy",
    expected_version: int | None = None,
    monitor_s: float | None = None,
    warm_s: float | None = None,
    progress: Progress = no_progress,
) -> DeployOutcome:
    check_system_name(name)
    recover(ws)
    with connect(ws.db_path) as con:
        ensure_not_held(con, name, "deploy")
    return deploy_system(
        ws,
        name,
        strategy,
        actor=actor,
        reason=reason,
        policy=_policy(),
        progress=progress,
        expected_version=expected_version,
        monitor_s=monitor_s,
        warm_s=warm_s,
    )


class RunResult(BaseModel):
    system: str
    run_id: str
    status: str
    state: str
    summary: dict[str, Any]
    rollback: RollbackOutcome | None = None
    verdict: Verdict | None = None
    """Recorded at the end of a completed run: nobody has to ask for it."""
    not_judged: str | None = None
    """Why a run has no verdict (stopped, a trigger rolled back, the judge refused): what to do instead."""
    continues: str | None = None
    """The earlier run this one adds samples to (its verdict weighs both)."""


@operator_only("start a parallel run")
@changes_state
def parallel_run(
    ws: Workspace,
    name: str,
    *,
    actor: str,
    duration_s: float | None = None,
    bucket_s: float | None = None,
    rps: float = 50.0,
    progress: Progress = no_progress,
    continues: str | None = None,
) -> RunResult:
    """Mirror traffic to green while blue answers, for ``duration_s``; triggers roll back on their own.

    A run that completes is judged at once and its verdict recorded (the
    result says why when it is not). ``continues``: the id of an earlier
    completed run of ``name`` to add samples to, judged together with it
    (what "Run N more minutes" after an INCONCLUSIVE verdict does).
    """
    check_system_name(name)
    with connect(ws.db_path) as con:
        ensure_not_held(con, name, "start a parallel run")
        earlier = store.get_run(con, continues) if continues else None
    if continues and (earlier is None or earlier["system"] != name or earlier["status"] != "completed"):
        raise NotFoundError(f"{name}: no completed run {continues!r} of this system to continue")
    policy = _policy()
    duration_s = duration_s or policy.parallel_run.duration_s
    bucket_s = bucket_s or policy.parallel_run.bucket_s
    for label, value in (("--duration", duration_s), ("--bucket", bucket_s), ("--rps", rps)):
        if value <= 0:
            raise InputError(label, "value", "a positive number", str(value))
    if bucket_s > duration_s:
        raise InputError("--bucket", "value", f"at most the duration ({duration_s} s)", str(bucket_s))
    recover(ws)
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
        route = store.get_route(con, name)
    if Action.START_RUN not in available_actions(row["state"]) or route is None:
        raise StateConflictError(
            f"{name} is {row['state']}: a parallel run needs green deployed (deploy first)"
        )
    if slots.live(ws, name, "green") is None or slots.live(ws, name, "blue") is None:
        raise StateConflictError(f"{name}: blue or green is not running; roll back or deploy again")
    run_id = new_run_id("parallel")
    import_ahead()  # the verdict at the end needs scipy.stats: imported while the traffic runs
    started = f"parallel run {units.duration(duration_s)} at {units.count(rps)} req/s" + (
        f", adding to {continues}" if continues else ""
    )
    begins = {"run_id": run_id, "duration_s": duration_s, "bucket_s": bucket_s, "rps": rps}
    with operation(
        ws.db_path,
        name,
        "parallel_run",
        actor=actor,
        detail={"run_id": run_id},
        joined=lambda con: systems_store.transition_within(
            con, name, State.PARALLEL_RUN, actor=actor, reason=started, detail=begins
        ),
    ) as op:
        try:
            outcome = watch(
                ws,
                name,
                kind="parallel",
                duration_s=duration_s,
                bucket_s=bucket_s,
                rps=rps,
                actor=actor,
                policy=policy,
                validation_rate=validation_rate(ws, name),
                progress=progress,
                run_id=run_id,
                continues=continues,
                route={
                    "strategy": route["strategy"],
                    "active_slot": "blue",
                    "canary_weight": 0.0,
                    "mirror": True,
                },
            )
        except BaseException as exc:
            with connect(ws.db_path) as con, transaction(con):
                op.end("failed", {"error": str(exc)}, con=con)
                store.finish_run(con, run_id, "failed", outcome={"error": str(exc)})
                _run_ended(con, name, actor, f"parallel run failed: {exc}")
            raise
        with connect(ws.db_path) as con, transaction(con):
            op.end(outcome.status, outcome.summary(), con=con)
            if outcome.status == "stopped":
                _run_ended(con, name, actor, "parallel run stopped before its end")
    rollback = None
    verdict, not_judged = None, None
    if outcome.fired is not None:
        rollback = rollback_on_trigger(
            ws, name, outcome.fired, "the parallel run", policy=policy, progress=progress
        )
        not_judged = (
            f"trigger {outcome.fired.name} fired ({outcome.fired.explanation}): rolled back on its own"
        )
    elif outcome.status == "stopped":
        not_judged = "stopped before its end: not judged; start a new run to collect evidence"
    else:
        progress(int(duration_s), int(duration_s), "judging the run")
        try:
            verdict = judge(ws, name, actor=actor, run_id=run_id, reason="judged at the end of the run")
        except SwitchyardError as exc:  # the run and its samples stand; judge it again from there
            not_judged = f"not judged: {exc}; judge it again ('judge {name}')"
    with connect(ws.db_path) as con:
        state = systems_store.get_system(con, name)["state"]
    return RunResult(
        system=name,
        run_id=run_id,
        status=outcome.status,
        state=state,
        summary=outcome.summary(),
        rollback=rollback,
        verdict=verdict,
        not_judged=not_judged,
        continues=continues,
    )


def _run_ended(con: Any, name: str, actor: str, reason: str) -> None:
    """A run ended without a verdict (failed, stopped, its process died): ``name`` is back to
    green deployed if it was in parallel run, in the caller's transaction."""
    if State(systems_store.get_system(con, name)["state"]) == State.PARALLEL_RUN:
        systems_store.transition_within(con, name, State.GREEN_DEPLOYED, actor=actor, reason=reason)


def _settle_parallel_run(ws: Workspace, name: str, actor: str) -> str:
    """After a run's process died (its runs already finished as interrupted): traffic on blue alone and
    the system green deployed, as at a run's failed end (:func:`_run_ended`); says what next."""
    slots.route_alone(ws, name, "blue")
    with connect(ws.db_path) as con, transaction(con):
        _run_ended(con, name, actor, "parallel run interrupted (its process died); run it again")
    return f"traffic on blue, the run's samples kept as interrupted: run parallel-run {name} again"


@operator_only("run longer")
@changes_state
def extend_run(
    ws: Workspace,
    name: str,
    *,
    actor: str,
    duration_s: float,
    rps: float | None = None,
    progress: Progress = no_progress,
) -> RunResult:
    """Collect more samples for the newest verdict's run: a run that continues it at its rate and
    bucket, judged at its end together with it (an INCONCLUSIVE verdict's "Run N more minutes")."""
    check_system_name(name)
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
        verdict = store.latest_verdict(con, name)
        run = store.get_run(con, verdict["run_id"]) if verdict else None
    seen = verdict["verdict"] if verdict else None
    if Action.EXTEND not in available_actions(row["state"], verdict=seen) or run is None:
        raise StateConflictError(f"{name} is {row['state']}: running longer needs a judged run to add to")
    return parallel_run(
        ws,
        name,
        actor=actor,
        duration_s=duration_s,
        bucket_s=float(run["bucket_s"]),
        rps=float(rps or run["rps"]),
        progress=progress,
        continues=str(run["id"]),
    )


@operator_only("calibrate the measurement (an A/A run)")
@changes_state
def calibrate(
    ws: Workspace,
    name: str,
    *,
    actor: str,
    duration_s: float = calibration.DEFAULT_DURATION_S,
    rps: float = calibration.DEFAULT_RPS,
    progress: Progress = no_progress,
) -> calibration.CalibrationOutcome:
    """An A/A run: old mirrored to a copy of old, judged; its latency figure is kept as the calibration."""
    check_system_name(name)
    for label, value in (("--duration", duration_s), ("--rps", rps)):
        if value <= 0:
            raise InputError(label, "value", "a positive number", str(value))
    recover(ws)
    with connect(ws.db_path) as con:
        state = systems_store.get_system(con, name)["state"]
    if Action.CALIBRATE not in available_actions(state):
        raise StateConflictError(f"{name} is {state}: a parallel run is on; calibrate when it has ended")
    return calibration.calibrate_system(
        ws, name, actor=actor, policy=_policy(), duration_s=duration_s, rps=rps, progress=progress
    )


@operator_only("measure capacity (closed-loop load on old and new)")
@changes_state
def measure_capacity(
    ws: Workspace,
    name: str,
    *,
    actor: str,
    rounds: int = capacity.ROUNDS,
    round_s: float = capacity.ROUND_S,
    connections: int = capacity.CONNECTIONS,
    progress: Progress = no_progress,
) -> capacity.Capacity:
    """Each version's sustainable req/s, side by side (the seed's throughput KPI); recorded with who and when.

    Needs both versions running (green deployed, or judged). The load goes
    straight to their ports, not through the gateway; while it lasts, anything
    the gateway sends to blue shares blue with the probe (a few seconds).
    """
    check_system_name(name)
    for label, value in (("--rounds", rounds), ("--connections", connections)):
        if int(value) < 1:
            raise InputError(label, "value", "a whole number >= 1", str(value))
    if round_s <= 0 or round_s > 60:
        raise InputError("--seconds", "value", "a positive number of seconds, at most 60", str(round_s))
    recover(ws)
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
    blue, green = slots.live(ws, name, "blue"), slots.live(ws, name, "green")
    if Action.MEASURE_CAPACITY not in available_actions(row["state"]) or blue is None or green is None:
        raise StateConflictError(
            f"{name} is {row['state']}: a capacity probe needs old and new running and no run on them "
            "(deploy first)"
        )
    with operation(
        ws.db_path,
        name,
        "capacity",
        actor=actor,
        seen_version=int(row["version"]),
        blocked_by=("deploy", "parallel_run", "promote", "rollback", "calibrate"),
    ) as op:
        endpoints = supervisor.get_json(int(blue["port"]), "/endpoints")["endpoints"]
        result = capacity.probe(
            {"old": int(blue["port"]), "new": int(green["port"])},
            request_mix(endpoints),
            system=name,
            actor=actor,
            rounds=int(rounds),
            round_s=round_s,
            connections=int(connections),
            progress=progress,
        )
        with connect(ws.db_path) as con, transaction(con):
            op.end("completed", {"change": result.change}, con=con)
            event = {"actor": actor, "system": name, "action": capacity.MEASURED, "reason": result.describe()}
            append_events(con, [event | {"after": json.loads(result.model_dump_json())}])
    return result


@operator_only("stop a run")
@changes_state
def stop_run(ws: Workspace, name: str, *, actor: str) -> str:
    """Ask the running run of ``name`` to stop at its next tick; returns its id."""
    check_system_name(name)
    with connect(ws.db_path) as con:
        state = systems_store.get_system(con, name)["state"]
        running = store.list_runs(con, name).filter(pl.col("status") == "running")
        if Action.STOP_RUN not in available_actions(state, run_in_progress=running.height > 0):
            raise NotFoundError(f"{name}: no run is in progress")
        run_id = running["id"][0]
        with transaction(con):
            store.request_stop(con, run_id)
            append_events(
                con,
                [
                    {
                        "actor": actor,
                        "system": name,
                        "action": "run:stop_requested",
                        "reason": f"stop {run_id}",
                    }
                ],
            )
    return str(run_id)


@operator_only("judge a run (it records a verdict)")
@changes_state
def judge(
    ws: Workspace, name: str, *, actor: str, run_id: str | None = None, reason: str | None = None
) -> Verdict:
    """Judge the newest completed parallel run (or ``run_id``) and record the verdict.

    A run that continues earlier ones ("Run N more minutes") is judged on all
    their samples together.
    """
    check_system_name(name)
    policy = _policy()
    run, health = judgeable_run(ws, name, run_id)
    samples = read_run_samples(ws, name, chain_ids(ws, run))
    with connect(ws.db_path) as con:
        calibrated = latest_calibration(con, name)
    verdict = judge_samples(
        samples,
        policy,
        validation_success_rate=validation_rate(ws, name),
        failed_health_checks=health,
        bucket_s=float(run["bucket_s"]),
        calibration=calibrated,
    )
    result = json.loads(verdict.model_dump_json())
    said = f"verdict {verdict.verdict} on run {run['id']}"
    record_verdict(
        ws, name, run, verdict, result, actor=actor, reason=said + (f" ({reason})" if reason else "")
    )
    return verdict  # operator_only refreshes the gateway's /metrics snapshot on return


@operator_only("promote")
@changes_state
def promote(
    ws: Workspace,
    name: str,
    *,
    actor: str,
    reason: str,
    expected_version: int | None = None,
    monitor_s: float | None = None,
    rps: float | None = None,
    warm_s: float | None = None,
    progress: Progress = no_progress,
) -> PromoteOutcome:
    check_system_name(name)
    recover(ws)
    policy = _policy()
    with connect(ws.db_path) as con:
        ensure_not_held(con, name, "promote")
        if policy.governance.approval_required:
            require_approval(con, name, store.latest_verdict(con, name), actor)
    return promote_system(
        ws,
        name,
        actor=actor,
        reason=reason,
        policy=policy,
        progress=progress,
        expected_version=expected_version,
        monitor_s=monitor_s,
        rps=rps,
        warm_s=warm_s,
    )


@operator_only("roll back")
@changes_state
def rollback(
    ws: Workspace,
    name: str,
    *,
    actor: str,
    reason: str,
    expected_version: int | None = None,
    progress: Progress = no_progress,
) -> RollbackOutcome:
    check_system_name(name)
    recover(ws)
    with connect(ws.db_path) as con:
        ensure_not_held(con, name, "roll back")
    return rollback_system(
        ws,
        name,
        actor=actor,
        reason=reason,
        policy=_policy(),
        progress=progress,
        expected_version=expected_version,
    )


# --------------------------------------------------------------------------- status / down


class SystemStatus(BaseModel):
    system: str
    state: str
    version: int
    route: dict[str, Any] | None
    processes: list[dict[str, Any]]
    latest_run: dict[str, Any] | None
    verdict: dict[str, Any] | None
    interrupted: dict[str, Any] | None = None
    """The newest operation on the system if a crash cut it short: operation, at, next (what to do now)."""
    checklist_items: tuple[str, ...] = ITEMS
    available_actions: list[str] = []
    """What an operator may do with the system now (engine.state.available_actions), by name."""


def available_now(con: Any, name: str, row: dict[str, Any] | None = None) -> frozenset[Action]:
    """:func:`engine.state.available_actions` of ``name`` from what the store says now: its state, a
    hold, the newest verdict, a run in progress, the fast-rollback window, the deploy's strategy."""
    row = row or systems_store.get_system(con, name)
    run = store.latest_run(con, name, "parallel")
    verdict = store.latest_verdict(con, name)
    route = store.get_route(con, name)
    return available_actions(
        row["state"],
        hold_of(con, name) is not None,
        verdict=verdict["verdict"] if verdict else None,
        run_in_progress=run is not None and run["status"] == "running",
        warm=window_open(con, name),
        strategy=route["strategy"] if route else None,
    )


def status(ws: Workspace, name: str) -> SystemStatus:
    """Where one system is: state, route, live processes (with a live health probe), runs, verdict."""
    check_system_name(name)
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
        route = store.get_route(con, name)
        procs = store.live_processes(con, name)
        run = store.latest_run(con, name, "parallel")
        verdict = store.latest_verdict(con, name)
        operation = store.latest_operation(con, name)
        available = available_now(con, name, row)
    processes = [
        {
            "role": p["role"],
            "runtime": p["runtime"],
            "pid": p["pid"],
            "port": p["port"],
            "status": p["status"],
            "healthy": supervisor.healthy(int(p["port"])),
            "health_failures": p["health_failures"],
        }
        for p in procs.iter_rows(named=True)
    ]
    if run is not None:
        run = {k: (str(v) if v is not None and k.endswith("_at") else v) for k, v in run.items()}
        run["outcome"] = json.loads(run["outcome"]) if run.get("outcome") else None
    if route is not None:
        route = {k: (str(v) if k == "updated_at" else v) for k, v in route.items()}
    if verdict is not None:
        verdict = {
            "id": verdict["id"],
            "run_id": verdict["run_id"],
            "ts": str(verdict["ts"]),
            "verdict": verdict["verdict"],
            "new_better": verdict["new_better"],
            "actor": verdict["actor"],
            "reasons": verdict["result"].get("reasons", []),
        }
    return SystemStatus(
        system=name,
        state=row["state"],
        version=int(row["version"]),
        route=route,
        processes=processes,
        latest_run=run,
        verdict=verdict,
        interrupted=_interrupted(operation),
        available_actions=sorted(available),
    )


def _interrupted(op: dict[str, Any] | None) -> dict[str, Any] | None:
    """``op`` as status shows it if a crash cut it short (recorded by recover, or its process just gone)."""
    if op is None:
        return None
    if op["status"] == "interrupted":
        return {"operation": op["kind"], "at": str(op["ended_at"]), "next": op["detail"].get("next")}
    if op["status"] == "running" and not supervisor.pid_alive(int(op["pid"])):
        return {
            "operation": op["kind"],
            "at": str(op["started_at"]),
            "next": "its process died; the next command by an operator settles it and says what to do",
        }
    return None


@operator_only("stop the workspace's processes")
@changes_state
def down(
    ws: Workspace, *, actor: str, reason: str = "down: stop everything this workspace started"
) -> list[str]:
    """Stop every process this workspace started (services and gateway); returns what was stopped."""
    if not ws.exists():
        return []
    recover(ws, actor)
    stopped = []
    with connect(ws.db_path) as con:
        procs = store.live_processes(con)
    for p in procs.sort("role", descending=False).iter_rows(named=True):
        supervisor.stop_process(ws, p, reason, actor)
        stopped.append(f"{p['system'] or 'gateway'} {p['role']} (pid {p['pid']}, port {p['port']})")
    return stopped


# --------------------------------------------------------------------------- evidence for the page


class RunEvidence(BaseModel):
    """Everything the Go/No-Go page draws for one system, computed from the store and the samples."""

    model_config = {"arbitrary_types_allowed": True}
    system: str
    state: str
    version: int
    run: dict[str, Any] | None
    runs: pl.DataFrame
    summary: pl.DataFrame
    buckets: pl.DataFrame
    latencies: pl.DataFrame
    mismatches: pl.DataFrame
    verdict: dict[str, Any] | None
    checklist_acked: bool


def run_evidence(ws: Workspace, name: str, run_id: str | None = None) -> RunEvidence:
    """Newest parallel run of ``name`` (or ``run_id``): bucket stats, distributions, mismatches, verdict."""
    check_system_name(name)
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
        runs = store.list_runs(con, name)
        run = store.get_run(con, run_id) if run_id else store.latest_run(con, name, "parallel")
        verdict = store.latest_verdict(con, name)
        acked = store.latest_ack(con, name, "team_notified") is not None
    empty = pl.DataFrame()
    if run is None:
        return RunEvidence(
            system=name,
            state=row["state"],
            version=int(row["version"]),
            run=None,
            runs=runs,
            summary=empty,
            buckets=empty,
            latencies=empty,
            mismatches=empty,
            verdict=verdict,
            checklist_acked=acked,
        )
    with connect(ws.db_path) as con:  # a run that continues earlier ones is read with them
        chain = run_chain(con, run)
    run = run | {"chain": [r["id"] for r in chain], "chain_seconds": chain_seconds(chain)}
    frames = compare.evidence(ws, name, run["chain"], float(run["bucket_s"]))  # one read of the segments
    return RunEvidence(
        system=name,
        state=row["state"],
        version=int(row["version"]),
        run=run,
        runs=runs,
        summary=frames.summary,
        buckets=frames.buckets,
        latencies=frames.latencies,
        mismatches=frames.mismatches,
        verdict=verdict if verdict and verdict["run_id"] == run["id"] else None,
        checklist_acked=acked,
    )


# --------------------------------------------------------------------------- a run as it goes, what next


class LiveRun(BaseModel):
    """A parallel run in progress as the page shows it while it goes: nothing here is recorded."""

    run: dict[str, Any]
    elapsed_s: float
    samples_old: int
    samples_new: int
    verdict: Verdict | None
    """The judge on the samples so far (with the runs it continues): interim, never stored."""


def run_so_far(ws: Workspace, name: str) -> LiveRun | None:
    """The running parallel run of ``name`` and the verdict its samples would get now; None if none runs.

    The same judge as at the end, on what the gateway has written so far, so a
    lead watches the intervals narrow and the triggers stay quiet (or not).
    """
    check_system_name(name)
    with connect(ws.db_path) as con:
        run = store.latest_run(con, name, "parallel")
        if run is None or run["status"] != "running":
            return None
        chain = run_chain(con, run)
        green = store.live_slot(con, name, "green")
        calibrated = latest_calibration(con, name)
    samples = read_run_samples(ws, name, [r["id"] for r in chain])
    verdict = None
    if samples.height:
        verdict = judge_samples(
            samples,
            _policy(),
            validation_success_rate=validation_rate(ws, name),
            failed_health_checks=int(green["health_failures"]) if green else None,
            bucket_s=float(run["bucket_s"]),
            calibration=calibrated,
        )
    old = int((samples["version"] == "old").sum()) if samples.height else 0
    return LiveRun(
        run=run | {"chain": [r["id"] for r in chain], "chain_seconds": chain_seconds(chain)},
        elapsed_s=(dt.datetime.now(dt.UTC) - run["started_at"]).total_seconds(),
        samples_old=old,
        samples_new=samples.height - old,
        verdict=verdict,
    )
