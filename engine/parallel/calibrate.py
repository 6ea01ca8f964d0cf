"""A/A calibration: the old version mirrored to a copy of itself, to measure the measurement.

Two fresh copies of the old version (from the same backup blue serves) are
started beside whatever runs, and traffic goes through the gateway on a route
of their own (``<system>@aa``: the first copy answers as *old*, the second is
mirrored as *new*), recorded as a run of kind ``calibration`` under the system.
Blue, green and the system's own route are not touched, so a calibration can
run before, between or after parallel runs without changing what they compare
(blue's state included), and without changing the system's state.

The run is judged like any parallel run, under the same policy: between two
identical versions the verdict should be GO and the latency interval should
hold 0; the latency figure (:class:`~engine.judge.calibration.Calibration`) is
recorded with who and when, and the judge takes it out of a real run's latency
change, adding its uncertainty to the interval (:func:`~engine.judge.calibration.correct`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

from pydantic import BaseModel

from engine.deploy import slots, supervisor
from engine.deploy.supervisor import AA_ROUTE, AA_SLOTS
from engine.judge.calibration import MEASURED, Calibration
from engine.judge.policy import Policy
from engine.judge.verdict import Verdict, judge_samples
from engine.parallel.run import watch
from engine.progress import Progress
from engine.store import connect, transaction
from engine.store import deployments as store
from engine.store import systems as systems_store
from engine.store.events import append_events
from engine.store.operations import operation
from engine.store.samples import read_run_samples
from engine.workspace import Workspace

DEFAULT_DURATION_S = 20.0
DEFAULT_RPS = 40.0
BUCKET_S = 1.0
BUSY = ("deploy", "parallel_run", "promote", "rollback", "capacity")
"""Operations a calibration waits for: they start, stop or load the system's processes."""


class CalibrationOutcome(BaseModel):
    system: str
    run_id: str
    status: str
    summary: dict[str, Any]
    calibration: Calibration | None = None
    verdict: Verdict | None = None


def route_key(name: str) -> str:
    """The gateway route of ``name``'s A/A runs."""
    return f"{name}{AA_ROUTE}"


def calibrate_system(
    ws: Workspace,
    name: str,
    *,
    actor: str,
    policy: Policy,
    duration_s: float = DEFAULT_DURATION_S,
    rps: float = DEFAULT_RPS,
    progress: Progress,
) -> CalibrationOutcome:
    """Run an A/A run of ``name`` for ``duration_s`` at ``rps``, judge it and record the calibration."""
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
    busy = {"seen_version": int(row["version"]), "blocked_by": BUSY}
    with operation(ws.db_path, name, "calibrate", actor=actor, **busy) as op:
        try:
            progress(0, int(duration_s), "starting two copies of the old version")
            for role in AA_SLOTS:
                slots.stop_slot(ws, name, role, "replaced by a new calibration", actor)
                started = slots.start_old(
                    ws, name, role, actor, policy.deploy.health_timeout_s, policy.sandbox.service_memory_mb
                )
                # a first few requests to each copy alike, so that neither starts the comparison cold
                problems = slots.smoke_test(int(started["port"]))
                if problems:
                    raise supervisor.DeployError(f"{name}: a copy of the old version fails: {problems[0]}")
            outcome = watch(
                ws,
                name,
                kind="calibration",
                duration_s=duration_s,
                bucket_s=BUCKET_S,
                rps=rps,
                actor=actor,
                policy=policy,
                validation_rate=None,
                route={
                    "strategy": "calibration",
                    "active_slot": "blue",
                    "canary_weight": 0.0,
                    "mirror": True,
                },
                progress=progress,
                route_key=route_key(name),
                roles=tuple(AA_SLOTS),  # type: ignore[arg-type]
                act_on_triggers=False,  # it serves nobody: a noisy tail is what it is here to measure
            )
        except BaseException:
            tear_down(ws, name, actor, "calibration failed")  # the operation is then ended as failed
            raise
        tear_down(ws, name, actor, f"calibration {outcome.status}")
        result = CalibrationOutcome(
            system=name, run_id=outcome.run_id, status=outcome.status, summary=outcome.summary()
        )
        if outcome.status == "completed":
            # the validation criterion is about the new version's blueprint; both sides here are old
            result.verdict = judge_samples(
                read_run_samples(ws, name, outcome.run_id),
                policy,
                validation_success_rate=1.0,
                failed_health_checks=outcome.health_failures,
                bucket_s=BUCKET_S,
            )
            result.calibration = _calibration(name, outcome.run_id, actor, duration_s, rps, result.verdict)
        with connect(ws.db_path) as con, transaction(con):
            op.end(outcome.status, {"run_id": outcome.run_id}, con=con)
            if result.calibration is not None:
                append_events(
                    con,
                    [
                        {
                            "actor": actor,
                            "system": name,
                            "action": MEASURED,
                            "reason": result.calibration.describe(),
                            "after": json.loads(result.calibration.model_dump_json()),
                        }
                    ],
                )
    return result


def settle_calibrate(ws: Workspace, name: str, actor: str) -> str:
    """After a calibration's process died: its two copies of old are stopped (as at its end); what next."""
    tear_down(ws, name, actor, "calibration interrupted (its process died)")
    return f"the A/A copies are stopped; nothing else changed: run calibrate {name} again"


def _calibration(
    name: str, run_id: str, actor: str, duration_s: float, rps: float, verdict: Verdict
) -> Calibration:
    latency = next(c for c in verdict.criteria if c.name == "latency_increase")
    trip = next((c for c in verdict.criteria if c.name == "latency_round_trip_increase"), None)
    return Calibration(
        system=name,
        run_id=run_id,
        measured_at=dt.datetime.now(dt.UTC),
        actor=actor,
        pairs=min(latency.n_old, latency.n_new),
        rps=rps,
        duration_s=duration_s,
        verdict=verdict.verdict,
        latency_change=latency.observed,
        low=latency.ci_low,
        high=latency.ci_high,
        measure=verdict.latency_measure,
        round_trip_change=None if trip is None else trip.observed,
        round_trip_low=None if trip is None else trip.ci_low,
        round_trip_high=None if trip is None else trip.ci_high,
    )


def tear_down(ws: Workspace, name: str, actor: str, reason: str) -> None:
    """Remove the A/A route and stop both copies (also what recovery does after a crash mid-calibration)."""
    with connect(ws.db_path) as con, transaction(con):
        store.delete_route(con, route_key(name))
    with contextlib.suppress(OSError):
        if supervisor.gateway_port(ws) is not None:
            supervisor.publish_routes(ws, actor)
    for role in AA_SLOTS:
        slots.stop_slot(ws, name, role, reason, actor)
