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


def _open(db_path: Path) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect``, waiting up to :data:`LOCK_RETRY_SECONDS` for another process's write lock."""
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(db_path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise StoreLockedError(_lock_message(db_path, exc)) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


class _Shared:
    """The connection :func:`one_connection` lends to this thread's ``connect`` calls (opened lazily)."""

    def __init__(self) -> None:
        self.con: duckdb.DuckDBPyConnection | None = None
        self.migrated = False


_local = threading.local()
"""Per thread: ``shared`` (store path -> :class:`_Shared`) and ``writing`` (ids of connections inside
:func:`transaction`). Thread-local, so a connection never crosses threads (a job's worker opens its own)."""


def _shared_for(db_path: Path) -> _Shared | None:
    shared = getattr(_local, "shared", None)
    return shared.get(str(db_path)) if shared else None


@contextmanager
def one_connection(db_path: Path) -> Iterator[None]:
    """Inside this block, this thread's ``connect(db_path)`` calls share one connection.

    For a page's render (app.py runs each page inside one): opening the DuckDB
    file costs 5-30 ms here, and a page that reads through a dozen service
    calls paid it a dozen times (go_no_go: 16 opens per render). The
    connection is opened at the first ``connect`` and closed when the block
    ends, so the store stays open for one render only, as long as the page's
    own connections kept it open before (another process waiting for the
    write lock retries for up to :data:`LOCK_RETRY_SECONDS`). A ``connect``
    made while the shared connection is inside :func:`transaction` gets a
    fresh connection of its own, as it did before: it neither sees the
    uncommitted writes nor nests a transaction in that one. Nested blocks are
    the outer block's.
    """
    shared = getattr(_local, "shared", None)
    if shared is None:
        shared = _local.shared = {}
    key = str(db_path)
    if key in shared:
        yield
        return
    slot = shared[key] = _Shared()
    try:
        yield
    finally:
        del shared[key]
        if slot.con is not None:
            slot.con.close()


@contextmanager
def connect(db_path: Path, *, migrate: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh connection to ``db_path`` (created and migrated if needed), closed on exit.

    Every caller gets its own connection, so threads never share one (DuckDB
    raises "connection is busy" when they do); inside :func:`one_connection`
    this thread's calls share that block's connection instead.
    """
    from engine.store.schema import migrate as run_migrations

    shared = _shared_for(db_path)
    if shared is not None and (shared.con is None or id(shared.con) not in _writing()):
        if shared.con is None:
            shared.con = _open(db_path)
        if migrate and not shared.migrated:
            run_migrations(shared.con, db_path=Path(db_path))
            shared.migrated = True
        yield shared.con  # closed by one_connection
        return
    con = _open(db_path)
    try:
        if migrate:
            run_migrations(con, db_path=Path(db_path))
        yield con
    finally:
        con.close()


def _writing() -> set[int]:
    writing = getattr(_local, "writing", None)
    if writing is None:
        writing = _local.writing = set()
    return writing


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
        writing = _writing()
        writing.add(id(con))  # a connect() meanwhile gets its own connection (see one_connection)
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            writing.discard(id(con))
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
