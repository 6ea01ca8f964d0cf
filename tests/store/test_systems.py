"""State transitions: legal moves only, optimistic concurrency, an audit event in the same transaction."""

from __future__ import annotations

import threading

import pytest

from engine.errors import StateConflictError
from engine.state import State
from engine.store import connect
from engine.store import events as events_store
from engine.store import systems as systems_store
from engine.workspace import Workspace


def test_transition_bumps_version_and_writes_event(sample_ws: Workspace) -> None:
    with connect(sample_ws.db_path) as con:
        row = systems_store.transition(
            con, "hello_world_api", State.CONVERTED, actor="ana", reason="pilot", expected_version=1
        )
        assert row["state"] == "converted" and row["version"] == 2
        event = events_store.list_events(con, system="hello_world_api", action="state:converted").row(
            0, named=True
        )
    assert event["actor"] == "ana" and event["reason"] == "pilot"
    assert '"inventoried"' in event["before"] and '"converted"' in event["after"]


def test_illegal_transition_changes_nothing(sample_ws: Workspace) -> None:
    with connect(sample_ws.db_path) as con:
        with pytest.raises(StateConflictError, match="cannot go from inventoried to promoted"):
            systems_store.transition(con, "hello_world_api", State.PROMOTED, actor="ana", reason="skip ahead")
        assert systems_store.get_system(con, "hello_world_api")["version"] == 1
        assert events_store.list_events(con, system="hello_world_api", action="state:promoted").is_empty()


def test_stale_version_is_refused(sample_ws: Workspace) -> None:
    with connect(sample_ws.db_path) as con:
        systems_store.transition(
            con, "hello_world_api", State.CONVERTED, actor="a", reason="r", expected_version=1
        )
        with pytest.raises(StateConflictError, match="state changed since you loaded it"):
            systems_store.transition(
                con, "hello_world_api", State.VALIDATED, actor="b", reason="r", expected_version=1
            )


def test_two_threads_same_click_exactly_one_wins(sample_ws: Workspace) -> None:
    outcomes: list[str] = []

    def click() -> None:
        with connect(sample_ws.db_path) as con:
            try:
                systems_store.transition(
                    con, "todo_api_system", State.CONVERTED, actor="t", reason="r", expected_version=1
                )
                outcomes.append("ok")
            except StateConflictError:
                outcomes.append("conflict")

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    with connect(sample_ws.db_path) as con:
        assert systems_store.get_system(con, "todo_api_system")["version"] == 2
        assert events_store.list_events(con, system="todo_api_system", action="state:converted").height == 1


def test_every_event_needs_an_actor(sample_ws: Workspace) -> None:
    with connect(sample_ws.db_path) as con:
        with pytest.raises(ValueError, match="actor"):
            systems_store.transition(con, "hello_world_api", State.CONVERTED, actor="", reason="r")
