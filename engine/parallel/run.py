"""Watched traffic: drive the gateway, record samples under a run, and check the triggers as it goes.

One loop serves three moments: the parallel run (old active, new mirrored),
each canary step (a share of requests answered by new) and the monitor
window after a switch (new active, old mirrored as the baseline). Every tick
it reports progress, honours a stop request stored on the run (so the page,
the CLI or another process can stop it), health-checks the new version and
evaluates the seed's automatic triggers on the samples so far. A fired
trigger stops the traffic and is returned; the caller rolls back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

import duckdb

from engine.deploy import supervisor
from engine.deploy.gateway import UPSTREAM_TIMEOUT_S
from engine.errors import StoreLockedError
from engine.judge.policy import Policy
from engine.judge.running import RunningTriggers
from engine.judge.verdict import Trigger
from engine.parallel.workload import WorkloadStats, drive, request_mix
from engine.progress import Progress
from engine.store import connect, transaction
from engine.store import deployments as store
from engine.store.aggregates import finish_run, record_file
from engine.store.events import append_events
from engine.store.samples import RunTail
from engine.workspace import Workspace

MIN_TRIGGER_SAMPLES = 50
"""New-version samples needed before sample-based triggers may fire mid-run (one early error is not 5 %)."""

MIN_FINAL_TRIGGER_SAMPLES = 20
"""At the end of a watch, fewer suffice: a 10 % canary step may give green only a few dozen requests,
and a step must not pass because its failures were too few to count mid-run."""

COMPACT_EVERY = 600
"""Segments (one a second) merged into one file while a run goes on: a day-long run ends with
~150 files instead of 86 400, and its final compaction reads those, not the day's segments."""


def new_run_id(kind: str) -> str:
    return f"{kind}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


@dataclass
class WatchOutcome:
    run_id: str
    status: str  # completed | stopped | triggered
    stats: WorkloadStats
    samples: int = 0
    triggers: list[Trigger] = field(default_factory=list)
    fired: Trigger | None = None
    health_failures: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            **self.stats.as_dict(),
            "samples": self.samples,
            "health_failures": self.health_failures,
            "fired": self.fired.model_dump() if self.fired else None,
        }


def _stop_recording(ws: Workspace, system: str, route: dict[str, Any], actor: str, ports: list[int]) -> None:
    """End the run's routing (no mirror, no recording) and wait until its last samples are on disk.

    A mirrored request still in flight (to a hung or slow version: up to the
    gateway's :data:`UPSTREAM_TIMEOUT_S`) is recorded under the run when it
    ends. Counting before that would leave samples landing in the run after
    its count was stored, so the gateway is drained first, then flushed.
    """
    with connect(ws.db_path) as con, transaction(con):
        store.put_route(con, system, **(route | {"mirror": False}), record_run=None)
    supervisor.publish_routes(ws, actor)
    for port in ports:
        supervisor.wait_drained(ws, port, timeout_s=UPSTREAM_TIMEOUT_S + 2)
    supervisor.flush_samples(ws)


def _workload(system: str, process: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The request mix, from the entry endpoints the running version lists (DeployError if it lists none)."""
    try:
        endpoints = supervisor.get_json(int(process["port"]), "/endpoints")["endpoints"]
        return request_mix(endpoints)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise supervisor.DeployError(
            f"{system}: cannot build the workload from {process['role']}'s /endpoints: {exc}"
        ) from exc


def watch(
    ws: Workspace,
    system: str,
    *,
    kind: str,
    duration_s: float,
    bucket_s: float,
    rps: float,
    actor: str,
    policy: Policy,
    validation_rate: float | None,
    route: dict[str, Any],
    progress: Progress,
    run_id: str | None = None,
    route_key: str | None = None,
    roles: tuple[str, str] = ("blue", "green"),
    act_on_triggers: bool = True,
    continues: str | None = None,
) -> WatchOutcome:
    """Route as ``route`` says with this run recording, drive traffic, and watch; see the module doc.

    ``route_key`` is the gateway route the traffic goes through (default: the
    system's own; an A/A run has one of its own) and ``roles`` the processes that
    stand for old and new in it: new is health-checked, both are drained at the end.
    ``act_on_triggers=False`` (an A/A run, which serves nobody) evaluates the
    triggers for the record but never stops the traffic on one.
    """
    if duration_s <= 0 or bucket_s <= 0 or rps <= 0:
        raise ValueError("duration, bucket and rate must be positive")
    run_id = run_id or new_run_id(kind)
    key = route_key or system
    with connect(ws.db_path) as con, transaction(con):
        store.create_run(
            con,
            run_id,
            system,
            kind,
            actor,
            duration_s=duration_s,
            bucket_s=bucket_s,
            rps=rps,
            continues=continues,
        )
        store.put_route(con, key, **route, record_run=run_id)
        blue = store.live_slot(con, system, roles[0])
        green = store.live_slot(con, system, roles[1])
    ports = [int(p["port"]) for p in (blue, green) if p is not None]
    state: dict[str, Any] = {"fired": None, "triggers": [], "stopped": False, "health": 0}

    tail = RunTail(ws, system, run_id)  # each tick reads only the segments written since the last
    totals = RunningTriggers()  # ... and keeps counters and sketches of them, not the rows

    def on_tick(elapsed: float, stats: WorkloadStats) -> bool:
        progress(
            min(int(elapsed), int(duration_s)),
            int(duration_s),
            f"{elapsed:.0f}/{duration_s:.0f} s · sent {stats.sent} · ok {stats.ok} · "
            f"failed {stats.failed} · lost {stats.lost}",
        )
        with connect(ws.db_path) as con:
            run = store.get_run(con, run_id)
        if run is not None and run["stop_requested"]:
            state["stopped"] = True
            return False
        if green is not None and not supervisor.healthy(int(green["port"])):
            with connect(ws.db_path) as con:
                state["health"] = store.add_health_failure(con, int(green["id"]))
        supervisor.flush_samples(ws)
        totals.add(tail.read_new())
        with contextlib.suppress(OSError, duckdb.Error, StoreLockedError):  # best effort: segments stay valid
            done = tail.compact_read(COMPACT_EVERY)
            if done is not None and done.published is not None:  # its aggregates: pages read those
                record_file(ws, system, run_id, done.published, bucket_s)
        return not check_triggers(MIN_TRIGGER_SAMPLES)

    # a canary step splits traffic (mirror off, weight between 0 and 1); a parallel run mirrors it all
    split = None if route.get("mirror") else float(route.get("canary_weight") or 0) or None

    def check_triggers(min_new: int) -> bool:
        """The seed's triggers, once enough new samples (or health failures) exist; True if one fired.

        Each call is one check of the latency and throughput triggers' breach streaks (policy
        ``[triggers] breach_checks``: :class:`RunningTriggers`), the last partial tick's too.
        """
        if totals.new.requests < min_new and state["health"] <= policy.triggers.max_failed_health_checks:
            return False
        triggers = totals.evaluate(policy, validation_rate, state["health"], new_share=split)
        state["triggers"] = triggers
        state["fired"] = next((t for t in triggers if t.fired), None) if act_on_triggers else None
        return state["fired"] is not None

    try:
        supervisor.publish_routes(ws, actor)
        gateway = supervisor.gateway_port(ws)
        assert gateway is not None
        endpoints_from = blue or green
        if endpoints_from is None:
            raise supervisor.DeployError(f"{system}: neither version is running")
        mix = _workload(system, endpoints_from)
        stats = asyncio.run(
            drive(
                gateway,
                f"/s/{key}/call",
                mix,
                rps=rps,
                duration_s=duration_s,
                tick_s=bucket_s,
                on_tick=on_tick,
            )
        )
    except BaseException:
        # the route must not go on mirroring into a run that is over; the caller records the failure
        with contextlib.suppress(Exception):
            _stop_recording(ws, key, route, actor, ports)
        raise
    _stop_recording(ws, key, route, actor, ports)
    totals.add(tail.read_new())
    if not state["fired"] and not state["stopped"]:
        check_triggers(MIN_FINAL_TRIGGER_SAMPLES)  # the last partial tick and small steps
    status = "triggered" if state["fired"] else "stopped" if state["stopped"] else "completed"
    outcome = WatchOutcome(
        run_id=run_id,
        status=status,
        stats=stats,
        samples=totals.rows,
        triggers=state["triggers"],
        fired=state["fired"],
        health_failures=state["health"],
    )
    with connect(ws.db_path) as con, transaction(con):
        store.finish_run(
            con,
            run_id,
            status,
            sent=stats.sent,
            lost=stats.lost,
            samples=totals.rows,
            outcome=outcome.summary(),
        )
        append_events(
            con,
            [
                {
                    "actor": actor,
                    "system": system,
                    "action": f"run:{kind}:{status}",
                    "reason": outcome.fired.explanation if outcome.fired else f"{kind} run {status}",
                    "after": outcome.summary(),
                }
            ],
        )
    _compact(ws, system, run_id, bucket_s)
    progress(
        int(duration_s),
        int(duration_s),
        f"{kind} run {status}: {stats.sent} requests, {totals.rows} samples",
    )
    return outcome


def _compact(ws: Workspace, system: str, run_id: str, bucket_s: float) -> None:
    """Merge the finished run's one-second segments into one file and store its aggregates.

    The judge reads the one file fast; the pages and KPIs read only its
    aggregates (engine/store/aggregates.py). Best effort: the segments are
    valid as they are, so a failure (disk full, the store busy) leaves them,
    and the run is still read whole, only more slowly.
    """
    with contextlib.suppress(OSError, duckdb.Error, StoreLockedError):
        finish_run(ws, system, run_id, bucket_s)
