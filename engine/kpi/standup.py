"""What a lead needs at the morning standup besides the KPIs: changes, blockers, what is next.

* changes: promotions, rollbacks (automatic ones name their trigger), emergencies
  and new NO_GO verdicts in the 24 hours before ``as_of``;
* blockers: systems that cannot move without someone acting: a system in
  emergency, a rolled-back one waiting for a new attempt (with why it was
  rolled back), a failed v2 validation (with the checks that failed), a
  validated system whose pre-migration checklist still misses items;
* next: the systems not yet migrated that the plan wants first, with due dates.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import polars as pl
from pydantic import BaseModel

from engine.deploy.checklist import label as checklist_label
from engine.kpi.facts import Facts
from engine.state import State
from engine.store.db import query_frame

WINDOW = dt.timedelta(hours=24)
CHANGE_STATES = {
    State.PROMOTED: "promoted",
    State.DONE: "done",
    State.ROLLED_BACK: "rolled back",
    State.EMERGENCY: "emergency",
}


class Blocker(BaseModel):
    system: str
    state: str
    kind: str
    detail: str


def recent_changes(facts: Facts, window: dt.timedelta = WINDOW) -> pl.DataFrame:
    """ts, system, what, actor, reason: the day's decisions and incidents, newest first."""
    since = facts.as_of - window
    moves = facts.transitions.filter(
        (pl.col("ts") > since) & pl.col("to_state").is_in([str(s) for s in CHANGE_STATES])
    ).select(
        "ts",
        "system",
        pl.col("to_state").replace_strict({str(k): v for k, v in CHANGE_STATES.items()}).alias("what"),
        "actor",
        "reason",
    )
    moves = moves.with_columns(
        pl.when(pl.col("actor").str.starts_with("trigger:"))
        .then(pl.format("trigger fired, {}", pl.col("what")))
        .otherwise(pl.col("what"))
        .alias("what")
    )
    no_go = facts.verdicts.filter((pl.col("ts") > since) & (pl.col("verdict") == "NO_GO")).select(
        "ts",
        "system",
        pl.lit("NO_GO verdict").alias("what"),
        "actor",
        pl.format("run {}", pl.col("run_id")).alias("reason"),
    )
    return pl.concat([moves, no_go]).sort("ts", descending=True)


def blockers(con: duckdb.DuckDBPyConnection, facts: Facts) -> list[Blocker]:
    """Systems stuck until someone acts, most urgent first."""
    states = dict(
        zip(*facts.state_at().select("name", "state").to_dict(as_series=False).values(), strict=True)
    )
    out: list[Blocker] = []
    for name, state in states.items():
        if state == State.EMERGENCY:
            out.append(
                Blocker(system=name, state=state, kind="emergency", detail=_emergency_detail(facts, name))
            )
    for name, state in states.items():
        if state == State.ROLLED_BACK:  # undone safely, but the system is not migrated until a new attempt
            out.append(
                Blocker(system=name, state=state, kind="rolled back", detail=_rolled_back_detail(facts, name))
            )
    failed = [n for n, s in states.items() if s == State.VALIDATION_FAILED]
    for row in _failed_checks(con, failed, facts.as_of).iter_rows(named=True):
        out.append(
            Blocker(system=row["system"], state="validation_failed", kind="validation", detail=row["detail"])
        )
    waiting = [n for n, s in states.items() if s == State.VALIDATED]
    for name, missing in _missing_checklist(con, waiting, facts.as_of).items():
        out.append(Blocker(system=name, state="validated", kind="checklist", detail=missing))
    return out


def next_due(schedule: pl.DataFrame, limit: int = 5) -> pl.DataFrame:
    """The first systems in plan order that are not migrated yet."""
    return (
        schedule.filter(pl.col("migrated_at").is_null())
        .sort("due", "migration_order")
        .select("name", "priority", "phase", "state", "due", "overdue")
        .head(limit)
    )


def _emergency_detail(facts: Facts, name: str) -> str:
    last = facts.transitions.filter(
        (pl.col("system") == name) & (pl.col("to_state") == State.EMERGENCY)
    ).tail(1)
    reason = last["reason"].item() if last.height else None
    return reason or "rollback could not verify the old version"


def _rolled_back_detail(facts: Facts, name: str) -> str:
    last = facts.transitions.filter(
        (pl.col("system") == name) & (pl.col("to_state") == State.ROLLED_BACK)
    ).tail(1)
    reason = (last["reason"].item() if last.height else None) or "no reason recorded"
    when = f" on {last['ts'].item():%d %b %H:%M} UTC" if last.height else ""
    by = f" by {last['actor'].item()}" if last.height else ""
    return f"{when.strip()}{by}: {reason}. Waiting for a new attempt: fix, convert and validate again."


def _failed_checks(con: duckdb.DuckDBPyConnection, names: list[str], as_of: dt.datetime) -> pl.DataFrame:
    """system, detail: the failed checks of each system's newest v2 validation."""
    if not names:
        return pl.DataFrame(schema={"system": pl.String, "detail": pl.String})
    frame = query_frame(
        con,
        """
        SELECT system, checks FROM (
            SELECT *, row_number() OVER (PARTITION BY system ORDER BY ts DESC, id DESC) AS rn
            FROM validations WHERE blueprint_version = 'v2' AND ts <= ? AND list_contains(?, system)
        ) WHERE rn = 1 ORDER BY system
        """,
        [as_of, names],
    )
    details = []
    for checks in frame["checks"]:
        failed = [c for c in json.loads(checks) if not c.get("passed")]
        details.append(
            "; ".join(
                f"{c.get('component') or 'system'} {c.get('name')}: {c.get('message', '')}"
                for c in failed[:3]
            )
            + (f" (+{len(failed) - 3} more)" if len(failed) > 3 else "")
        )
    return frame.select("system").with_columns(pl.Series("detail", details, dtype=pl.String))


def _missing_checklist(
    con: duckdb.DuckDBPyConnection, names: list[str], as_of: dt.datetime
) -> dict[str, str]:
    """Missing items per validated system, from its newest checklist run (or 'not run yet')."""
    if not names:
        return {}
    frame = query_frame(
        con,
        """
        SELECT system, after FROM (
            SELECT *, row_number() OVER (PARTITION BY system ORDER BY ts DESC, id DESC) AS rn
            FROM events WHERE action = 'checklist' AND ts <= ? AND list_contains(?, system)
        ) WHERE rn = 1
        """,
        [as_of, names],
    )
    seen = {row["system"]: json.loads(row["after"]) for row in frame.iter_rows(named=True)}
    return {
        name: (
            "missing: "
            + ", ".join(
                checklist_label(k) for k, ok in seen[name].items() if not ok and k != "ready_to_migrate"
            )
            if name in seen
            else "pre-migration checklist not run yet"
        )
        for name in names
    }
