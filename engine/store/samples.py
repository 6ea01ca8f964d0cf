"""Parallel-run samples as Parquet segments: ``samples/system=<s>/run=<id>/part-*.parquet``.

The gateway writes the segments (temp name, then rename); this module reads
them back with DuckDB's ``read_parquet`` on an in-memory connection, so a
reader never needs the control store's lock and never sees half a file.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from engine.judge.samples import CANONICAL
from engine.store.db import query_frame
from engine.workspace import Workspace, safe_child

JUDGE_COLUMNS = tuple(CANONICAL)


def run_folder(ws: Workspace, system: str, run_id: str) -> Path:
    safe_child(ws.samples_dir, system)
    return ws.samples_dir / f"system={system}" / f"run={run_id}"


def segments(ws: Workspace, system: str, run_id: str) -> list[Path]:
    return sorted(run_folder(ws, system, run_id).glob("part-*.parquet"))


def query_run(
    ws: Workspace, system: str, run_id: str, sql: str, params: list | None = None
) -> pl.DataFrame | None:
    """Run ``sql`` over the run's segments, visible to it as table ``s``; None when there are none yet.

    Segments written before the gateway kept mismatch bodies have no ``body``
    column; it reads as null there, so every query sees the same columns.
    """
    files = [str(f) for f in segments(ws, system, run_id)]
    if not files:
        return None
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        columns = query_frame(con, "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [files])
        extra = "" if "body" in columns["column_name"].to_list() else ", NULL::VARCHAR AS body"
        cte = f"WITH s AS (SELECT *{extra} FROM read_parquet(?, union_by_name = true)) "
        return query_frame(con, cte + sql, [files, *(params or [])])


def read_run_samples(ws: Workspace, system: str, run_id: str, *, all_columns: bool = False) -> pl.DataFrame:
    """Every sample of one run (empty frame when none yet); ``ts`` as naive UTC for the judge."""
    columns = "* EXCLUDE (ts)" if all_columns else ", ".join(f'"{c}"' for c in JUDGE_COLUMNS if c != "ts")
    frame = query_run(
        ws,
        system,
        run_id,
        f"SELECT CAST(ts AT TIME ZONE 'UTC' AS TIMESTAMP) AS ts, {columns} FROM s ORDER BY ts",  # noqa: S608
    )
    return frame if frame is not None else pl.DataFrame(schema=CANONICAL)
