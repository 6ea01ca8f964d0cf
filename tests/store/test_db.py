"""Connections: a lock held by another process becomes a clear StoreLockedError."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from engine.errors import StoreLockedError
from engine.store import db


def test_lock_held_by_another_process_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('ok', flush=True); time.sleep(30)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        monkeypatch.setattr(db, "LOCK_RETRY_SECONDS", 0.3)
        started = time.monotonic()
        with pytest.raises(StoreLockedError) as info:
            with db.connect(path):
                pass
        assert f"process {holder.pid}" in str(info.value)
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    with db.connect(tmp_path / "t.duckdb") as con:
        con.execute("CREATE TABLE t (a INTEGER)")
        with pytest.raises(ValueError):
            with db.transaction(con):
                con.execute("INSERT INTO t VALUES (1)")
                raise ValueError("boom")
        assert db.first_row(con, "SELECT count(*) FROM t") == (0,)


# --------------------------------------------------------------------------- one connection per render


def opened(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The store files duckdb.connect is asked to open from here on."""
    calls: list[Path] = []
    real = db.duckdb.connect

    def counting(path: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - duckdb.connect's own
        calls.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(db.duckdb, "connect", counting)
    return calls


def test_inside_one_connection_every_connect_of_the_thread_shares_one_opened_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.duckdb"
    with db.connect(path) as con:
        con.execute("CREATE TABLE t (a INTEGER)")
    calls = opened(monkeypatch)
    with db.one_connection(path):
        assert calls == []  # opened at the first connect, not before
        with db.connect(path) as first, db.connect(path, migrate=False) as second:
            assert first is second
            first.execute("INSERT INTO t VALUES (1)")
        with db.one_connection(path), db.connect(path) as nested:  # a nested block is the outer one's
            assert nested is first and db.first_row(nested, "SELECT count(*) FROM t") == (1,)
        with db.connect(tmp_path / "other.duckdb") as other:  # another store: its own, as before
            assert other is not first
    assert calls == [path, tmp_path / "other.duckdb"]
    with pytest.raises(duckdb.ConnectionException):  # closed when the block ended
        first.execute("SELECT 1")
    with db.connect(path) as after:  # and after it, connections are fresh again
        assert after is not first


def test_a_connect_while_the_shared_connection_writes_gets_its_own_as_before(tmp_path: Path) -> None:
    """It must not see the uncommitted writes, nor begin a transaction inside that one."""
    path = tmp_path / "w.duckdb"
    with db.connect(path) as con:
        con.execute("CREATE TABLE t (a INTEGER)")
    with db.one_connection(path), db.connect(path) as shared:
        with db.transaction(shared):
            shared.execute("INSERT INTO t VALUES (1)")
            with db.connect(path) as inner:
                assert inner is not shared
                assert db.first_row(inner, "SELECT count(*) FROM t") == (0,)
        with db.connect(path) as again:  # the transaction is over: shared again
            assert again is shared and db.first_row(again, "SELECT count(*) FROM t") == (1,)
        with pytest.raises(ValueError), db.transaction(shared):  # a failed one ends the same way
            raise ValueError("boom")
        with db.connect(path) as again:
            assert again is shared


def test_one_connection_is_this_threads_alone(tmp_path: Path) -> None:
    """A job's worker thread started during a render opens its own: DuckDB connections are not shared
    across threads ("connection is busy")."""
    path = tmp_path / "t.duckdb"
    seen: list[int] = []

    def work() -> None:
        with db.connect(path) as con:
            seen.append(id(con))

    with db.one_connection(path), db.connect(path) as mine:
        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        assert seen and seen[0] != id(mine)
