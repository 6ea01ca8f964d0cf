"""Validation history: every run of the v1 validator or the v2 gate is kept, never overwritten."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import polars as pl

from engine.models.validation import SystemValidation
from engine.store.db import execute_with_frames, first_row, query_frame


def record_validations(con: duckdb.DuckDBPyConnection, results: list[SystemValidation], actor: str) -> None:
    """Store many results in one bulk insert (inside the caller's transaction)."""
    if not results:
        return
    now = dt.datetime.now(dt.UTC)
    frame = pl.DataFrame(
        {
            "ts": [now] * len(results),
            "system": [r.system for r in results],
            "blueprint_version": [r.blueprint_version for r in results],
            "passed": [r.passed for r in results],
            "checks_passed": [r.checks_passed for r in results],
            "checks_total": [r.checks_total for r in results],
            "validation_success_rate": [r.validation_success_rate for r in results],
            "checks": [json.dumps([c.model_dump(exclude_none=True) for c in r.checks]) for r in results],
            "actor": [actor] * len(results),
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    execute_with_frames(
        con,
        "INSERT INTO validations (ts, system, blueprint_version, passed, checks_passed, checks_total,"
        " validation_success_rate, checks, actor) "
        "SELECT ts, system, blueprint_version, passed, checks_passed, checks_total,"
        " validation_success_rate, CAST(checks AS JSON), actor FROM frame",
        frame=frame,
    )


def latest_validations(con: duckdb.DuckDBPyConnection, blueprint_version: str) -> pl.DataFrame:
    """The newest result per system for ``v1`` or ``v2``."""
    return query_frame(
        con,
        """
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (PARTITION BY system ORDER BY ts DESC, id DESC) AS rn
            FROM validations WHERE blueprint_version = ?
        ) WHERE rn = 1 ORDER BY system
        """,
        [blueprint_version],
    )


def latest_validation(
    con: duckdb.DuckDBPyConnection, system: str, blueprint_version: str
) -> SystemValidation | None:
    """The newest stored result for one system, rebuilt as a model; None if never validated."""
    row = first_row(
        con,
        "SELECT checks FROM validations WHERE system = ? AND blueprint_version = ? "
        "ORDER BY ts DESC, id DESC LIMIT 1",
        [system, blueprint_version],
    )
    if row is None:
        return None
    return SystemValidation(system=system, blueprint_version=blueprint_version, checks=json.loads(row[0]))
