"""The append-only audit log: who did what to which system, when and why.

There is deliberately no update or delete here. Events are written in the
same transaction as the change they record.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl

from engine.store.db import execute_with_frames, query_frame


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def event_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Build a frame of events; ``before``/``after`` may be any JSON-able value."""
    now = dt.datetime.now(dt.UTC)
    return pl.DataFrame(
        {
            "ts": [r.get("ts", now) for r in rows],
            "actor": [r["actor"] for r in rows],
            "system": [r.get("system") for r in rows],
            "action": [r["action"] for r in rows],
            "reason": [r.get("reason") for r in rows],
            "before": [_json(r.get("before")) for r in rows],
            "after": [_json(r.get("after")) for r in rows],
        },
        schema={
            "ts": pl.Datetime("us", "UTC"),
            "actor": pl.String,
            "system": pl.String,
            "action": pl.String,
            "reason": pl.String,
            "before": pl.String,
            "after": pl.String,
        },
    )


def append_events(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> int:
    """Append events in one bulk insert; every row needs ``actor`` and ``action``."""
    if not rows:
        return 0
    for row in rows:
        if not row.get("actor"):
            raise ValueError(f"event {row.get('action')!r} has no actor")
    execute_with_frames(
        con,
        "INSERT INTO events (ts, actor, system, action, reason, before, after) "
        "SELECT ts, actor, system, action, reason, CAST(before AS JSON), CAST(after AS JSON) FROM frame",
        frame=event_frame(rows),
    )
    return len(rows)


FLEET_LOAD_ACTIONS = ("imported", "reimported", "validated:v1")
"""What loading a fleet records, one event per system (103 of a new workspace's first 122): on the
record, but noise beside the decisions a lead looks for, so the audit page hides them until asked."""


def list_events(
    con: duckdb.DuckDBPyConnection,
    *,
    system: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    action_prefix: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int | None = None,
    exclude_actions: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Events newest first, filtered by any of the given fields (``since`` inclusive, ``until`` not);
    ``exclude_actions`` leaves those actions out (the audit page hides :data:`FLEET_LOAD_ACTIONS`)."""
    where, params = [], []
    if exclude_actions:
        where.append("NOT list_contains(?, action)")
        params.append(list(exclude_actions))
    for column, value in (("system", system), ("actor", actor), ("action", action)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if action_prefix is not None:
        where.append("starts_with(action, ?)")
        params.append(action_prefix)
    if since is not None:
        where.append("ts >= ?")
        params.append(since)
    if until is not None:
        where.append("ts < ?")
        params.append(until)
    sql = "SELECT id, ts, actor, system, action, reason, before, after FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY ts DESC, id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return query_frame(con, sql, params)


def latest_after(con: duckdb.DuckDBPyConnection, system: str, action: str) -> Any | None:
    """The ``after`` document of ``system``'s newest ``action`` event (a measurement it records), or None."""
    frame = list_events(con, system=system, action=action, limit=1)
    if frame.is_empty() or frame["after"][0] is None:
        return None
    return json.loads(frame["after"][0])


def event_facets(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Distinct systems, actors and actions, for the audit page's filters."""
    return {
        column: query_frame(
            con, f"SELECT DISTINCT {column} AS v FROM events WHERE {column} IS NOT NULL ORDER BY v"
        )["v"].to_list()
        for column in ("system", "actor", "action")
    }
