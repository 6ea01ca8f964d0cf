"""The fast-rollback window: after promotion the old version stays warm, so undoing is a switch.

Argo Rollouts' ``scaleDownDelaySeconds`` and Flagger's users ask for the
same thing: the first minutes after a switch are when problems surface, and
a rollback then should take a second, not a restore. With the policy's
``deploy.warm_window_s`` (or the promote's own value) above zero, a clean
monitor window ends in ``done`` with blue still running and the moment it
may be stopped recorded on the ``state:done`` event (``warm_until``). Until
then a rollback only routes traffic back to blue; afterwards the next
command's reconciliation decommissions blue and rollback is refused.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from engine.deploy import slots
from engine.state import State
from engine.store import connect
from engine.store import deployments as store
from engine.store.db import query_frame
from engine.workspace import Workspace


def warm_until(
    con: duckdb.DuckDBPyConnection, name: str | None = None, *, live_only: bool = True
) -> pl.DataFrame:
    """system, warm_until: systems now ``done`` whose done event kept blue warm, with a live blue.

    ``live_only=False`` keeps systems whose warm blue has since died: the
    window was promised, so a rollback inside it restores blue instead.
    """
    where, params = "", []
    if name is not None:
        where, params = "AND system = ?", [name]
    frame = query_frame(
        con,
        f"""
        SELECT e.system, CAST(json_extract_string(e.after, '$.warm_until') AS TIMESTAMPTZ) AS warm_until
        FROM (
            SELECT *, row_number() OVER (PARTITION BY system ORDER BY ts DESC, id DESC) AS rn
            FROM events WHERE action LIKE 'state:%' {where}
        ) e JOIN systems s ON s.name = e.system
        WHERE e.rn = 1 AND e.action = ? AND s.state = ?
          AND json_extract_string(e.after, '$.warm_until') IS NOT NULL
        """,  # noqa: S608 - the interpolated part is a constant filter; values go in as parameters
        [*params, f"state:{State.DONE}", str(State.DONE)],
    )
    live = [s for s in frame["system"] if not live_only or store.live_slot(con, s, "blue") is not None]
    return frame.filter(pl.col("system").is_in(live)).with_columns(
        pl.col("warm_until").dt.convert_time_zone("UTC")
    )


def window_open(con: duckdb.DuckDBPyConnection, name: str, now: dt.datetime | None = None) -> bool:
    """Whether ``name`` is inside its fast-rollback window (promised, even if the warm blue has since
    died: a rollback then restores blue first): a rollback of a ``done`` system is a switch."""
    rows = warm_until(con, name, live_only=False)
    return bool(rows.filter(pl.col("warm_until") > (now or dt.datetime.now(dt.UTC))).height)


def seconds_left(ws: Workspace, name: str, now: dt.datetime | None = None) -> float | None:
    """Seconds until blue of ``name`` is decommissioned (0 when due), or None when it is not warm."""
    with connect(ws.db_path) as con:
        rows = warm_until(con, name)
    if rows.is_empty():
        return None
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (rows["warm_until"][0] - now).total_seconds())


def decommission_expired(ws: Workspace, actor: str, now: dt.datetime | None = None) -> list[str]:
    """Stop blue of every system whose warm window has passed; returns their names."""
    now = now or dt.datetime.now(dt.UTC)
    with connect(ws.db_path) as con:
        rows = warm_until(con)
    expired = rows.filter(pl.col("warm_until") <= now)["system"].to_list()
    for name in expired:
        slots.stop_slot(ws, name, "blue", "decommissioned: the fast-rollback window ended", actor)
    return expired
