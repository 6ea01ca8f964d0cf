"""Opening the DuckDB file: short-lived connections, a retry on the write lock, migrations on open."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from engine.errors import StoreLockedError

LOCK_RETRY_SECONDS = 5.0
"""How long to wait for another process to release the write lock before giving up."""

_HOLDER = re.compile(r"Conflicting lock is held in (?P<prog>.+?) \(PID (?P<pid>\d+)\)")


def _lock_message(db_path: Path, exc: Exception) -> str:
    match = _HOLDER.search(str(exc))
    holder = f"process {match['pid']} ({Path(match['prog']).name})" if match else "another process"
    return (
        f"{db_path}: the store is in use by {holder}; waited {LOCK_RETRY_SECONDS:.0f} s. "
        "Stop that process or wait for it to finish, then try again."
    )


@contextmanager
def connect(db_path: Path, *, migrate: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh connection to ``db_path`` (created and migrated if needed), closed on exit.

    Every caller gets its own connection, so threads never share one (DuckDB
    raises "connection is busy" when they do).
    """
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(db_path))
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise StoreLockedError(_lock_message(db_path, exc)) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    try:
        if migrate:
            from engine.store.schema import migrate as run_migrations

            run_migrations(con, db_path=Path(db_path))
        yield con
    finally:
        con.close()


WRITE_LOCK = threading.RLock()
"""One write transaction at a time in this process.

DuckDB reports a write-write conflict only against a transaction that is
still open: a transaction that began before another one committed a change to
the same row overwrites that change silently (a lost update; two stale clicks
would both "succeed"). Other processes are kept out by DuckDB's file lock.
"""


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, rolling back on any exception so nothing is half-written.

    Transactions of one process run one after another (see ``WRITE_LOCK``), so
    what a transaction reads is what it writes over.
    """
    with WRITE_LOCK:
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def query_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    """Run a parameterised query and return the result as a polars frame (via Arrow, no row loop)."""
    table = con.sql(sql, params=params or None).to_arrow_table()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def execute_with_frames(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None, **frames: pl.DataFrame
) -> None:
    """Run ``sql`` with each keyword frame visible as a table of that name (bulk, zero-copy via Arrow).

    Registering explicitly (rather than relying on DuckDB's scan of local
    variables) keeps the frame's name and lifetime obvious to the reader.
    """
    for name, frame in frames.items():
        con.register(name, frame.to_arrow())
    try:
        con.execute(sql, params or [])
    finally:
        for name in frames:
            con.unregister(name)


def first_row(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> tuple[Any, ...] | None:
    """The first row of a parameterised query, or None.

    Fetches the whole result: DuckDB refuses further work on a connection
    whose last result was only partly read.
    """
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None
