"""Migration 4: the notification outbox (deliveries, one per event and webhook) and the webhook cursors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from engine.store import connect
from engine.store.schema import migrate


def test_an_existing_store_gains_the_outbox(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    assert migrate(con, target=3) == 3
    con.execute("INSERT INTO events (ts, actor, action) VALUES (now(), 'ann', 'state:promoted')")
    assert migrate(con) >= 4
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"deliveries", "notify_cursors"} <= tables
    assert con.execute("SELECT count(*) FROM events").fetchone() == (1,)
    con.close()


def test_one_delivery_per_event_and_webhook(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    insert = (
        "INSERT INTO deliveries (event_id, webhook, kind, status, created_at, next_attempt_at) "
        "VALUES (?, ?, 'promoted', 'pending', ?, ?)"
    )
    with connect(tmp_path / "s.duckdb") as con:
        con.execute(insert, [1, "team", now, now])
        con.execute(insert, [1, "ops", now, now])
        with pytest.raises(duckdb.ConstraintException):
            con.execute(insert, [1, "team", now, now])
        assert con.execute("SELECT count(*), min(attempts) FROM deliveries").fetchone() == (2, 0)
