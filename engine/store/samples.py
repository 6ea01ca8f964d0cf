"""Parallel-run samples as Parquet segments: ``samples/system=<s>/run=<id>/part-*.parquet``.

The gateway writes the segments (temp name, then rename); this module reads
them back with DuckDB's ``read_parquet`` on an in-memory connection, so a
reader never needs the control store's lock and never sees half a file.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from engine.store.db import query_frame
from engine.workspace import Workspace, safe_child

JUDGE_COLUMNS = ("ts", "version", "latency_ms", "ok", "endpoint", "match")


def run_folder(ws: Workspace, system: str, run_id: str) -> Path:
    safe_child(ws.samples_dir, system)
    return ws.samples_dir / f"system={system}" / f"run={run_id}"


def segments(ws: Workspace, system: str, run_id: str) -> list[Path]:
    return sorted(run_folder(ws, system, run_id).glob("part-*.parquet"))


def read_run_samples(ws: Workspace, system: str, run_id: str, *, all_columns: bool = False) -> pl.DataFrame:
    """Every sample of one run (empty frame when none yet); ``ts`` as naive UTC for the judge."""
    files = segments(ws, system, run_id)
    if not files:
        return pl.DataFrame(
            schema={
                "ts": pl.Datetime("us"),
                "version": pl.String,
                "latency_ms": pl.Float64,
                "ok": pl.Boolean,
                "endpoint": pl.String,
                "match": pl.Boolean,
            }
        )
    columns = "* EXCLUDE (ts)" if all_columns else ", ".join(f'"{c}"' for c in JUDGE_COLUMNS if c != "ts")
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        return query_frame(
            con,
            f"SELECT CAST(ts AT TIME ZONE 'UTC' AS TIMESTAMP) AS ts, {columns} "  # noqa: S608 - fixed names
            "FROM read_parquet(?) ORDER BY ts",
            [[str(f) for f in files]],
        )
