"""What the store knew at a moment: the raw facts every KPI is computed from.

KPIs must be computable "as of" any past moment (the standup shows the change
since yesterday), so nothing here reads the *current* columns of a table that
moves on; it replays the append-only history instead: state events, validation
results, verdicts, capacity probes and parallel-run samples, each cut at ``as_of``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from engine.store.aggregates import down_seconds
from engine.store.db import query_frame
from engine.workspace import Workspace


@dataclass(frozen=True)
class Facts:
    """The store's history up to ``as_of``, as polars frames (timestamps in UTC)."""

    as_of: dt.datetime
    systems: pl.DataFrame
    """name, category, priority, phase, migration_order: the inventory as imported by then."""
    transitions: pl.DataFrame
    """ts, system, actor, reason, from_state, to_state: every state change, oldest first."""
    validations: pl.DataFrame
    """system, passed, validation_success_rate: the newest v2 result per system."""
    verdicts: pl.DataFrame
    """ts, system, run_id, verdict, actor, throughput_change, latency_increase: every verdict."""
    downtime: pl.DataFrame
    """system, down_seconds: seconds in which every request served to clients failed."""
    capacity: pl.DataFrame
    """ts, system, old_rps, new_rps, change: each valid capacity probe, oldest first."""

    def restricted(self, names: list[str]) -> Facts:
        """The same history for some systems only (a phase's or one system's post-mortem)."""
        keep = pl.col("system").is_in(names)
        return Facts(
            self.as_of,
            self.systems.filter(pl.col("name").is_in(names)),
            self.transitions.filter(keep),
            self.validations.filter(keep),
            self.verdicts.filter(keep),
            self.downtime.filter(keep),
            self.capacity.filter(keep),
        )

    def state_at(self) -> pl.DataFrame:
        """name, state: each system's state at ``as_of`` (inventoried when it never moved)."""
        last = self.transitions.group_by("system").agg(pl.col("to_state").last().alias("state"))
        return (
            self.systems.select("name")
            .join(last, left_on="name", right_on="system", how="left")
            .with_columns(pl.col("state").fill_null("inventoried"))
        )


def _utc(moment: dt.datetime | None) -> dt.datetime:
    moment = moment or dt.datetime.now(dt.UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def criterion_sql(criterion: str, field: str = "observed") -> str:
    """SQL for one field (observed, threshold, ...) of one named criterion in a verdict's JSON result.

    Both arguments are constants of the code, never user input (they are
    pasted into the SQL text; values go in as parameters).
    """
    return (
        "CAST(list_filter(CAST(result->'$.criteria' AS JSON[]), "
        f"lambda c: c->>'$.name' = '{criterion}')[1]->>'$.{field}' AS DOUBLE)"
    )


def load_facts(con: duckdb.DuckDBPyConnection, ws: Workspace, as_of: dt.datetime | None = None) -> Facts:
    """Read the history up to ``as_of`` (default now) in a handful of bulk queries."""
    as_of = _utc(as_of)
    con.execute("SET TimeZone = 'UTC'")
    systems = query_frame(
        con,
        "SELECT name, category, priority, phase, migration_order FROM systems "
        "WHERE imported_at <= ? ORDER BY migration_order, name",
        [as_of],
    )
    transitions = query_frame(
        con,
        """
        SELECT ts, system, actor, reason,
               json_extract_string(before, '$.state') AS from_state,
               json_extract_string(after, '$.state') AS to_state
        FROM events WHERE action LIKE 'state:%' AND ts <= ? ORDER BY ts, id
        """,
        [as_of],
    )
    validations = query_frame(
        con,
        """
        SELECT system, passed, validation_success_rate FROM (
            SELECT *, row_number() OVER (PARTITION BY system ORDER BY ts DESC, id DESC) AS rn
            FROM validations WHERE blueprint_version = 'v2' AND ts <= ?
        ) WHERE rn = 1 ORDER BY system
        """,
        [as_of],
    )
    verdicts = query_frame(
        con,
        f"""
        SELECT ts, system, run_id, verdict, actor,
               {criterion_sql("throughput_change")} AS throughput_change,
               {criterion_sql("latency_increase")} AS latency_increase
        FROM verdicts WHERE ts <= ? ORDER BY ts, id
        """,  # noqa: S608 - the interpolated parts are constant criterion names, not values
        [as_of],
    )
    capacity = query_frame(
        con,
        """
        SELECT ts, system, CAST(after->>'$.old_rps' AS DOUBLE) AS old_rps,
               CAST(after->>'$.new_rps' AS DOUBLE) AS new_rps, CAST(after->>'$.change' AS DOUBLE) AS change
        FROM events
        WHERE action = 'capacity:measured' AND ts <= ? AND CAST(after->>'$.valid' AS BOOLEAN)
              AND after->>'$.change' IS NOT NULL
        ORDER BY ts, id
        """,
        [as_of],
    )
    downtime = _downtime(con, ws, as_of)
    return Facts(as_of, systems, transitions, validations, verdicts, downtime, capacity)


def _downtime(con: duckdb.DuckDBPyConnection, ws: Workspace, as_of: dt.datetime) -> pl.DataFrame:
    """Seconds, per system, in which requests were served and every one of them failed.

    Measured on the traffic Switchyard itself carried (parallel runs, canary
    steps, monitor windows; not A/A calibrations, which serve nobody), from
    the per-second aggregates of the sample files
    (:func:`engine.store.aggregates.down_seconds`): a few rows per second of
    traffic instead of every request, and exactly the same seconds.
    """
    return down_seconds(con, ws, as_of)
