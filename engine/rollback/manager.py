"""RollbackManager: the seed's five steps, made real.

1. send all traffic back to blue (first, so users are safe while the rest runs);
2. stop the new version;
3. restore the old one from the newest backup and restart it (start the
   restored copy, switch to it, then stop the previous blue: no request lost);
4. verify it answers every entry endpoint;
5. document the failure as ``migration/failures/<name>_<YYYYmmdd_HHMMSS>.json``
   (system, timestamp, reason, logs, metrics).

A failed verification leaves the system in ``emergency``, which the UI shows
in red; a person restores by hand and records it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.deploy import slots, supervisor
from engine.deploy.warm import window_open
from engine.errors import InputError, StateConflictError
from engine.governance.hold import hold_of, place_hold
from engine.judge.policy import Policy
from engine.judge.verdict import Trigger
from engine.progress import Progress
from engine.state import Action, State, allowed, available_actions
from engine.store import connect, transaction
from engine.store import deployments as store
from engine.store import systems as systems_store
from engine.store.events import append_events
from engine.store.operations import Operation, operation
from engine.workspace import Workspace, safe_child

LOG_TAIL_LINES = 60


class RollbackOutcome(BaseModel):
    system: str
    state: str
    verified: bool
    problems: list[str]
    failure_document: str
    reason: str


def _log_tail(path: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        return Path(path).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def collect_metrics(ws: Workspace, name: str) -> dict[str, Any]:
    """What the failure document carries as metrics: the latest runs and verdict, the processes."""
    with connect(ws.db_path) as con:
        runs = store.list_runs(con, name).head(5)
        verdict = store.latest_verdict(con, name)
        procs = store.process_history(con, name)
    return {
        "runs": [
            {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in r.items() if k != "outcome"}
            | {"outcome": json.loads(r["outcome"]) if r["outcome"] else None}
            for r in runs.iter_rows(named=True)
        ],
        "verdict": verdict["result"] if verdict else None,
        "processes": [
            {
                "role": p["role"],
                "runtime": p["runtime"],
                "pid": p["pid"],
                "port": p["port"],
                "status": p["status"],
                "health_failures": p["health_failures"],
                "stop_reason": p["stop_reason"],
            }
            for p in procs.iter_rows(named=True)
        ],
    }


def document_failure(
    ws: Workspace, name: str, reason: str, actor: str, trigger: dict[str, Any] | None, extra: dict[str, Any]
) -> Path:
    """Write the seed's failure document (atomically) and return its path."""
    now = dt.datetime.now()
    with connect(ws.db_path) as con:
        procs = store.process_history(con, name)
    logs = {f"{p['role']}-{p['pid']}": _log_tail(p["log_path"]) for p in procs.tail(4).iter_rows(named=True)}
    document = {
        "system": name,
        "timestamp": now.isoformat(),
        "reason": reason,
        "actor": actor,
        "trigger": trigger,
        "logs": logs,
        "metrics": collect_metrics(ws, name),
        **extra,
    }
    ws.failures_dir.mkdir(parents=True, exist_ok=True)
    target = safe_child(ws.failures_dir, name, f"_{now:%Y%m%d_%H%M%S}.json")
    n = 1
    while target.exists():  # two rollbacks in one second keep both documents
        target = safe_child(ws.failures_dir, name, f"_{now:%Y%m%d_%H%M%S}_{n}.json")
        n += 1
    temp = target.with_suffix(".json.tmp")
    temp.write_text(json.dumps(document, indent=2, default=str))
    os.replace(temp, target)
    return target


def rollback_system(
    ws: Workspace,
    name: str,
    *,
    actor: str,
    reason: str,
    policy: Policy,
    trigger: dict[str, Any] | None = None,
    expected_version: int | None = None,
    progress: Progress,
) -> RollbackOutcome:
    """Roll ``name`` back to its old version; see the module doc for the steps."""
    if not reason.strip():
        raise InputError("--reason", "''", "why you roll back (team decision, customer impact, ...)")
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
        route = store.get_route(con, name)
        warm = window_open(con, name)
    state = State(row["state"])
    if Action.ROLLBACK not in available_actions(state, warm=warm):
        if state == State.DONE:
            raise StateConflictError(
                f"{name} is done and its old version was decommissioned: there is nothing warm to switch "
                "back to (deploy v1 again to undo the migration)"
            )
        raise StateConflictError(f"{name} is {state}: nothing of the new version is deployed to roll back")
    systems_store.check_version(row, expected_version)
    fast = state == State.DONE  # inside the fast-rollback window: blue is still warm, a switch will do
    strategy = route["strategy"] if route else "blue_green"
    with operation(  # of two clicks at once, one rolls back, the other is refused
        ws.db_path,
        name,
        "rollback",
        actor=actor,
        seen_version=int(row["version"]),
        detail={"reason": reason, "fast": True} if fast else {"reason": reason, "trigger": trigger},
    ) as op:
        steps = _switch_back if fast else _restore
        problems = steps(ws, name, strategy, actor=actor, reason=reason, policy=policy, progress=progress)
        return _finish(
            ws, name, op, actor=actor, reason=reason, trigger=trigger, problems=problems, progress=progress
        )


def _restore(
    ws: Workspace, name: str, strategy: str, *, actor: str, reason: str, policy: Policy, progress: Progress
) -> list[str]:
    """Steps 1-4 of the module doc; returns the problems of verifying the restored blue (a failing step
    is one: any failure here is an emergency, recorded by :func:`_finish`)."""
    total = 5
    problems: list[str] = []
    try:
        progress(1, total, "sending all traffic to blue")
        old_blue = slots.live(ws, name, "blue")
        if old_blue is not None:
            _route_to_blue(ws, name, strategy, actor)
        progress(2, total, "stopping green")
        slots.stop_slot(ws, name, "green", f"rollback: {reason}", actor)
        progress(3, total, "restoring blue from the newest backup and restarting it")
        new_blue = slots.start_blue(
            ws, name, actor, policy.deploy.health_timeout_s, policy.sandbox.service_memory_mb
        )
        _route_to_blue(ws, name, strategy, actor)
        for earlier in _earlier_blues(ws, name, int(new_blue["id"])):
            # answering or not: a hung old blue would otherwise run on beside the restored one
            supervisor.wait_drained(ws, int(earlier["port"]))
            supervisor.stop_process(ws, earlier, "replaced by the restored blue", actor)
        progress(4, total, "verifying blue answers through the gateway")
        problems = _verify(ws, name, int(new_blue["port"]))
    except Exception as exc:  # noqa: BLE001 - any failure here is an emergency, recorded by _finish
        problems.append(f"{type(exc).__name__}: {exc}")
    return problems


def _earlier_blues(ws: Workspace, name: str, restored_id: int) -> list[dict[str, Any]]:
    """Every blue process the store still counts as live other than the restored one."""
    with connect(ws.db_path) as con:
        rows = store.live_processes(con, name)
    return [r for r in rows.iter_rows(named=True) if r["role"] == "blue" and int(r["id"]) != restored_id]


def _switch_back(
    ws: Workspace, name: str, strategy: str, *, actor: str, reason: str, policy: Policy, progress: Progress
) -> list[str]:
    """Rollback inside the fast-rollback window: blue is still running, so only traffic moves.

    Unless the warm blue has died or hangs since: then it is restored from the
    backup before traffic moves (recorded as ``rollback:warm_blue_lost``), as a
    full rollback would. Returns the problems, as :func:`_restore` does.
    """
    problems: list[str] = []
    try:
        blue = slots.live(ws, name, "blue")
        if blue is None:
            # the warm blue died or hangs: switching to it would send every request nowhere and stop a
            # green that answers, so it is restored from the backup first, and only then does traffic move
            progress(1, 5, "the warm blue is not answering: restoring it from the newest backup")
            blue = slots.start_blue(
                ws, name, actor, policy.deploy.health_timeout_s, policy.sandbox.service_memory_mb
            )
            _record_warm_blue_lost(ws, name, actor, blue)
        progress(2, 5, "switching traffic back to blue")
        _route_to_blue(ws, name, strategy, actor)
        for earlier in _earlier_blues(ws, name, int(blue["id"])):
            supervisor.stop_process(ws, earlier, "replaced by the restored blue", actor)
        progress(3, 5, "stopping green")
        slots.stop_slot(ws, name, "green", f"rollback: {reason}", actor)
        progress(4, 5, "verifying blue answers through the gateway")
        problems = _verify(ws, name, int(blue["port"]))
    except Exception as exc:  # noqa: BLE001 - any failure here is an emergency, recorded by _finish
        problems.append(f"{type(exc).__name__}: {exc}")
    return problems


def _record_warm_blue_lost(ws: Workspace, name: str, actor: str, restored: dict[str, Any]) -> None:
    with connect(ws.db_path) as con, transaction(con):
        append_events(
            con,
            [
                {
                    "actor": actor,
                    "system": name,
                    "action": "rollback:warm_blue_lost",
                    "reason": "the warm blue was not answering: restored from the backup before the switch",
                    "after": {"pid": restored["pid"], "port": restored["port"]},
                }
            ],
        )


def _verify(ws: Workspace, name: str, port: int) -> list[str]:
    """Problems of blue answering, directly and through the gateway (empty: it answers correctly)."""
    gateway = supervisor.gateway_port(ws)
    problems = slots.smoke_test(port)
    if gateway is not None:
        problems += [
            f"via gateway: {p}"
            for p in slots.smoke_test(gateway, f"/s/{name}/call", variants=1, endpoints_port=port)
        ]
    return problems


def _finish(
    ws: Workspace,
    name: str,
    op: Operation,
    *,
    actor: str,
    reason: str,
    trigger: dict[str, Any] | None,
    problems: list[str],
    progress: Progress,
) -> RollbackOutcome:
    """Document the rollback and record its outcome: rolled back when verified, else emergency."""
    try:
        verified = not problems
        progress(5, 5, "writing the failure document")
        doc = document_failure(
            ws, name, reason, actor, trigger, {"verified": verified, "verification_problems": problems}
        )
        target = State.ROLLED_BACK if verified else State.EMERGENCY
        with connect(ws.db_path) as con:
            current = systems_store.get_system(con, name)
        detail = {"failure_document": str(doc.relative_to(ws.root)), "trigger": trigger, "problems": problems}
        moves = State(current["state"]) != target
        with connect(ws.db_path) as con, transaction(con):
            if verified and moves:
                systems_store.transition_within(con, name, target, actor=actor, reason=reason, detail=detail)
            elif not verified:
                said = "rollback could not verify the old version: " + "; ".join(problems)[:500]
                emergency = {"reason": reason, "detail": detail, "said": said, "moves": moves}
                _record_emergency(con, name, actor=actor, **emergency)
            op.end("completed" if verified else "failed", {"problems": problems}, con=con)
        return RollbackOutcome(
            system=name,
            state=str(target),
            verified=verified,
            problems=problems,
            failure_document=str(doc),
            reason=reason,
        )
    except BaseException as exc:  # what it could not record is said beside the problems it found
        op.end("failed", {"problems": [*problems, f"{type(exc).__name__}: {exc}"]})
        raise


def _record_emergency(
    con: Any,
    name: str,
    *,
    actor: str,
    reason: str,
    detail: dict[str, Any],
    said: str,
    moves: bool = True,
) -> None:
    """``name`` is in emergency (unless already, ``moves``) and the ``emergency`` event says why, in the
    caller's transaction: the old version was not verified, a person restores it by hand."""
    if moves:
        systems_store.transition_within(con, name, State.EMERGENCY, actor=actor, reason=reason, detail=detail)
    append_events(con, [{"actor": actor, "system": name, "action": "emergency", "reason": said}])


def settle_rollback(ws: Workspace, name: str, state: State, actor: str) -> str:
    """After a rollback's process died: it never verified the old version, so traffic goes to blue if it
    runs and the system is in emergency (as a rollback that cannot verify records it); says what next."""
    blue = slots.live(ws, name, "blue") is not None
    if blue:
        slots.route_alone(ws, name, "blue")
    serving = "traffic is on blue" if blue else "blue is not running, nothing answers"
    advice = f"run rollback {name} again to restore and verify the old version"
    if state in (State.ROLLED_BACK, State.EMERGENCY) or not allowed(state, State.EMERGENCY):
        return f"{serving}; {advice}"
    docs = _unrecorded_failure_documents(ws, name)
    with connect(ws.db_path) as con, transaction(con):
        _record_emergency(
            con,
            name,
            actor=actor,
            reason=f"rollback interrupted before it verified the old version; {serving}",
            detail={"failure_documents": docs, "next": advice},
            said=f"rollback interrupted (its process died); {serving}; {advice}",
        )
    return f"{name} is now emergency ({serving}): {advice}"


def _unrecorded_failure_documents(ws: Workspace, name: str) -> list[str]:
    """Failure documents of ``name`` that no state change names: written by a rollback that then died."""
    with connect(ws.db_path) as con:
        named = {
            r[0]
            for r in con.execute(
                "SELECT json_extract_string(after, '$.failure_document') FROM events "
                "WHERE system = ? AND action LIKE 'state:%'",
                [name],
            ).fetchall()
        }
    found = sorted(p.relative_to(ws.root).as_posix() for p in ws.failures_dir.glob(f"{name}_*.json"))
    return [d for d in found if d not in named]


def rollback_on_trigger(
    ws: Workspace, name: str, trigger: Trigger, stage: str, *, policy: Policy, progress: Progress
) -> RollbackOutcome:
    """The automatic rollback: the trigger is the actor and its explanation the reason.

    Unless the system is on HOLD, or the policy says to hold instead: then the
    trigger is recorded, traffic stays where it is and a person decides.
    """
    actor = f"trigger:{trigger.name}"
    with connect(ws.db_path) as con, transaction(con):
        state = systems_store.get_system(con, name)["state"]
        held = hold_of(con, name)
        if held is None and policy.governance.hold_on_trigger:
            held = place_hold(
                con,
                name,
                state,
                actor=actor,
                owner=None,
                reason=f"held instead of rolled back during {stage}: {trigger.explanation}",
            )
        elif held is not None:
            append_events(
                con,
                [
                    {
                        "actor": actor,
                        "system": name,
                        "action": f"trigger:{trigger.name}",
                        "reason": f"fired during {stage} while held, not rolled back: {trigger.explanation}",
                        "before": {"held": True},
                        "after": {"trigger": trigger.model_dump()},
                    }
                ],
            )
    if held is not None:
        progress(1, 1, f"{trigger.name} fired: {name} is on HOLD, not rolled back")
        return RollbackOutcome(
            system=name,
            state=state,
            verified=False,
            problems=[held.sentence()],
            failure_document="",
            reason=f"trigger {trigger.name} fired during {stage}; held: {trigger.explanation}",
        )
    return rollback_system(
        ws,
        name,
        actor=actor,
        policy=policy,
        progress=progress,
        reason=f"automatic rollback during {stage}: {trigger.explanation}",
        trigger=trigger.model_dump(),
    )


def _route_to_blue(ws: Workspace, name: str, strategy: str, actor: str) -> None:
    with connect(ws.db_path) as con, transaction(con):
        store.put_route(con, name, strategy=strategy, active_slot="blue", canary_weight=0.0, mirror=False)
    supervisor.publish_routes(ws, actor)
