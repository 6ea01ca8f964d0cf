"""engine.judging: the use-case side of the judge (which run, its evidence, the newest calibration).

The judgements themselves are tested in tests/judge; recording a verdict and
judging from Prometheus run end to end in tests/parallel, tests/deploy and
tests/metrics/test_prometheus_live.py.
"""

from __future__ import annotations

import datetime as dt

import pytest

from engine.errors import StateConflictError
from engine.judge.calibration import MEASURED
from engine.judging import chain_ids, chain_seconds, judgeable_run, latest_calibration, run_chain, run_window
from engine.store import connect, transaction
from engine.store import deployments as store
from engine.store.events import append_events
from engine.workspace import Workspace

NAME = "hello_world_api"
OTHER = "todo_api_system"


def add_run(ws: Workspace, run_id: str, *, system: str = NAME, continues: str | None = None) -> dict:
    with connect(ws.db_path) as con, transaction(con):
        store.create_run(
            con, run_id, system, "parallel", "tester", duration_s=60, bucket_s=5, rps=10, continues=continues
        )
        store.finish_run(con, run_id, "completed")
        return store.get_run(con, run_id)


def test_a_run_is_read_with_the_runs_it_continues_oldest_first(sample_ws: Workspace) -> None:
    add_run(sample_ws, "parallel-1")
    add_run(sample_ws, "parallel-2", continues="parallel-1")
    third = add_run(sample_ws, "parallel-3", continues="parallel-2")
    with connect(sample_ws.db_path) as con:
        chain = run_chain(con, third)
    assert [r["id"] for r in chain] == ["parallel-1", "parallel-2", "parallel-3"]
    assert chain_ids(sample_ws, third) == ["parallel-1", "parallel-2", "parallel-3"]
    assert chain_seconds(chain) == pytest.approx(
        sum((r["ended_at"] - r["started_at"]).total_seconds() for r in chain)
    )


def test_a_chain_stops_at_another_systems_run_a_missing_one_and_a_cycle(sample_ws: Workspace) -> None:
    add_run(sample_ws, "parallel-x", system=OTHER)
    crossing = add_run(sample_ws, "parallel-4", continues="parallel-x")
    dangling = add_run(sample_ws, "parallel-5", continues="gone")
    with connect(sample_ws.db_path) as con, transaction(con):  # hand-edited data: 6 continues 7 continues 6
        store.create_run(
            con, "parallel-6", NAME, "parallel", "t", duration_s=1, bucket_s=1, rps=1, continues="parallel-7"
        )
        store.create_run(
            con, "parallel-7", NAME, "parallel", "t", duration_s=1, bucket_s=1, rps=1, continues="parallel-6"
        )
    with connect(sample_ws.db_path) as con:
        assert [r["id"] for r in run_chain(con, crossing)] == ["parallel-4"]
        assert [r["id"] for r in run_chain(con, dangling)] == ["parallel-5"]
        assert [r["id"] for r in run_chain(con, store.get_run(con, "parallel-7"))] == [
            "parallel-6",
            "parallel-7",
        ]


def test_only_a_system_with_a_finished_parallel_run_may_be_judged(sample_ws: Workspace) -> None:
    add_run(sample_ws, "parallel-1")
    with pytest.raises(StateConflictError, match="judge needs a finished parallel run"):
        judgeable_run(sample_ws, NAME, None)  # the sample fleet's systems are only inventoried


def test_the_newest_calibration_is_read_from_its_event(sample_ws: Workspace) -> None:
    with connect(sample_ws.db_path) as con:
        assert latest_calibration(con, NAME) is None
    measured = {
        "system": NAME,
        "run_id": "calibration-1",
        "measured_at": "2026-12-05T12:00:00+00:00",
        "actor": "tester",
        "pairs": 800,
        "rps": 40.0,
        "duration_s": 20.0,
        "verdict": "GO",
        "latency_change": 0.01,
        "low": -0.01,
        "high": 0.03,
    }
    for change in (0.01, 0.02):  # the newer one counts
        with connect(sample_ws.db_path) as con, transaction(con):
            after = measured | {"latency_change": change}
            append_events(con, [{"actor": "tester", "system": NAME, "action": MEASURED, "after": after}])
    with connect(sample_ws.db_path) as con:
        found = latest_calibration(con, NAME)
        assert latest_calibration(con, OTHER) is None
    assert found is not None and found.latency_change == 0.02 and found.measure == "round_trip"


def test_a_window_is_the_runs_last_seconds_and_a_running_run_ends_now() -> None:
    start = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
    run = {"started_at": start, "ended_at": start + dt.timedelta(minutes=10)}
    assert run_window(run, None) == (start, start + dt.timedelta(minutes=10))
    assert run_window(run, 60) == (start + dt.timedelta(minutes=9), start + dt.timedelta(minutes=10))
    assert run_window(run, 3600)[0] == start  # never before the run began
    begun, now = run_window({"started_at": start, "ended_at": None}, None)
    assert begun == start and now >= dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
