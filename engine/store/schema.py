"""Schema of the control store as a list of forward migrations.

Each migration runs once, inside a transaction, and is recorded in
``schema_version``. To change the schema, append a migration; never edit one
that has shipped, because existing workspaces already ran it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from engine.store.db import first_row, transaction


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    fill: Callable[[duckdb.DuckDBPyConnection, Path], None] | None = None
    """Run after the statements, in the same transaction, with the store file's path (skipped for a
    store that has no file: an in-memory test database has no workspace around it)."""


def _fill_sample_aggregates(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    from engine.store.aggregates import fill_existing  # imported late: it reads samples, the schema does not

    fill_existing(con, db_path)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "inventory, audit events and validation history",
        (
            """
            CREATE TABLE systems (
                name VARCHAR PRIMARY KEY,
                category VARCHAR NOT NULL,
                priority VARCHAR NOT NULL,
                phase INTEGER NOT NULL,
                migration_order INTEGER NOT NULL,
                description VARCHAR NOT NULL,
                system_version VARCHAR NOT NULL,
                created DATE,
                component_count INTEGER NOT NULL,
                component_types VARCHAR[] NOT NULL,
                source_path VARCHAR NOT NULL,
                state VARCHAR NOT NULL,
                version INTEGER NOT NULL,
                imported_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE SEQUENCE events_id_seq",
            """
            CREATE TABLE events (
                id BIGINT PRIMARY KEY DEFAULT nextval('events_id_seq'),
                ts TIMESTAMPTZ NOT NULL,
                actor VARCHAR NOT NULL,
                system VARCHAR,
                action VARCHAR NOT NULL,
                reason VARCHAR,
                before JSON,
                after JSON
            )
            """,
            "CREATE SEQUENCE validations_id_seq",
            """
            CREATE TABLE validations (
                id BIGINT PRIMARY KEY DEFAULT nextval('validations_id_seq'),
                ts TIMESTAMPTZ NOT NULL,
                system VARCHAR NOT NULL,
                blueprint_version VARCHAR NOT NULL,
                passed BOOLEAN NOT NULL,
                checks_passed INTEGER NOT NULL,
                checks_total INTEGER NOT NULL,
                validation_success_rate DOUBLE NOT NULL,
                checks JSON NOT NULL,
                actor VARCHAR NOT NULL
            )
            """,
        ),
    ),
    Migration(
        2,
        "conversion history",
        (
            "CREATE SEQUENCE conversions_id_seq",
            """
            CREATE TABLE conversions (
                id BIGINT PRIMARY KEY DEFAULT nextval('conversions_id_seq'),
                ts TIMESTAMPTZ NOT NULL,
                system VARCHAR NOT NULL,
                actor VARCHAR NOT NULL,
                v2_path VARCHAR NOT NULL,
                components INTEGER NOT NULL,
                bindings INTEGER NOT NULL,
                errors INTEGER NOT NULL,
                warnings INTEGER NOT NULL,
                report JSON NOT NULL
            )
            """,
        ),
    ),
    Migration(
        3,
        "processes, routes, operations, parallel runs, verdicts, checklist acknowledgements",
        (
            "CREATE SEQUENCE processes_id_seq",
            """
            CREATE TABLE processes (
                id BIGINT PRIMARY KEY DEFAULT nextval('processes_id_seq'),
                system VARCHAR,
                role VARCHAR NOT NULL,
                runtime VARCHAR NOT NULL,
                pid INTEGER NOT NULL,
                port INTEGER NOT NULL,
                status VARCHAR NOT NULL,
                health_failures INTEGER NOT NULL DEFAULT 0,
                served_dir VARCHAR,
                log_path VARCHAR NOT NULL,
                started_at TIMESTAMPTZ NOT NULL,
                stopped_at TIMESTAMPTZ,
                stop_reason VARCHAR
            )
            """,
            """
            CREATE TABLE routes (
                system VARCHAR PRIMARY KEY,
                strategy VARCHAR NOT NULL,
                active_slot VARCHAR NOT NULL,
                canary_weight DOUBLE NOT NULL,
                mirror BOOLEAN NOT NULL,
                record_run VARCHAR,
                updated_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE SEQUENCE operations_id_seq",
            """
            CREATE TABLE operations (
                id BIGINT PRIMARY KEY DEFAULT nextval('operations_id_seq'),
                system VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                pid INTEGER NOT NULL,
                actor VARCHAR NOT NULL,
                started_at TIMESTAMPTZ NOT NULL,
                ended_at TIMESTAMPTZ,
                detail JSON
            )
            """,
            """
            CREATE TABLE runs (
                id VARCHAR PRIMARY KEY,
                system VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                actor VARCHAR NOT NULL,
                started_at TIMESTAMPTZ NOT NULL,
                ended_at TIMESTAMPTZ,
                duration_s DOUBLE NOT NULL,
                bucket_s DOUBLE NOT NULL,
                rps DOUBLE NOT NULL,
                stop_requested BOOLEAN NOT NULL DEFAULT false,
                sent BIGINT,
                lost BIGINT,
                samples BIGINT,
                outcome JSON
            )
            """,
            "CREATE SEQUENCE verdicts_id_seq",
            """
            CREATE TABLE verdicts (
                id BIGINT PRIMARY KEY DEFAULT nextval('verdicts_id_seq'),
                ts TIMESTAMPTZ NOT NULL,
                system VARCHAR NOT NULL,
                run_id VARCHAR NOT NULL,
                verdict VARCHAR NOT NULL,
                new_better BOOLEAN NOT NULL,
                actor VARCHAR NOT NULL,
                result JSON NOT NULL
            )
            """,
            "CREATE SEQUENCE checklist_acks_id_seq",
            """
            CREATE TABLE checklist_acks (
                id BIGINT PRIMARY KEY DEFAULT nextval('checklist_acks_id_seq'),
                ts TIMESTAMPTZ NOT NULL,
                system VARCHAR NOT NULL,
                item VARCHAR NOT NULL,
                actor VARCHAR NOT NULL,
                note VARCHAR
            )
            """,
        ),
    ),
    Migration(
        4,
        "notification outbox: webhook deliveries and each webhook's cursor over the audit log",
        (
            "CREATE SEQUENCE deliveries_id_seq",
            """
            CREATE TABLE deliveries (
                id BIGINT PRIMARY KEY DEFAULT nextval('deliveries_id_seq'),
                event_id BIGINT NOT NULL,
                webhook VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error VARCHAR,
                last_http_status INTEGER,
                created_at TIMESTAMPTZ NOT NULL,
                next_attempt_at TIMESTAMPTZ NOT NULL,
                leased_until TIMESTAMPTZ,
                delivered_at TIMESTAMPTZ,
                UNIQUE (event_id, webhook)
            )
            """,
            """
            CREATE TABLE notify_cursors (
                webhook VARCHAR PRIMARY KEY,
                last_event_id BIGINT NOT NULL,
                subscribed_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL
            )
            """,
        ),
    ),
    Migration(
        5,
        "per-file aggregates of the samples, filled for the runs already on disk",
        (
            """
            CREATE TABLE sample_files (
                system VARCHAR NOT NULL, run_id VARCHAR NOT NULL, file VARCHAR NOT NULL,
                bucket_s DOUBLE NOT NULL, rows BIGINT NOT NULL, aggregated_at TIMESTAMPTZ NOT NULL
            )
            """,
            """
            CREATE TABLE sample_buckets (
                system VARCHAR NOT NULL, run_id VARCHAR NOT NULL, file VARCHAR NOT NULL,
                bucket TIMESTAMPTZ, version VARCHAR, requests BIGINT, errors BIGINT, not_ok BIGINT, ok BIGINT,
                p50 DOUBLE, p95 DOUBLE, p99 DOUBLE, first_ts TIMESTAMPTZ, last_ts TIMESTAMPTZ
            )
            """,
            """
            CREATE TABLE sample_versions (
                system VARCHAR NOT NULL, run_id VARCHAR NOT NULL, file VARCHAR NOT NULL,
                version VARCHAR, requests BIGINT, errors BIGINT, not_ok BIGINT, ok BIGINT,
                compared BIGINT, mismatches BIGINT, p50 DOUBLE, p95 DOUBLE, p99 DOUBLE,
                sketch_bins INTEGER[], sketch_counts BIGINT[]
            )
            """,
            """
            CREATE TABLE sample_seconds (
                system VARCHAR NOT NULL, run_id VARCHAR NOT NULL, file VARCHAR NOT NULL,
                second BIGINT, version VARCHAR, "primary" BOOLEAN, requests BIGINT, ok BIGINT,
                ok_latency_n BIGINT, ok_latency_sum DOUBLE, first_ts TIMESTAMPTZ, first_ok_ts TIMESTAMPTZ,
                maybe_down BOOLEAN
            )
            """,
            """
            CREATE TABLE sample_latencies (
                system VARCHAR NOT NULL, run_id VARCHAR NOT NULL, file VARCHAR NOT NULL,
                version VARCHAR, h UBIGINT, latency_ms DOUBLE
            )
            """,
            """
            CREATE TABLE sample_mismatches (
                system VARCHAR NOT NULL, run_id VARCHAR NOT NULL, file VARCHAR NOT NULL,
                ts TIMESTAMPTZ, endpoint VARCHAR, old_status INTEGER, new_status INTEGER,
                old_body VARCHAR, new_body VARCHAR, no_body BOOLEAN, joined BOOLEAN
            )
            """,
        ),
        fill=_fill_sample_aggregates,
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version the open database is at (0 for an empty file)."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    row = first_row(con, "SELECT coalesce(max(version), 0) FROM schema_version")
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection, target: int = LATEST_VERSION, db_path: Path | None = None) -> int:
    """Apply every pending migration up to ``target``; returns the resulting version.

    ``db_path``: the store's file, for migrations that fill what they create
    from the workspace around it (without it, they create and fill nothing).
    """
    version = current_version(con)
    if version > LATEST_VERSION:
        raise RuntimeError(
            f"the store is at schema version {version}, newer than this code knows ({LATEST_VERSION}); "
            "upgrade Switchyard"
        )
    for migration in MIGRATIONS:
        if version < migration.version <= target:
            with transaction(con):
                for statement in migration.statements:
                    con.execute(statement)
                if migration.fill is not None and db_path is not None:
                    migration.fill(con, db_path)
                con.execute(
                    "INSERT INTO schema_version VALUES (?, ?, now())",
                    [migration.version, migration.description],
                )
            version = migration.version
    return version
