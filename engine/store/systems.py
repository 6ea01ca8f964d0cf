"""The ``systems`` table: the inventory and each system's place in the state machine.

Every state change goes through :func:`transition`, which checks the move
against the state machine and the caller's expected version (optimistic
concurrency), bumps the version and writes the audit event, all in one
transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import polars as pl

from engine.errors import NotFoundError, StateConflictError
from engine.state import State, allowed
from engine.store.db import execute_with_frames, query_frame, transaction
from engine.store.deployments import running_operations, start_operation
from engine.store.events import append_events

SYSTEM_SCHEMA: dict[str, Any] = {
    "name": pl.String,
    "category": pl.String,
    "priority": pl.String,
    "phase": pl.Int32,
    "migration_order": pl.Int32,
    "description": pl.String,
    "system_version": pl.String,
    "created": pl.Date,
    "component_count": pl.Int32,
    "component_types": pl.List(pl.String),
    "source_path": pl.String,
}
"""Inventory columns a fleet import provides; state, version and timestamps are the store's."""


def upsert_inventory(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> None:
    """Insert new systems and refresh inventory fields of known ones, keeping their state.

    Runs inside the caller's transaction; one bulk statement, no row loop.
    """
    execute_with_frames(
        con,
        """
        INSERT INTO systems
        SELECT name, category, priority, phase, migration_order, description, system_version,
               created, component_count, component_types, source_path,
               'inventoried', 1, now(), now()
        FROM incoming
        ON CONFLICT (name) DO UPDATE SET
            category = excluded.category,
            priority = excluded.priority,
            phase = excluded.phase,
            migration_order = excluded.migration_order,
            description = excluded.description,
            system_version = excluded.system_version,
            created = excluded.created,
            component_count = excluded.component_count,
            component_types = excluded.component_types,
            source_path = excluded.source_path,
            updated_at = now()
        """,
        incoming=frame.select(list(SYSTEM_SCHEMA)).cast(SYSTEM_SCHEMA),
    )


def update_placements(con: duckdb.DuckDBPyConnection, placements: pl.DataFrame) -> None:
    """Set priority, phase and order of many systems at once (name, priority, phase, migration_order)."""
    execute_with_frames(
        con,
        """
        UPDATE systems SET priority = placed.priority, phase = placed.phase,
               migration_order = placed.migration_order
        FROM placed WHERE systems.name = placed.name
        """,
        placed=placements.cast(
            {"name": pl.String, "priority": pl.String, "phase": pl.Int32, "migration_order": pl.Int32}
        ),
    )


def list_systems(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """All systems in migration order."""
    return query_frame(con, "SELECT * FROM systems ORDER BY migration_order, name")


def get_system(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any]:
    """One system's row as a dict; NotFoundError if there is none."""
    frame = query_frame(con, "SELECT * FROM systems WHERE name = ?", [name])
    if frame.is_empty():
        raise NotFoundError(f"no system named '{name}' in the inventory")
    return frame.row(0, named=True)


def check_version(row: dict[str, Any], expected_version: int | None) -> None:
    """StateConflictError when the caller saw an older version of the row (a stale click)."""
    if expected_version is not None and int(row["version"]) != expected_version:
        raise StateConflictError(
            f"{row['name']}: state changed since you loaded it (now {row['state']} at version "
            f"{row['version']}, you saw version {expected_version}); reload and try again"
        )


def claim(
    con: duckdb.DuckDBPyConnection,
    name: str,
    kind: str,
    *,
    actor: str,
    seen_version: int,
    expected_version: int | None = None,
    blocked_by: tuple[str, ...] = (),
    detail: dict[str, Any] | None = None,
) -> int:
    """Start operation ``kind`` on ``name`` (its id) if nothing changed since the caller read the row.

    One transaction checks the caller's ``expected_version`` and the version
    the operation's preconditions were checked against (``seen_version``),
    refuses while an operation of a kind in ``blocked_by`` (and of ``kind``
    itself) runs on ``name``, and records the operation. Of two clicks at the
    same moment exactly one gets past this point; the other gets
    StateConflictError and nothing of it happens.
    """
    with transaction(con):
        row = get_system(con, name)
        check_version(row, expected_version)
        if int(row["version"]) != seen_version:
            raise StateConflictError(
                f"{name}: state changed while starting to {kind} (now {row['state']} at version "
                f"{row['version']}, was version {seen_version}); reload and try again"
            )
        busy = running_operations(con, name).filter(pl.col("kind").is_in([kind, *blocked_by]))
        if busy.height:
            op = busy.row(0, named=True)
            raise StateConflictError(
                f"{name}: state changed: a {op['kind']} by {op['actor']} (process {op['pid']}) is in "
                f"progress since {op['started_at']:%H:%M:%S}; wait for it to finish, reload and try again"
            )
        return start_operation(con, name, kind, actor, detail)


def transition(
    con: duckdb.DuckDBPyConnection,
    name: str,
    target: State,
    *,
    actor: str,
    reason: str,
    expected_version: int | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Move ``name`` to ``target``: precondition, version bump and audit event in one transaction.

    ``expected_version`` is the version the caller saw; if the row moved on
    since, nothing changes and StateConflictError says so.
    """
    try:
        with transaction(con):
            return transition_within(
                con,
                name,
                target,
                actor=actor,
                reason=reason,
                expected_version=expected_version,
                detail=detail,
            )
    except duckdb.TransactionException as exc:  # another writer updated the same row first
        raise StateConflictError(f"{name}: state changed while updating; reload and try again") from exc


def transition_within(
    con: duckdb.DuckDBPyConnection,
    name: str,
    target: State,
    *,
    actor: str,
    reason: str,
    expected_version: int | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`transition` inside a transaction the caller already opened (to join other writes)."""
    if not actor:
        raise ValueError("every state change needs an actor")
    row = get_system(con, name)
    current, version = State(row["state"]), int(row["version"])
    if expected_version is not None and expected_version != version:
        raise StateConflictError(
            f"{name}: state changed since you loaded it (now {current} at version {version}, "
            f"you saw version {expected_version}); reload and try again"
        )
    if not allowed(current, target):
        raise StateConflictError(f"{name}: cannot go from {current} to {target}")
    updated = con.execute(
        "UPDATE systems SET state = ?, version = version + 1, updated_at = ? "
        "WHERE name = ? AND version = ? RETURNING version",
        [str(target), dt.datetime.now(dt.UTC), name, version],
    ).fetchall()
    if not updated:
        raise StateConflictError(f"{name}: state changed while updating; reload and try again")
    append_events(
        con,
        [
            {
                "actor": actor,
                "system": name,
                "action": f"state:{target}",
                "reason": reason,
                "before": {"state": str(current), "version": version},
                "after": {"state": str(target), "version": version + 1, **(detail or {})},
            }
        ],
    )
    return get_system(con, name)


def inventory_with_validation(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Systems in migration order, with their newest v1 validation (null if never validated)."""
    return query_frame(
        con,
        """
        WITH latest AS (
            SELECT system, passed, validation_success_rate, checks_passed, checks_total,
                   row_number() OVER (PARTITION BY system ORDER BY ts DESC, id DESC) AS rn
            FROM validations WHERE blueprint_version = 'v1'
        )
        SELECT s.name, s.category, s.priority, s.phase, s.migration_order, s.state, s.version,
               s.component_count, s.component_types, s.created, s.description, s.system_version,
               l.passed AS v1_passed, l.validation_success_rate AS v1_check_rate,
               l.checks_passed AS v1_checks_passed, l.checks_total AS v1_checks_total,
               s.source_path
        FROM systems s LEFT JOIN latest l ON l.system = s.name AND l.rn = 1
        ORDER BY s.migration_order, s.name
        """,
    )
