"""Deployment strategies: blue_green, canary and direct, on real local processes.

* **deploy** (all strategies): blue (old) running from the backup, green (new)
  started beside it and smoke-tested, the gateway routing every request to
  blue. A green that fails its smoke test is stopped and the system stays
  ``ready`` (the seed: ``success=False, reason="Test failed",
  rollback_needed=False``).
* **promote**:
  - blue_green: switch all traffic to green, then the monitor window (blue
    mirrored as the baseline, triggers checked); clean window -> blue is
    decommissioned and the system is ``done``, a fired trigger -> rollback.
  - canary: green answers a growing share of requests (policy
    ``canary_weights``), each step watched for ``canary_step_s``; a fired
    trigger aborts and rolls back; after the last step it is a blue_green
    switch and window.
  - direct: promoted straight after deploy, without a parallel run, then the
    same window.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from pydantic import BaseModel

from engine.deploy import slots, supervisor
from engine.deploy.checklist import run_checklist
from engine.errors import InputError, StateConflictError, SwitchyardError
from engine.judge.policy import Policy
from engine.parallel.run import WatchOutcome, watch
from engine.progress import Progress
from engine.rollback.manager import RollbackOutcome, rollback_on_trigger
from engine.state import Action, State, available_actions
from engine.store import connect, transaction
from engine.store import deployments as store
from engine.store import systems as systems_store
from engine.store import validations as validations_store
from engine.store.events import append_events
from engine.store.operations import Operation, operation
from engine.workspace import Workspace

STRATEGIES = ("blue_green", "canary", "direct")


class DeployOutcome(BaseModel):
    system: str
    strategy: str
    state: str
    blue_port: int
    green_port: int
    gateway_port: int
    smoke_problems: list[str] = []
    promotion: PromoteOutcome | None = None


class PromoteOutcome(BaseModel):
    system: str
    state: str
    promoted: bool
    steps: list[dict[str, Any]]
    rollback: RollbackOutcome | None = None


def _transition(
    ws: Workspace, name: str, target: State, actor: str, reason: str, **kw: Any
) -> dict[str, Any]:
    with connect(ws.db_path) as con:
        return systems_store.transition(con, name, target, actor=actor, reason=reason, **kw)


def validation_rate(ws: Workspace, name: str) -> float | None:
    """The newest v2 gate rate: the seed's validation criterion and trigger read it."""
    with connect(ws.db_path) as con:
        latest = validations_store.latest_validation(con, name, "v2")
    return latest.validation_success_rate if latest else None


def deploy_system(
    ws: Workspace,
    name: str,
    strategy: str,
    *,
    actor: str,
    reason: str,
    policy: Policy,
    progress: Progress,
    expected_version: int | None = None,
    monitor_s: float | None = None,
    warm_s: float | None = None,
) -> DeployOutcome:
    """Start green beside blue and route to blue; ``direct`` goes on to promote. See the module doc."""
    if strategy not in STRATEGIES:
        raise InputError("strategy", repr(strategy), " | ".join(STRATEGIES))
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
        if Action.DEPLOY not in available_actions(row["state"]):
            raise StateConflictError(
                f"{name} is {row['state']}: deploy needs 'ready' (validate v2, then pass the checklist)"
            )
        checklist = run_checklist(con, ws, row, policy)
    if not checklist.ready_to_migrate:
        missing = "; ".join(f"{i.name} ({i.detail})" for i in checklist.missing())
        raise StateConflictError(f"{name}: not ready to migrate, checklist items missing: {missing}")
    systems_store.check_version(row, expected_version)
    with connect(ws.db_path) as con:
        before_route = store.get_route(con, name)
    total = 5
    started: list[str] = []  # the slots this deploy started: a failure stops them again
    step = "starting blue"
    claim = {"strategy": strategy, "started": []}
    with operation(ws.db_path, name, "deploy", actor=actor, detail=claim) as op:

        def starting(slot: str) -> None:
            """Written down before the process exists: recover, after a crash, stops what a dead deploy
            began (:func:`settle_deploy`)."""
            op.progress({"strategy": strategy, "started": [*started, slot]})

        try:
            progress(1, total, "starting blue (v1, legacy RPC runtime) from the backup")
            blue = slots.live(ws, name, "blue")
            if blue is None:
                starting("blue")
                blue = slots.start_blue(
                    ws, name, actor, policy.deploy.health_timeout_s, policy.sandbox.service_memory_mb
                )
                started.append("blue")
            step = "starting green"
            progress(2, total, "starting green (v2, port runtime)")
            slots.stop_slot(ws, name, "green", "replaced by a new deploy", actor)
            starting("green")
            started.append("green")  # a green that failed its start is stopped by start_process itself
            green = slots.start_green(
                ws, name, actor, policy.deploy.health_timeout_s, policy.sandbox.service_memory_mb
            )
            step = "smoke-testing green"
            progress(3, total, "smoke-testing green")
            problems = slots.smoke_test(int(green["port"]))
            if problems:
                failed = "; ".join(problems[:5])
                raise supervisor.DeployError(f"{name}: green failed its smoke test: {failed}")
            # the smoke requests changed green's state (a created record, a counter); started again from its
            # files, green begins the comparison in the same state as blue, so what differs later is real
            step = "restarting green with a clean state"
            slots.stop_slot(ws, name, "green", "smoke test passed; restarted with a clean state", actor)
            green = slots.start_green(
                ws, name, actor, policy.deploy.health_timeout_s, policy.sandbox.service_memory_mb
            )
            step = "routing traffic to blue through the gateway"
            progress(4, total, "routing traffic to blue through the gateway")
            with connect(ws.db_path) as con, transaction(con):
                store.put_route(con, name, strategy=strategy, active_slot="blue")
            supervisor.publish_routes(ws, actor)
            gateway = supervisor.gateway_port(ws)
            if gateway is None:
                raise supervisor.DeployError(f"{name}: the gateway is not running")
            step = "recording the deploy"
            _transition(
                ws,
                name,
                State.GREEN_DEPLOYED,
                actor,
                reason,
                detail={
                    "strategy": strategy,
                    "blue_port": blue["port"],
                    "green_port": green["port"],
                    "gateway_port": gateway,
                },
            )
        except BaseException as exc:
            error = _deploy_failed(ws, name, op, exc, step, started, before_route, actor)
            if error is exc:
                raise
            raise error from exc
    progress(5, total, f"green deployed ({strategy})")
    outcome = DeployOutcome(
        system=name,
        strategy=strategy,
        state=str(State.GREEN_DEPLOYED),
        blue_port=int(blue["port"]),
        green_port=int(green["port"]),
        gateway_port=gateway,
    )
    if strategy == "direct":
        outcome.promotion = promote_system(
            ws,
            name,
            actor=actor,
            reason=f"direct deploy: {reason}",
            policy=policy,
            progress=progress,
            monitor_s=monitor_s,
            warm_s=warm_s,
        )
        outcome.state = outcome.promotion.state
    return outcome


def _deploy_failed(
    ws: Workspace,
    name: str,
    op: Operation,
    exc: BaseException,
    step: str,
    started: list[str],
    before_route: dict[str, Any] | None,
    actor: str,
) -> BaseException:
    """Undo a deploy that failed half-way and record why; returns the error to raise (one line).

    Every slot this deploy started is stopped (a blue that was already
    running stays), the route goes back to what it was, and the failure is an
    audit event (``deploy:failed``) naming the step, the reason and what was
    stopped. The system stays ``ready``. A failure of the environment or of
    the team's system (a process that would not start or answer, no entry
    endpoints) becomes a DeployError; a bug of the engine's own stays what it is.
    """
    if isinstance(exc, SwitchyardError):
        reason = str(exc)
    elif isinstance(exc, (OSError, ValueError)):
        reason = f"{name}: deploy failed while {step}: {exc}"
    else:
        reason = f"{name}: deploy failed while {step}: {type(exc).__name__}: {exc}"
    stopped = _stop_started(ws, name, started, f"deploy failed while {step}", actor, tolerant=True)
    with contextlib.suppress(Exception):
        with connect(ws.db_path) as con, transaction(con):
            if before_route is None:
                store.delete_route(con, name)
            else:
                store.put_route(
                    con,
                    name,
                    **{
                        k: before_route[k]
                        for k in ("strategy", "active_slot", "canary_weight", "mirror", "record_run")
                    },
                )
        supervisor.write_routes_file(ws)
    with connect(ws.db_path) as con, transaction(con):
        op.end("failed", {"error": reason, "step": step, "stopped": stopped}, con=con)
        append_events(
            con,
            [
                {
                    "actor": actor,
                    "system": name,
                    "action": "deploy:failed",
                    "reason": reason,
                    "after": {"step": step, "stopped": stopped, "state": str(State.READY)},
                }
            ],
        )
    if isinstance(exc, SwitchyardError) or not isinstance(exc, (OSError, ValueError)):
        return exc
    return supervisor.DeployError(reason)


def _stop_started(
    ws: Workspace, name: str, started: list[str], reason: str, actor: str, *, tolerant: bool = False
) -> list[str]:
    """Stop the slots a deploy started, the last started first (green before blue); returns those that
    were running. A blue that ran before the deploy is not among ``started`` and stays.

    ``tolerant``: a slot that will not stop is left for recover to settle, and the rest still stopped.
    """
    with connect(ws.db_path) as con:
        running = set(store.live_processes(con, name)["role"])
    stopped = []
    for slot in reversed(started):
        if slot not in running:
            continue  # it never came up (start_process stopped it and said why)
        try:
            slots.stop_slot(ws, name, slot, reason, actor)
            stopped.append(slot)
        except Exception:
            if not tolerant:
                raise
    return stopped


def settle_deploy(ws: Workspace, name: str, state: State, detail: dict[str, Any], actor: str) -> str:
    """After a deploy's process died: what it started is stopped while the system is still ``ready``
    (the step a failed deploy takes, :func:`_stop_started`); returns what to do next."""
    if state != State.READY:
        return f"{name} is {state}: the deploy had finished; carry on from there"
    # recorded before each process existed (deploy_system's starting): green may have been starting
    started = sorted(set(detail.get("started", [])) | {"green"})
    _stop_started(ws, name, started, "deploy was interrupted", actor)
    said = " and ".join(reversed(started))
    return f"{said} stopped, {name} is ready again: run deploy {name} again"


def settle_promote(ws: Workspace, name: str, state: State) -> str:
    """After a promote's process died: traffic goes where the state says, nobody watching it (no canary
    share, no run recording); a promote run again resumes from that state (:func:`promote_system`)."""
    if state == State.JUDGED:  # during a canary step or before the switch
        slots.route_alone(ws, name, "blue")
        return f"traffic is back on blue (no canary share): run promote {name} again, or roll back"
    with connect(ws.db_path) as con:
        route = store.get_route(con, name)
    if state == State.PROMOTED and route is not None and route["active_slot"] == "blue":
        slots.route_alone(ws, name, "blue")  # the switch was recorded, not yet made: nobody watches it
        return (
            f"recorded as promoted but traffic is still on blue (no canary share): run promote {name} "
            f"again to switch and watch it, or roll back"
        )
    if state in (State.PROMOTED, State.MONITORING):
        if slots.live(ws, name, "green") is not None:
            slots.route_alone(ws, name, "green")
            return (
                f"green serves all traffic but its monitor window did not finish: run promote {name} "
                f"again to watch it (it resumes), or roll back"
            )
        if slots.live(ws, name, "blue") is not None:
            slots.route_alone(ws, name, "blue")
            return f"green is not running, traffic is on blue: roll back {name}"
        return f"neither version is running: roll back {name} now"
    return f"{name} is {state}: the promote had finished its switch; check status {name}"


def promote_system(
    ws: Workspace,
    name: str,
    *,
    actor: str,
    reason: str,
    policy: Policy,
    progress: Progress,
    expected_version: int | None = None,
    monitor_s: float | None = None,
    rps: float | None = None,
    warm_s: float | None = None,
) -> PromoteOutcome:
    """Switch traffic to green (stepwise for canary) and watch; then stop blue, keep it warm, or roll back."""
    if not reason.strip():
        raise InputError("--reason", "''", "why you promote (the verdict, a team decision, ...)")
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
        route = store.get_route(con, name)
        verdict = store.latest_verdict(con, name)
    state = State(row["state"])
    strategy = route["strategy"] if route else None
    systems_store.check_version(row, expected_version)
    resuming = state in (State.PROMOTED, State.MONITORING)  # a window that was stopped or interrupted
    seen = verdict["verdict"] if verdict else None
    if Action.PROMOTE not in available_actions(state, verdict=seen, strategy=strategy):
        if state == State.JUDGED:
            said = seen or "none"
            raise StateConflictError(f"{name}: the latest verdict is {said}; only GO can be promoted")
        raise StateConflictError(f"{name} is {state}: promote needs a GO verdict (state 'judged')")
    monitor_s = monitor_s or policy.deploy.monitor_window_s
    rps = rps or policy.deploy.monitor_rps
    rate = validation_rate(ws, name)
    steps: list[dict[str, Any]] = []
    with operation(  # of two clicks at once, one promotes, the other is refused
        ws.db_path,
        name,
        "promote",
        actor=actor,
        seen_version=int(row["version"]),
        blocked_by=("rollback",),
        detail={"strategy": strategy},
    ) as op:

        def rolled_back(outcome: WatchOutcome, stage: str) -> PromoteOutcome:
            assert outcome.fired is not None
            op.end("rolled_back", {"trigger": outcome.fired.model_dump()})
            result = rollback_on_trigger(ws, name, outcome.fired, stage, policy=policy, progress=progress)
            return PromoteOutcome(
                system=name, state=result.state, promoted=False, steps=steps, rollback=result
            )

        if strategy == "canary" and not resuming:
            for weight in policy.deploy.canary_weights:
                if weight >= 1.0:
                    break
                outcome = watch(
                    ws,
                    name,
                    kind="canary",
                    duration_s=policy.deploy.canary_step_s,
                    bucket_s=1.0,
                    rps=rps,
                    actor=actor,
                    policy=policy,
                    validation_rate=rate,
                    progress=progress,
                    route={
                        "strategy": strategy,
                        "active_slot": "blue",
                        "canary_weight": weight,
                        "mirror": False,
                    },
                )
                steps.append({"stage": f"canary {weight:.0%}", **outcome.summary()})
                if outcome.fired is not None:
                    return rolled_back(outcome, f"canary step {weight:.0%}")
        if state != State.MONITORING:
            if state != State.PROMOTED:
                _transition(
                    ws,
                    name,
                    State.PROMOTED,
                    actor,
                    reason,
                    detail={"strategy": strategy, "verdict_id": verdict["id"] if verdict else None},
                )
            _transition(
                ws, name, State.MONITORING, actor, f"monitor window {monitor_s:.0f} s after the switch"
            )
        outcome = watch(
            ws,
            name,
            kind="monitor",
            duration_s=monitor_s,
            bucket_s=1.0,
            rps=rps,
            actor=actor,
            policy=policy,
            validation_rate=rate,
            progress=progress,
            route={
                "strategy": strategy or "blue_green",
                "active_slot": "green",
                "canary_weight": 0.0,
                "mirror": True,
            },
        )
        steps.append({"stage": "monitor", **outcome.summary()})
        if outcome.fired is not None:
            return rolled_back(outcome, "the monitor window")
        if outcome.status == "stopped":
            op.end("stopped")
            return PromoteOutcome(system=name, state=str(State.MONITORING), promoted=False, steps=steps)
        with connect(ws.db_path) as con, transaction(con):
            store.put_route(con, name, strategy=strategy or "blue_green", active_slot="green")
        supervisor.publish_routes(ws, actor)
        warm_s = policy.deploy.warm_window_s if warm_s is None else warm_s
        if warm_s > 0:
            until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=warm_s)
            _transition(
                ws,
                name,
                State.DONE,
                actor,
                f"monitor window clean; blue kept warm until {until:%H:%M:%S} UTC (rollback = a switch)",
                detail={"warm_until": until.isoformat()},
            )
        else:
            slots.stop_slot(ws, name, "blue", "decommissioned after a clean monitor window", actor)
            _transition(ws, name, State.DONE, actor, "monitor window clean; blue decommissioned")
    return PromoteOutcome(system=name, state=str(State.DONE), promoted=True, steps=steps)


DeployOutcome.model_rebuild()
