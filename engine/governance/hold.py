"""HOLD: pause a system where it is instead of rolling it back.

Asked for by users of Argo Rollouts and Flagger alike ("pause instead of
abort"): after a data migration that cannot be undone, rolling back is worse
than waiting. A hold freezes the system as it is: traffic stays where it is,
nothing promotes, rolls back, deploys or runs, and an automatic trigger that
fires is recorded but does not roll back. Only an operator can release it.

A hold is an overlay on the state machine, not a state of it: the system
stays ``judged`` or ``monitoring`` underneath, which is what it will resume
from once released. The current hold is the newest ``hold:*`` event.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
from pydantic import BaseModel

from engine.errors import InputError, StateConflictError
from engine.store.db import query_frame
from engine.store.events import append_events

PLACED, RELEASED = "hold:placed", "hold:released"


class Hold(BaseModel):
    system: str
    since: dt.datetime
    placed_by: str
    owner: str
    reason: str
    state: str

    def sentence(self) -> str:
        return (
            f"{self.system} is on HOLD since {self.since:%Y-%m-%d %H:%M} UTC (owner {self.owner}, "
            f"placed by {self.placed_by}): {self.reason}"
        )


def current_holds(con: duckdb.DuckDBPyConnection, system: str | None = None) -> pl.DataFrame:
    """system, since, placed_by, owner, reason, state: systems whose newest hold event places a hold."""
    where, params = "", []
    if system is not None:
        where, params = "AND system = ?", [system]
    return query_frame(
        con,
        f"""
        SELECT system, ts AS since, actor AS placed_by,
               coalesce(json_extract_string(after, '$.owner'), actor) AS owner,
               reason, json_extract_string(after, '$.state') AS state
        FROM (
            SELECT *, row_number() OVER (PARTITION BY system ORDER BY ts DESC, id DESC) AS rn
            FROM events WHERE action IN (?, ?) {where}
        ) WHERE rn = 1 AND action = ? ORDER BY since
        """,  # noqa: S608 - the interpolated part is a constant filter; values go in as parameters
        [PLACED, RELEASED, *params, PLACED],
    )


def hold_of(con: duckdb.DuckDBPyConnection, system: str) -> Hold | None:
    rows = current_holds(con, system).to_dicts()
    return Hold(**rows[0]) if rows else None


def ensure_not_held(con: duckdb.DuckDBPyConnection, system: str, what: str) -> None:
    """Refuse ``what`` (promote, roll back, deploy, run) while the system is held."""
    hold = hold_of(con, system)
    if hold is not None:
        raise StateConflictError(
            f"cannot {what}: {hold.sentence()}. An operator must release the hold first."
        )


def place_hold(
    con: duckdb.DuckDBPyConnection, system: str, state: str, *, actor: str, reason: str, owner: str | None
) -> Hold:
    """Record a hold (in the caller's transaction); a second hold on a held system is refused."""
    if not reason.strip():
        raise InputError("--reason", "value", "why the system is held (recorded with your name)", "''")
    current = hold_of(con, system)
    if current is not None:
        raise StateConflictError(f"already held: {current.sentence()}")
    owner = (owner or actor).strip() or actor
    append_events(
        con,
        [
            {
                "actor": actor,
                "system": system,
                "action": PLACED,
                "reason": reason.strip(),
                "before": {"held": False, "state": state},
                "after": {"held": True, "state": state, "owner": owner},
            }
        ],
    )
    hold = hold_of(con, system)
    assert hold is not None
    return hold


def release_hold(con: duckdb.DuckDBPyConnection, system: str, *, actor: str, reason: str) -> Hold:
    """Record the release of the current hold; returns the hold that was released."""
    if not reason.strip():
        raise InputError("--reason", "value", "why the hold can end (recorded with your name)", "''")
    current = hold_of(con, system)
    if current is None:
        raise StateConflictError(f"{system} is not on hold")
    append_events(
        con,
        [
            {
                "actor": actor,
                "system": system,
                "action": RELEASED,
                "reason": reason.strip(),
                "before": {"held": True, "owner": current.owner, "since": current.since.isoformat()},
                "after": {"held": False, "state": current.state},
            }
        ],
    )
    return current
