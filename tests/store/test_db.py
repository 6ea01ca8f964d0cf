"""Connections: a lock held by another process becomes a clear StoreLockedError."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

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
