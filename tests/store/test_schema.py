"""Store schema: migrations run once, in order, and record themselves."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from engine.store import connect
from engine.store.schema import LATEST_VERSION, MIGRATIONS, current_version, migrate


def test_new_file_is_migrated_to_latest(tmp_path: Path) -> None:
    with connect(tmp_path / "s.duckdb") as con:
        assert current_version(con) == LATEST_VERSION
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"systems", "events", "validations", "schema_version"} <= tables


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with connect(db):
        pass
    with connect(db) as con:
        rows = con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]


def test_migrate_steps_forward_from_an_older_version(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    assert migrate(con, target=0) == 0
    assert migrate(con) == LATEST_VERSION
    con.close()


def test_newer_store_than_code_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with connect(db) as con:
        con.execute("INSERT INTO schema_version VALUES (999, 'future', now())")
    with pytest.raises(RuntimeError, match="newer than this code"):
        with connect(db):
            pass


def test_migration_versions_are_strictly_increasing() -> None:
    versions = [m.version for m in MIGRATIONS]
    assert versions == sorted(set(versions))
