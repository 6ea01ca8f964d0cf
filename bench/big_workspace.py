"""A workspace holding 10 M parallel-run samples and the eight days of migration that produced them.

Run: python -m bench.big_workspace [--samples N] [--segment-s S] [--rebuild] [--data-dir DIR] [--any-day]
(prints the folder)

What the page bench (:mod:`bench.page_speed_10m`) draws from. The fleet is the
bundled sample fleet, converted and validated by the real services; then
eight days of a migration are played, the way the engine records them:

* the pre-migration checklist and the judge are the real services
  (``services.checklist``, ``services.judge_system``: the verdicts are the
  real judge's, over the samples below);
* deploy, run, promote and rollback cannot start processes here, so their
  store writes are made with the same store functions those use cases call
  (``transition_within``, ``create_run``/``finish_run``, the run event,
  ``document_failure``); the triggers that roll back are the real
  :class:`engine.judge.running.RunningTriggers` fed the run's samples chunk
  by chunk, as the run's watcher feeds them;
* samples are written straight as Parquet segments in the gateway's layout
  and schema (``samples/system=<s>/run=<id>/part-<pid>-<seq>.parquet``,
  :data:`engine.deploy.gateway.SAMPLE_COLUMNS`, its ``write_segment``), in
  bulk with numpy and polars: one row per request per version, mirrored
  pairs with the same ``request_id``, diurnal latency, a few mismatches whose
  bodies are kept (the first 20 of a run, as the gateway does);
* each run ends as the engine ends it (:func:`engine.store.aggregates.finish_run`,
  what ``engine.parallel.run.watch`` calls): its segments compacted into one
  file and that file's aggregates stored, which is what the pages then read.

The history happens in the past: the store modules' clock is set to each
simulated moment while it is written (:class:`SimulatedClock`). The story:
pilot and expansion systems done day by day, one NO_GO rolled back by a lead,
one automatic rollback on the error-rate trigger, one failed monitor window
left in emergency (yesterday), a 24 h parallel run of ``hello_world_api`` (the
Go / No-Go page's default system, about a third of all samples) judged GO and
awaiting promotion, and checklist blockers on the next systems.

One segment per ``--segment-s`` seconds of a run (default 60). The gateway
itself flushes every second, so a 24 h run it recorded would be 86 400 files:
re-cut that way, the Go / No-Go evidence of the 24 h run took 236 s instead of
4.5 s (see :mod:`bench.page_speed_10m`). The result is cached under
``--data-dir`` (default /tmp/switchyard-bench, or $SWITCHYARD_BENCH_DATA),
keyed by :data:`VERSION`, the sample count, the segment size and the day (the
history ends "now"; ``--any-day`` takes the newest build of an earlier day, as
the 100 M one takes half an hour: 1,708 s here, 28.5 min at load ~12 on 2
shared cores, 11.8 GB at most in memory; 10 M: 161 s). A build is resumable:
after each step of the story a checkpoint is written beside the workspace (the
steps done, the sample generator's state, the workspace without its samples),
and a build that stopped goes on from its last step done (the samples of the
step under way are removed first); ``--rebuild`` starts over.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import polars as pl

from engine import services
from engine.deploy.gateway import MISMATCH_EXAMPLES, SAMPLE_COLUMNS, write_segment
from engine.deploy.strategies import validation_rate
from engine.judge.policy import load_policy
from engine.judge.running import RunningTriggers
from engine.models.blueprint_v1 import load_v1_blueprint
from engine.rollback.manager import document_failure
from engine.runtime.legacy import LegacySystem
from engine.state import State
from engine.store import connect, transaction
from engine.store import deployments as store
from engine.store import systems as systems_store
from engine.store.aggregates import finish_run
from engine.store.events import append_events
from engine.workspace import Workspace

VERSION = 3
"""Bump when the generated history or samples change, so cached workspaces are rebuilt."""
CACHE_DIR = Path(os.environ.get("SWITCHYARD_BENCH_DATA", "/tmp/switchyard-bench"))
SAMPLES = 10_000_000
SEGMENT_S = 60
LEADS = ("ann", "bob", "cat")
CLOCK_MODULES = (
    "engine.store.systems",
    "engine.store.events",
    "engine.store.deployments",
    "engine.store.validations",
    "engine.store.conversions",
    "engine.judge.verdict",
    "engine.rollback.backups",
    "engine.rollback.manager",
)
"""Modules whose ``dt.datetime.now()`` / ``dt.date.today()`` stamp what the store records."""


# --------------------------------------------------------------------------- the clock


class SimulatedClock:
    """Sets the store modules' clock (their ``dt``) to :attr:`moment` while a history is written.

    Each module in :data:`CLOCK_MODULES` sees a copy of the ``datetime``
    module whose ``datetime.now()`` and ``date.today()`` read the simulated
    moment; ``isinstance`` checks still accept ordinary datetimes.
    """

    def __init__(self, moment: dt.datetime):
        self.moment = moment

    def at(self, moment: dt.datetime) -> None:
        self.moment = moment

    @contextlib.contextmanager
    def installed(self) -> Iterator[SimulatedClock]:
        clock = self

        class _Meta(type):
            def __instancecheck__(cls, obj: object) -> bool:
                return isinstance(obj, cls.__mro__[1])

        class Datetime(dt.datetime, metaclass=_Meta):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
                return clock.moment.astimezone(tz) if tz else clock.moment.astimezone().replace(tzinfo=None)

        class Date(dt.date, metaclass=_Meta):
            @classmethod
            def today(cls) -> dt.date:  # type: ignore[override]
                return clock.moment.date()

        shim = types.SimpleNamespace(**{k: getattr(dt, k) for k in dir(dt) if not k.startswith("__")})
        shim.datetime, shim.date = Datetime, Date
        with contextlib.ExitStack() as stack:
            for module in CLOCK_MODULES:
                stack.enter_context(mock.patch(f"{module}.dt", shim))
            yield self


# --------------------------------------------------------------------------- samples


@dataclasses.dataclass(frozen=True)
class Traffic:
    """How one run's traffic behaves; latencies and error rates of new relative to old."""

    requests: int
    seconds: float
    new_latency: float = 0.9
    new_error_rate: float = 0.001
    mismatch_rate: float = 0.002
    primary: str = "old"  # old answers in a parallel run; new during a monitor window
    outage: tuple[float, float] | None = None  # seconds in which the primary fails every request
    planned_s: float | None = None  # the run's planned duration, when a trigger stopped it early


class SampleWriter:
    """Writes runs' samples as gateway segments; request ids run on across runs, as the gateway's do."""

    def __init__(self, ws: Workspace, segment_s: float, seed: int = 7):
        self.ws = ws
        self.segment_us = int(segment_s * 1e6)
        self.rng = np.random.default_rng(seed)
        self.next_request_id = 1
        self.next_seq = 0
        self.written = 0

    def state(self) -> dict[str, Any]:
        """What :meth:`restore` needs to go on exactly where this writer is (a resumed build)."""
        return {
            "rng": self.rng.bit_generator.state,
            "next_request_id": self.next_request_id,
            "next_seq": self.next_seq,
            "written": self.written,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.next_request_id = state["next_request_id"]
        self.next_seq = state["next_seq"]
        self.written = state["written"]

    def write(
        self,
        system: str,
        run_id: str,
        start: dt.datetime,
        traffic: Traffic,
        endpoints: list[str],
        watch: RunningTriggers | None = None,
    ) -> int:
        """All samples of one run; returns the rows written. Built in chunks of at most 1 M requests,
        each counted by ``watch`` as the run's watcher counts what it reads."""
        folder = self.ws.samples_dir / f"system={system}" / f"run={run_id}"
        folder.mkdir(parents=True, exist_ok=True)
        offsets = np.sort(self.rng.integers(0, int(traffic.seconds * 1e6), traffic.requests))
        kept = 0
        rows = 0
        for chunk in np.array_split(offsets, max(1, traffic.requests // 1_000_000 + 1)):
            frame, kept = self._pairs(run_id, start, chunk, traffic, endpoints, kept)
            for part in frame.partition_by("segment", maintain_order=True, include_key=False):
                write_segment(part, folder / f"part-{os.getpid()}-{self.next_seq:06d}.parquet")
                self.next_seq += 1
            if watch is not None:
                watch.add(frame)
            rows += frame.height
        self.written += rows
        return rows

    def _pairs(
        self,
        run_id: str,
        start: dt.datetime,
        offsets: np.ndarray,
        traffic: Traffic,
        endpoints: list[str],
        kept: int,
    ) -> tuple[pl.DataFrame, int]:
        rng, n = self.rng, len(offsets)
        k = len(endpoints)
        weights = 1 / np.arange(1, k + 1)
        endpoint = rng.choice(k, n, p=weights / weights.sum())
        base_ms = 6.0 + 5.0 * np.arange(k)  # each endpoint its own typical latency
        seconds = offsets / 1e6
        day = 1 + 0.25 * np.sin(2 * np.pi * ((start.hour * 3600 + seconds) / 86400 - 0.3))  # busy afternoons
        old_ms = base_ms[endpoint] * day * rng.lognormal(0, 0.35, n)
        new_ms = base_ms[endpoint] * day * traffic.new_latency * rng.lognormal(0, 0.35, n)
        old_ok = rng.random(n) >= 0.001
        new_ok = rng.random(n) >= traffic.new_error_rate
        if traffic.outage is not None:
            down = (seconds >= traffic.outage[0]) & (seconds < traffic.outage[1])
            if traffic.primary == "new":
                new_ok &= ~down
            else:
                old_ok &= ~down
        # a response is one of a few hundred per endpoint; errors have their own; a mismatch is a new answer
        content = endpoint * 1000 + rng.integers(0, 400, n)
        old_code = np.where(old_ok, content, -1 - endpoint)
        differs = rng.random(n) < traffic.mismatch_rate
        new_code = np.where(new_ok, np.where(differs, content + 500, content), -1 - endpoint)
        match = new_code == old_code
        examples = np.flatnonzero(~match)[: max(MISMATCH_EXAMPLES - kept, 0)]
        kept += len(examples)
        bodies = []
        for shift in (0, 1):  # old's body, then new's: an item more
            texts = [
                json.dumps(
                    {"endpoint": endpoints[endpoint[i]], "result": {"items": int(content[i] % 7) + shift}}
                )
                for i in examples
            ]
            bodies.append(pl.repeat(None, n, dtype=pl.String, eager=True).scatter(examples, texts))
        first = self.next_request_id
        ids = np.arange(first, first + n)
        self.next_request_id = first + n
        ts = np.datetime64(start.replace(tzinfo=None), "us") + offsets.astype("timedelta64[us]")
        common = {
            "ts": pl.Series(ts).dt.replace_time_zone("UTC"),
            "run_id": pl.repeat(run_id, n, eager=True),
            "request_id": ids,
            "endpoint": pl.Series(endpoints).gather(endpoint),
            "segment": offsets // self.segment_us,
        }
        sides = []
        for version, slot, ok, ms, code, body in (
            ("old", "blue", old_ok, old_ms, old_code, bodies[0]),
            ("new", "green", new_ok, new_ms, new_code, bodies[1]),
        ):
            sides.append(
                pl.DataFrame(
                    {
                        **common,
                        "version": pl.repeat(version, n, eager=True),
                        "slot": pl.repeat(slot, n, eager=True),
                        "primary": pl.repeat(version == traffic.primary, n, eager=True),
                        "status": np.where(ok, 200, 500).astype(np.int32),
                        "ok": ok,
                        "latency_ms": ms,
                        "digest": _digests(code),
                        "match": match
                        if version == "new"
                        else pl.repeat(None, n, dtype=pl.Boolean, eager=True),
                        "body": body,
                        "called_first": pl.repeat(version == "old", n, eager=True),
                        "service_ms": pl.repeat(None, n, dtype=pl.Float64, eager=True),
                        "cpu_wait_ms": pl.repeat(None, n, dtype=pl.Float64, eager=True),
                    }
                )
            )
        frame = pl.concat(sides).sort("ts", "request_id", maintain_order=True)
        return frame.select(*SAMPLE_COLUMNS, "segment").cast(SAMPLE_COLUMNS), kept  # type: ignore[arg-type]


def _digests(codes: np.ndarray) -> pl.Series:
    """The gateway's 16-hex-digit response digests, one per distinct response code (computed once each)."""
    unique, inverse = np.unique(codes, return_inverse=True)
    pool = pl.Series([hashlib.blake2b(str(c).encode(), digest_size=8).hexdigest() for c in unique.tolist()])
    return pool.gather(inverse)


# --------------------------------------------------------------------------- the history


class History:
    """Plays the migration through the services and store functions, at simulated moments."""

    def __init__(
        self,
        ws: Workspace,
        clock: SimulatedClock,
        writer: SampleWriter,
        start: dt.datetime,
        scale: float,
        finish: bool = True,
    ):
        self.ws, self.clock, self.writer, self.start, self.scale = ws, clock, writer, start, scale
        self.finish = finish
        self.policy = load_policy()
        self.endpoint_cache: dict[str, list[str]] = {}
        self.next_run = 1

    def at(self, day: int, hour: int, minute: int = 0) -> dt.datetime:
        return self.start + dt.timedelta(days=day, hours=hour, minutes=minute)

    def req(self, requests: int) -> int:
        """``requests`` scaled to the workspace's sample count (the plan below is for 10 M)."""
        return max(int(requests * self.scale), 1_000)

    def endpoints(self, name: str) -> list[str]:
        if name not in self.endpoint_cache:
            with connect(self.ws.db_path) as con:
                source = Path(systems_store.get_system(con, name)["source_path"])
            legacy = LegacySystem.load(source, load_v1_blueprint(source / "blueprint.yaml"))
            self.endpoint_cache[name] = sorted(legacy.endpoints()) or ["call"]
        return self.endpoint_cache[name]

    def _move(self, name: str, target: State, actor: str, reason: str, **detail: Any) -> None:
        with connect(self.ws.db_path) as con, transaction(con):
            systems_store.transition_within(con, name, target, actor=actor, reason=reason, detail=detail)

    # -- the steps of a journey, each at its moment

    def checklist(self, name: str, when: dt.datetime, actor: str, *, ack: bool = True) -> None:
        self.clock.at(when)
        note = "told the owning team in the standup" if ack else None
        services.checklist(self.ws, name, actor=actor, ack="team_notified" if ack else None, note=note)

    def deploy(self, name: str, when: dt.datetime, actor: str, strategy: str = "blue_green") -> None:
        self.clock.at(when)
        with connect(self.ws.db_path) as con, transaction(con):
            op = store.start_operation(con, name, "deploy", actor, {"strategy": strategy})
            store.put_route(con, name, strategy=strategy, active_slot="blue")
            store.end_operation(con, op, "completed")
        self._move(name, State.GREEN_DEPLOYED, actor, "deploy from the Go/No-Go page", strategy=strategy)

    def run(
        self, name: str, kind: str, when: dt.datetime, actor: str, traffic: Traffic, *, bucket_s: float = 60.0
    ) -> tuple[str, Any]:
        """One watched run: its row, its samples, the triggers on them, its end; returns (run id, fired)."""
        self.clock.at(when)
        run_id = f"{kind}-{when:%Y%m%dT%H%M%S}-{self.next_run:06x}"
        self.next_run += 1
        planned = traffic.planned_s or traffic.seconds
        rps = traffic.requests / traffic.seconds
        with connect(self.ws.db_path) as con, transaction(con):
            store.create_run(
                con, run_id, name, kind, actor, duration_s=planned, bucket_s=bucket_s, rps=round(rps, 2)
            )
            if kind == "parallel":
                systems_store.transition_within(
                    con,
                    name,
                    State.PARALLEL_RUN,
                    actor=actor,
                    reason=f"parallel run {planned:.0f} s at {rps:.0f} req/s",
                    detail={"run_id": run_id, "duration_s": planned, "bucket_s": bucket_s, "rps": rps},
                )
        watch = RunningTriggers()  # the watcher's counters, fed chunk by chunk: no whole run in memory
        rows = self.writer.write(name, run_id, when, traffic, self.endpoints(name), watch)
        triggers = watch.evaluate(self.policy, validation_rate(self.ws, name), 0, new_share=None)
        fired = next((t for t in triggers if t.fired), None)
        status = "triggered" if fired else "completed"
        self.clock.at(when + dt.timedelta(seconds=traffic.seconds))
        side = watch.old if traffic.primary == "old" else watch.new
        ok = side.requests - side.errors
        summary = {
            "run_id": run_id,
            "status": status,
            "sent": traffic.requests,
            "ok": ok,
            "failed": traffic.requests - ok,
            "lost": 0,
            "samples": rows,
            "health_failures": 0,
            "fired": fired.model_dump() if fired else None,
        }
        with connect(self.ws.db_path) as con, transaction(con):
            store.finish_run(
                con, run_id, status, sent=traffic.requests, lost=0, samples=rows, outcome=summary
            )
            append_events(
                con,
                [
                    {
                        "actor": actor,
                        "system": name,
                        "action": f"run:{kind}:{status}",
                        "reason": fired.explanation if fired else f"{kind} run {status}",
                        "after": summary,
                    }
                ],
            )
        if self.finish:  # what the engine does when a run ends: one file, its aggregates stored
            finish_run(self.ws, name, run_id, bucket_s)
        return run_id, fired

    def judge(self, name: str, when: dt.datetime, actor: str) -> str:
        self.clock.at(when)
        return services.judge_system(self.ws, name, actor=actor).verdict

    def rollback(
        self,
        name: str,
        when: dt.datetime,
        actor: str,
        reason: str,
        trigger: Any = None,
        *,
        verified: bool = True,
    ) -> None:
        """What rollback_system records; not ``verified`` (blue did not come back): emergency."""
        self.clock.at(when)
        problems = [] if verified else ["blue did not answer /health within 20 s after the restore"]
        doc = document_failure(
            self.ws,
            name,
            reason,
            actor,
            trigger.model_dump() if trigger else None,
            {"verified": verified, "verification_problems": problems},
        )
        target = State.ROLLED_BACK if verified else State.EMERGENCY
        with connect(self.ws.db_path) as con, transaction(con):
            store.put_route(con, name, strategy="blue_green", active_slot="blue")
            systems_store.transition_within(
                con,
                name,
                target,
                actor=actor,
                reason=reason,
                detail={
                    "failure_document": str(doc.relative_to(self.ws.root)),
                    "trigger": trigger.model_dump() if trigger else None,
                    "problems": problems,
                },
            )
            if not verified:
                append_events(
                    con,
                    [
                        {
                            "actor": actor,
                            "system": name,
                            "action": "emergency",
                            "reason": "rollback could not verify the old version: " + "; ".join(problems),
                        }
                    ],
                )

    def promote(
        self, name: str, when: dt.datetime, actor: str, monitor: Traffic, *, restore_fails: bool = False
    ) -> None:
        """Promote on GO, watch the monitor window (new answers, old mirrored), then done or roll back."""
        self.clock.at(when)
        with connect(self.ws.db_path) as con:
            verdict = store.latest_verdict(con, name)
        self._move(
            name, State.PROMOTED, actor, "GO verdict, reviewed", verdict_id=verdict["id"] if verdict else None
        )
        when += dt.timedelta(seconds=1)
        self.clock.at(when)
        planned = monitor.planned_s or monitor.seconds
        self._move(name, State.MONITORING, actor, f"monitor window {planned:.0f} s after the switch")
        _, fired = self.run(name, "monitor", when, actor, monitor, bucket_s=1.0)
        end = when + dt.timedelta(seconds=monitor.seconds, milliseconds=500)
        if fired is not None:
            reason = f"automatic rollback during the monitor window: {fired.explanation}"
            self.rollback(name, end, f"trigger:{fired.name}", reason, fired, verified=not restore_fails)
        else:
            self.clock.at(end)
            self._move(name, State.DONE, actor, "monitor window clean; blue decommissioned")

    # -- journeys

    def migrate(self, name: str, day: int, hour: int, actor: str, requests: int, **traffic: Any) -> None:
        """Checklist, deploy, a 1 h parallel run, judge; promote on GO (monitor window) else roll back."""
        self.checklist(name, self.at(day, hour), actor)
        self.deploy(name, self.at(day, hour, 20), actor)
        plan = Traffic(requests, **{"seconds": 3600.0, **traffic})
        _, fired = self.run(name, "parallel", self.at(day, hour, 30), actor, plan)
        if fired is not None:
            reason = f"automatic rollback during the parallel run: {fired.explanation}"
            end = self.at(day, hour, 30) + dt.timedelta(seconds=plan.seconds + 1)
            self.rollback(name, end, f"trigger:{fired.name}", reason, fired)
            return
        verdict = self.judge(name, self.at(day, hour + 1, 35), actor)
        if verdict == "GO":
            self.promote(name, self.at(day, hour + 2), actor, Traffic(self.req(15_000), 300.0, primary="new"))
        else:
            self.rollback(name, self.at(day, hour + 2), actor, f"NO_GO verdict: {verdict} on the 1 h run")


Step = tuple[str, Callable[[], Any]]


def story(h: History, samples: int) -> list[Step]:
    """The history after the workspace is made, step by step (a resumed build skips the steps done)."""
    req = h.req
    ann, bob, cat = LEADS
    clock, ws = h.clock, h.ws

    def big_run() -> None:  # what is left, less the next run: sized when it runs, from what was written
        big = max((samples - h.writer.written) // 2 - req(216_000), 1_000)
        h.run("hello_world_api", "parallel", h.at(5, 10), bob, Traffic(big, 86_400.0))

    def reconvert() -> None:
        clock.at(h.at(4, 15))
        services.convert_systems(ws, ["hello_world_api"], actor=bob)
        services.validate_systems_v2(ws, ["hello_world_api"], actor=bob)

    def kanban_promote() -> None:
        outage = Traffic(req(7_500), 150.0, primary="new", outage=(120, 150), planned_s=300.0)
        h.promote("todo_kanban_board", h.at(7, 5), cat, outage, restore_fails=True)

    def unacknowledged() -> None:
        for name in ("todo_voice_assistant", "todo_shared_lists", "todo_priority_queue"):
            h.checklist(name, h.at(7, 12), ann, ack=False)  # team not told yet: a checklist blocker

    # the systems that deploy are among the 15 the gate passes (README: 15/52); the unacknowledged
    # checklists at the end are on systems it blocks
    return [
        ("todo_api_system", lambda: h.migrate("todo_api_system", 0, 9, ann, req(432_000))),
        # hello_world_api, first attempt: new is 35 % slower, NO_GO, rolled back by a lead
        ("hello_world_api", lambda: h.migrate("hello_world_api", 1, 9, bob, req(288_000), new_latency=1.35)),
        ("simple_rest_api", lambda: h.migrate("simple_rest_api", 1, 13, cat, req(252_000))),
        # an automatic rollback: green fails 9 % of requests, the error-rate trigger fires
        (
            "file_upload_api",
            lambda: h.migrate(
                "file_upload_api", 2, 9, ann, req(5_400), seconds=90.0, planned_s=3600.0, new_error_rate=0.09
            ),
        ),
        ("order_tracking_api", lambda: h.migrate("order_tracking_api", 2, 14, bob, req(180_000))),
        ("todo_reminder_service", lambda: h.migrate("todo_reminder_service", 3, 10, cat, req(216_000))),
        (
            "data_processing_geo_enricher",
            lambda: h.migrate("data_processing_geo_enricher", 4, 9, ann, req(252_000), new_latency=0.8),
        ),
        (
            "data_processing_metrics_rollup",
            lambda: h.migrate("data_processing_metrics_rollup", 4, 14, bob, req(216_000)),
        ),
        ("todo_archive_service", lambda: h.migrate("todo_archive_service", 5, 11, cat, req(180_000))),
        ("todo_tagging_api", lambda: h.migrate("todo_tagging_api", 6, 10, ann, req(216_000))),
        ("todo_mobile_backend", lambda: h.migrate("todo_mobile_backend", 7, 2, bob, req(252_000))),
        # yesterday: a promotion whose monitor window saw green fail every request for 30 s; blue then
        # did not come back: emergency, a blocker on the standup
        ("todo_kanban_board checklist", lambda: h.checklist("todo_kanban_board", h.at(7, 3), cat)),
        ("todo_kanban_board deploy", lambda: h.deploy("todo_kanban_board", h.at(7, 3, 20), cat)),
        (
            "todo_kanban_board run",
            lambda: h.run("todo_kanban_board", "parallel", h.at(7, 3, 30), cat, Traffic(req(216_000), 3600)),
        ),
        ("todo_kanban_board judge", lambda: h.judge("todo_kanban_board", h.at(7, 4, 35), cat)),
        ("todo_kanban_board promote", kanban_promote),
        # hello_world_api again: re-converted, validated, a 24 h run at the policy's 60 s buckets, judged GO
        ("hello_world_api reconvert", reconvert),
        ("hello_world_api checklist", lambda: h.checklist("hello_world_api", h.at(5, 9), bob)),
        ("hello_world_api deploy", lambda: h.deploy("hello_world_api", h.at(5, 9, 30), bob)),
        ("hello_world_api 24 h run", big_run),
        ("hello_world_api judge", lambda: h.judge("hello_world_api", h.at(6, 10, 5), bob)),
        # today's work: one judged GO waiting for promotion, one deployed, one ready, checklists missing items
        (
            "experimental_feature_flags checklist",
            lambda: h.checklist("experimental_feature_flags", h.at(7, 8), ann),
        ),
        (
            "experimental_feature_flags deploy",
            lambda: h.deploy("experimental_feature_flags", h.at(7, 8, 20), ann),
        ),
        (
            "experimental_feature_flags run",
            lambda: h.run(
                "experimental_feature_flags", "parallel", h.at(7, 8, 30), ann, Traffic(req(216_000), 3600)
            ),
        ),
        (
            "experimental_feature_flags judge",
            lambda: h.judge("experimental_feature_flags", h.at(7, 9, 35), ann),
        ),
        ("todo_team_board checklist", lambda: h.checklist("todo_team_board", h.at(7, 10), cat)),
        ("todo_team_board deploy", lambda: h.deploy("todo_team_board", h.at(7, 10, 30), cat)),
        ("auth_token_api checklist", lambda: h.checklist("auth_token_api", h.at(7, 11), bob)),
        ("unacknowledged checklists", unacknowledged),
    ]


CHECKPOINT = "checkpoint"
"""Beside the workspace: after each step of :func:`story`, the steps done, the sample writer's state
and a copy of everything in the workspace but its samples (a few MB), so a build that stops (a reboot,
Ctrl-C, out of memory) goes on from the last step done instead of from scratch."""


def save_checkpoint(root: Path, h: History, start: dt.datetime, done: int) -> None:
    """Written beside, then renamed into place: a checkpoint is whole or absent."""
    folder = root.parent / CHECKPOINT
    temp = root.parent / f"{CHECKPOINT}.tmp"
    shutil.rmtree(temp, ignore_errors=True)
    shutil.copytree(root, temp / "ws", ignore=lambda d, names: ["samples"] if Path(d) == root else [])
    runs = sorted(str(p.relative_to(root)) for p in root.glob("samples/system=*/run=*"))
    state = {"done": done, "start": start.isoformat(), "next_run": h.next_run, "writer": h.writer.state()}
    (temp / "state.json").write_text(json.dumps({**state, "sample_runs": runs}))
    shutil.rmtree(folder, ignore_errors=True)
    temp.rename(folder)


def restore_checkpoint(root: Path) -> dict[str, Any] | None:
    """The workspace put back as the checkpoint saw it (samples of a step under way removed); its state."""
    folder = root.parent / CHECKPOINT
    if not (folder / "state.json").is_file() or not root.is_dir():
        return None
    state = json.loads((folder / "state.json").read_text())
    for entry in root.iterdir():
        if entry.name != "samples":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    kept = set(state["sample_runs"])
    for run in root.glob("samples/system=*/run=*"):
        if str(run.relative_to(root)) not in kept:
            shutil.rmtree(run)
    for entry in (folder / "ws").iterdir():
        target = root / entry.name
        shutil.copytree(entry, target, symlinks=True) if entry.is_dir() else shutil.copy2(entry, target)
    return state


def build(
    root: Path, samples: int = SAMPLES, segment_s: float = SEGMENT_S, *, resume: bool = False
) -> Workspace:
    """Create the workspace at ``root`` (which must not exist) holding ``samples`` samples; with
    ``resume``, go on from the checkpoint beside an unfinished ``root`` (see :data:`CHECKPOINT`)."""
    from bench.page_speed import prepare

    state = restore_checkpoint(root) if resume else None
    if state is None:
        now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        start = now - dt.timedelta(days=8)  # day 0 of the plan; day 7 is the last 24 h
    else:
        start = dt.datetime.fromisoformat(state["start"])
        now = start + dt.timedelta(days=8)
        print(f"resuming {root} after step {state['done']} of the story", flush=True)
    clock = SimulatedClock(start - dt.timedelta(hours=15))
    with clock.installed():
        if state is None:
            if root.exists():
                shutil.rmtree(root)
            ws = prepare(root, operators=["bench", services.default_actor(), *LEADS])
            with connect(
                ws.db_path
            ) as con:  # the import stamps imported_at with DuckDB's now(), no Python clock
                con.execute(
                    "UPDATE systems SET imported_at = ?, updated_at = ?", [clock.moment, clock.moment]
                )
            clock.at(start + dt.timedelta(hours=8))
            services.set_plan_start(ws, start.date(), actor="ann", reason="pilot starts today")
        else:
            ws = Workspace(root)
        h = History(ws, clock, SampleWriter(ws, segment_s), start, samples / SAMPLES)
        done = 0
        if state is not None:
            h.writer.restore(state["writer"])
            h.next_run, done = state["next_run"], state["done"]
        else:
            save_checkpoint(root, h, start, 0)
        steps = story(h, samples)
        for number, (label, step) in enumerate(steps[done:], start=done + 1):
            began = time.perf_counter()
            step()
            save_checkpoint(root, h, start, number)
            print(
                f"  step {number}/{len(steps)} {label}: {time.perf_counter() - began:.1f} s, "
                f"{h.writer.written:,} samples so far",
                flush=True,
            )
    (root / "complete").write_text(json.dumps({"samples": h.writer.written, "built": now.isoformat()}))
    shutil.rmtree(root.parent / CHECKPOINT, ignore_errors=True)
    return ws


def cached(
    samples: int = SAMPLES,
    segment_s: float = SEGMENT_S,
    *,
    rebuild: bool = False,
    data_dir: Path = CACHE_DIR,
    any_day: bool = False,
) -> tuple[Workspace, bool]:
    """The cached workspace for today, built if missing or incomplete; (workspace, True if just built).

    An incomplete build with a checkpoint is resumed from its last step (``rebuild`` starts over);
    ``any_day`` takes the newest complete build of any day, else resumes the newest unfinished one.
    """
    day = dt.datetime.now(dt.UTC).date()
    prefix = f"v{VERSION}-{samples}-{segment_s:g}s-"
    root = data_dir / f"{prefix}{day:%Y%m%d}" / "ws"
    if any_day and not rebuild:
        folders = sorted(data_dir.glob(f"{prefix}*/ws"))
        complete = [p for p in folders if (p / "complete").is_file()]
        unfinished = [p for p in folders if (p.parent / CHECKPOINT / "state.json").is_file()]
        root = complete[-1] if complete else unfinished[-1] if unfinished else root
    if (root / "complete").is_file() and not rebuild:
        return Workspace(root), False
    resume = not rebuild and (root.parent / CHECKPOINT / "state.json").is_file()
    if not resume:
        if root.parent.exists():
            shutil.rmtree(root.parent)
        root.parent.mkdir(parents=True)
    return build(root, samples, segment_s, resume=resume), True


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Where built workspaces live (outside the repo) and whether an earlier day's will do."""
    parser.add_argument("--data-dir", type=Path, default=CACHE_DIR, help=f"default {CACHE_DIR}")
    parser.add_argument("--any-day", action="store_true", help="reuse the newest build of an earlier day")


def sample_count(ws: Workspace) -> int:
    return json.loads((ws.root / "complete").read_text())["samples"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument("--segment-s", type=float, default=SEGMENT_S)
    parser.add_argument("--rebuild", action="store_true")
    add_data_options(parser)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    ws, built = cached(
        args.samples, args.segment_s, rebuild=args.rebuild, data_dir=args.data_dir, any_day=args.any_day
    )
    how = "built" if built else "cached"
    print(f"{ws.root}: {sample_count(ws):,} samples ({how}, {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
