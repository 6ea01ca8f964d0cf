"""A recorded migration history with known answers, shared by the KPI, report and page tests.

The history is written the way the engine records it (state events, v2
validation rows, verdicts, sample segments), at chosen times, so every figure
has one right value that a wrong formula or a wrong cut-off would miss.
"""

from __future__ import annotations

import datetime as dt
import json

import polars as pl

from engine import services
from engine.store import connect
from engine.store.events import append_events
from engine.workspace import Workspace

TOMORROW = dt.datetime.combine(dt.date.today() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
D = TOMORROW  # day 0 of the plan: after the sample fleet was imported (today), so every system exists


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return D + dt.timedelta(days=day, hours=hour, minutes=minute)


def moves(system: str, steps: list[tuple[dt.datetime, str, str]], start: str = "ready") -> list[dict]:
    rows, before = [], start
    for ts, state, actor in steps:
        rows.append(
            {
                "ts": ts,
                "actor": actor,
                "system": system,
                "action": f"state:{state}",
                "reason": f"to {state}",
                "before": {"state": before},
                "after": {"state": state},
            }
        )
        before = state
    return rows


def capacity(system: str, ts: dt.datetime, old: float, new: float, valid: bool = True) -> dict:
    """A ``capacity:measured`` event as :func:`engine.migration.measure_capacity` records it (the figures)."""
    after = {"old_rps": old, "new_rps": new, "change": new / old - 1, "valid": valid}
    return {"ts": ts, "actor": "ann", "system": system, "action": "capacity:measured", "reason": "probe"} | {
        "after": after
    }


def write_history(sample_ws: Workspace) -> Workspace:
    """Three systems deployed over two days from plan day 0 (tomorrow): one done, two rolled back."""
    services.set_plan_start(sample_ws, D.date(), actor="lead")
    events = [
        # todo_api_system: deployed 10:00, observed 10:30-11:30, promoted 12:00, done: 1.0 h of work
        *moves(
            "todo_api_system",
            [
                (at(0, 10), "green_deployed", "ann"),
                (at(0, 10, 30), "parallel_run", "ann"),
                (at(0, 11, 30), "judged", "ann"),
                (at(0, 12), "promoted", "ann"),
                (at(0, 12, 1), "monitoring", "ann"),
                (at(0, 12, 10), "done", "ann"),
            ],
        ),
        # hello_world_api: an automatic rollback during the run
        *moves(
            "hello_world_api",
            [
                (at(1, 9), "green_deployed", "bob"),
                (at(1, 9, 10), "parallel_run", "bob"),
                (at(1, 10, 20), "rolled_back", "trigger:error_rate"),
            ],
        ),
        # simple_rest_api: direct switch, then 30 minutes in emergency before a person restored it
        *moves(
            "simple_rest_api",
            [
                (at(1, 11), "green_deployed", "cat"),
                (at(1, 11, 30), "promoted", "cat"),
                (at(1, 11, 31), "monitoring", "cat"),
                (at(1, 12), "emergency", "trigger:health_checks"),
                (at(1, 12, 30), "rolled_back", "cat"),
            ],
        ),
        # file_upload_api: failed validation on v2, a blocker
        *moves("file_upload_api", [(at(1, 8), "validation_failed", "ann")], start="converted"),
        # capacity probes (the throughput KPI): todo_api_system's newest valid one says +30 %; one that
        # could not measure (old failing) and simple_rest_api's (rolled back by day 2) do not count
        capacity("todo_api_system", at(0, 11, 35), 100.0, 110.0),
        capacity("todo_api_system", at(0, 11, 40), 100.0, 130.0),
        capacity("todo_api_system", at(0, 11, 45), 10.0, 500.0, valid=False),
        capacity("simple_rest_api", at(1, 11, 10), 100.0, 50.0),
    ]
    check = {"name": "smoke", "component": "store", "target": None, "passed": False, "message": "no reply"}
    with connect(sample_ws.db_path) as con:
        append_events(con, events)
        for system, passed, ts in (
            ("todo_api_system", True, at(0, 9)),
            ("hello_world_api", True, at(0, 9)),
            ("simple_rest_api", True, at(0, 9)),
            ("file_upload_api", False, at(1, 8)),
        ):
            con.execute(
                "INSERT INTO validations (ts, system, blueprint_version, passed, checks_passed, checks_total,"
                " validation_success_rate, checks, actor) VALUES (?, ?, 'v2', ?, ?, 1, ?, ?, 'ann')",
                [ts, system, passed, int(passed), float(passed), json.dumps([{**check, "passed": passed}])],
            )
        for system, verdict, tp, lat, ts in (
            ("todo_api_system", "GO", 0.25, 0.04, at(0, 11, 30)),
            ("hello_world_api", "NO_GO", -0.3, 0.5, at(1, 10, 15)),
        ):
            result = {
                "verdict": verdict,
                "new_better": verdict == "GO",
                "criteria": [
                    {"name": "throughput_change", "observed": tp},
                    {"name": "latency_increase", "observed": lat},
                ],
            }
            con.execute(
                "INSERT INTO verdicts (ts, system, run_id, verdict, new_better, actor, result) "
                "VALUES (?, ?, 'r1', ?, ?, 'ann', ?)",
                [ts, system, verdict, verdict == "GO", json.dumps(result)],
            )
    # served traffic of todo_api_system: in second 10:40:05 every served request failed (one down second);
    # the shadow's failures (primary = false) are not downtime
    folder = sample_ws.samples_dir / "system=todo_api_system" / "run=r1"
    folder.mkdir(parents=True)
    base = at(0, 10, 40)
    rows = [
        (base + dt.timedelta(seconds=s, milliseconds=ms), True, s != 5) for s in range(10) for ms in (0, 500)
    ]
    rows += [(base + dt.timedelta(seconds=s), False, False) for s in range(10)]
    pl.DataFrame(
        {"ts": [r[0] for r in rows], "primary": [r[1] for r in rows], "ok": [r[2] for r in rows]},
        schema={"ts": pl.Datetime("us", "UTC"), "primary": pl.Boolean, "ok": pl.Boolean},
    ).write_parquet(folder / "part-000001.parquet")
    return sample_ws
