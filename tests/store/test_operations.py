"""engine.store.operations: a long workflow's operation is claimed in one place and always ended."""

from __future__ import annotations

import json

import pytest

from engine.errors import StateConflictError
from engine.state import State
from engine.store import connect, transaction
from engine.store import deployments as store
from engine.store import systems as systems_store
from engine.store.operations import operation
from engine.workspace import Workspace

NAME = "hello_world_api"


def row(ws: Workspace, op_id: int) -> dict:
    with connect(ws.db_path) as con:
        found = con.execute("SELECT status, detail FROM operations WHERE id = ?", [op_id]).fetchone()
    assert found is not None
    return {"status": found[0], "detail": json.loads(found[1]) if found[1] else None}


def test_a_block_that_returns_ends_completed_and_one_that_raises_ends_failed(sample_ws: Workspace) -> None:
    with operation(sample_ws.db_path, NAME, "deploy", actor="tester", detail={"started": []}) as op:
        assert row(sample_ws, op.id)["status"] == "running"
    assert row(sample_ws, op.id) == {"status": "completed", "detail": {"started": []}}
    with pytest.raises(RuntimeError, match="boom"):
        with operation(sample_ws.db_path, NAME, "deploy", actor="tester", detail={"started": []}) as failing:
            failing.progress({"started": ["blue"]})
            raise RuntimeError("boom")
    assert row(sample_ws, failing.id) == {
        "status": "failed",
        "detail": {"started": ["blue"], "error": "boom"},
    }


def test_an_outcome_the_workflow_named_stands_even_when_it_then_raises(sample_ws: Workspace) -> None:
    with pytest.raises(KeyboardInterrupt):
        with operation(sample_ws.db_path, NAME, "promote", actor="tester") as op:
            op.end("rolled_back", {"trigger": "error_rate"})
            raise KeyboardInterrupt
    assert row(sample_ws, op.id) == {"status": "rolled_back", "detail": {"trigger": "error_rate"}}


def test_a_clashing_claim_is_refused_and_starts_nothing(sample_ws: Workspace) -> None:
    with connect(sample_ws.db_path) as con:
        version = int(systems_store.get_system(con, NAME)["version"])
    with operation(sample_ws.db_path, NAME, "rollback", actor="a", seen_version=version) as first:
        with pytest.raises(StateConflictError, match="rollback by a"):
            with operation(
                sample_ws.db_path, NAME, "promote", actor="b", seen_version=version, blocked_by=("rollback",)
            ):
                pytest.fail("the second claim must not run")
    with connect(sample_ws.db_path) as con:
        kinds = con.execute("SELECT kind FROM operations WHERE system = ?", [NAME]).fetchall()
    assert kinds == [("rollback",)] and row(sample_ws, first.id)["status"] == "completed"


def test_joined_writes_commit_with_the_claim_or_not_at_all(sample_ws: Workspace) -> None:
    def to(target: State):
        return lambda con: systems_store.transition_within(con, NAME, target, actor="t", reason="starts")

    with pytest.raises(StateConflictError):  # inventoried -> parallel_run is not a move of the machine
        with operation(sample_ws.db_path, NAME, "parallel_run", actor="t", joined=to(State.PARALLEL_RUN)):
            pytest.fail("a claim whose joined write failed must not run")
    with connect(sample_ws.db_path) as con:
        assert store.running_operations(con, NAME).is_empty()
        assert con.execute("SELECT count(*) FROM operations").fetchone() == (0,)
    with operation(sample_ws.db_path, NAME, "convert", actor="t", joined=to(State.CONVERTED)):
        with connect(sample_ws.db_path) as con:
            assert systems_store.get_system(con, NAME)["state"] == State.CONVERTED


def test_an_outcome_whose_transaction_rolled_back_does_not_count(sample_ws: Workspace) -> None:
    with pytest.raises(RuntimeError, match="after the outcome"):
        with operation(sample_ws.db_path, NAME, "parallel_run", actor="t", detail={"run_id": "r"}) as op:
            with connect(sample_ws.db_path) as con, transaction(con):
                op.end("completed", {"samples": 10}, con=con)
                raise RuntimeError("after the outcome")
    assert row(sample_ws, op.id) == {
        "status": "failed",
        "detail": {"run_id": "r", "error": "after the outcome"},
    }
