"""Conversion history: every conversion of a system is kept with its report."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import polars as pl

from engine.convert.converter import ConversionReport, ConversionResult
from engine.store.db import execute_with_frames, first_row


def record_conversions(
    con: duckdb.DuckDBPyConnection, results: list[tuple[ConversionResult, str]], actor: str
) -> None:
    """Store (result, v2 folder) pairs in one bulk insert, inside the caller's transaction."""
    if not results:
        return
    now = dt.datetime.now(dt.UTC)
    frame = pl.DataFrame(
        {
            "ts": [now] * len(results),
            "system": [r.blueprint.system.name for r, _ in results],
            "actor": [actor] * len(results),
            "v2_path": [path for _, path in results],
            "components": [len(r.blueprint.components) for r, _ in results],
            "bindings": [len(r.blueprint.bindings) for r, _ in results],
            "errors": [r.report.count("error") for r, _ in results],
            "warnings": [r.report.count("warning") for r, _ in results],
            "report": [json.dumps(r.report.model_dump(mode="json")) for r, _ in results],
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    execute_with_frames(
        con,
        "INSERT INTO conversions (ts, system, actor, v2_path, components, bindings, errors, warnings, report)"
        " SELECT ts, system, actor, v2_path, components, bindings, errors, warnings, CAST(report AS JSON)"
        " FROM frame",
        frame=frame,
    )


def latest_report(con: duckdb.DuckDBPyConnection, system: str) -> tuple[ConversionReport, str] | None:
    """The newest conversion report of a system and its v2 folder, or None."""
    row = first_row(
        con,
        "SELECT report, v2_path FROM conversions WHERE system = ? ORDER BY ts DESC, id DESC LIMIT 1",
        [system],
    )
    if row is None:
        return None
    return ConversionReport.model_validate(json.loads(row[0])), row[1]
