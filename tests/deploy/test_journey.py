"""The migration journey on real local processes: deploy, parallel run, judge, promote, roll back.

Durations are seconds, not the seed's hours; everything else (processes,
gateway, Parquet samples, store, audit) is the real thing.
"""

from __future__ import annotations

import json
import os
import signal

import polars as pl
import pytest

from engine import services
from engine.cli import main
from engine.deploy import supervisor
from engine.errors import StateConflictError
from engine.parallel import compare
from engine.store import connect
from engine.store import deployments as store
from engine.store.samples import read_run_samples
from tests.app.test_units_on_every_page import BARE


def actions(ws, name: str) -> list[str]:
    return services.list_events(ws, system=name, limit=500)["action"].to_list()[::-1]


def test_blue_green_regression_gets_no_go_and_rolls_back(regressed_ws) -> None:
    """auth_token_api's hosted Authenticator was edited after the gate: its answers differ, for real."""
    ws = regressed_ws
    deployed = services.deploy(ws, "auth_token_api", "blue_green", actor="lead", reason="phase 2")
    assert deployed.state == "green_deployed"
    assert supervisor.healthy(deployed.blue_port) and supervisor.healthy(deployed.green_port)

    run = services.parallel_run(ws, "auth_token_api", actor="lead", duration_s=4, bucket_s=1, rps=80)
    assert run.status == "completed" and run.state == "judged"  # judged at the end of the run, unasked
    assert run.summary["lost"] == 0
    samples = read_run_samples(ws, "auth_token_api", run.run_id)
    assert samples.height == 2 * run.summary["sent"]  # one row per request per version
    assert set(samples["version"]) == {"old", "new"}

    verdict = run.verdict
    assert verdict is not None and verdict.verdict == "NO_GO" and run.not_judged is None
    recorded = services.status(ws, "auth_token_api").verdict
    assert recorded["run_id"] == run.run_id and recorded["actor"] == "lead"
    mismatch = next(c for c in verdict.criteria if c.name == "mismatch_rate")
    assert not mismatch.passed and mismatch.observed > 0.1  # the endpoints the Authenticator serves
    examples = compare.mismatch_examples(ws, "auth_token_api", run.run_id)
    kept = examples.drop_nulls("new_body")
    assert 0 < kept.height <= 20 and (kept["old_body"] != kept["new_body"]).all()  # what differed, shown

    with pytest.raises(StateConflictError, match="NO_GO"):
        services.promote(ws, "auth_token_api", actor="lead", reason="try anyway")

    outcome = services.rollback(ws, "auth_token_api", actor="lead", reason="NO_GO: responses differ")
    assert outcome.state == "rolled_back" and outcome.verified
    doc = json.loads(open(outcome.failure_document).read())
    assert doc["system"] == "auth_token_api" and doc["reason"] == "NO_GO: responses differ"
    assert doc["metrics"]["verdict"]["verdict"] == "NO_GO" and doc["logs"]
    status = services.status(ws, "auth_token_api")
    assert [p["role"] for p in status.processes] == ["blue"]  # green stopped, blue restored and serving
    assert status.route is not None and status.route["active_slot"] == "blue"
    assert list(ws.backups_dir.glob("auth_token_api_*"))
    assert (ws.rollback_dir / "auth_token_api.md").is_file()
    seen = actions(ws, "auth_token_api")
    for expected in (
        "state:ready",
        "state:green_deployed",
        "state:parallel_run",
        "state:judged",
        "state:rolled_back",
        "process:stop",
    ):
        assert expected in seen
    kpis = services.kpis(ws)  # the KPIs see the real rollback, and nothing migrated
    assert (kpis.rollback_count, kpis.systems_migrated, kpis.failed_migrations) == (1, 0, 0)
    assert kpis.total_downtime_minutes == 0  # blue served every request of the run


def test_direct_strategy_switches_without_losing_requests_and_decommissions_blue(ready_ws) -> None:
    ws = ready_ws("hello_world_api")
    out = services.deploy(ws, "hello_world_api", "direct", actor="lead", reason="pilot", monitor_s=2)
    assert out.promotion is not None and out.promotion.promoted
    assert out.state == "done"
    monitor = out.promotion.steps[-1]
    assert monitor["stage"] == "monitor" and monitor["sent"] > 0 and monitor["lost"] == 0
    status = services.status(ws, "hello_world_api")
    assert [p["role"] for p in status.processes] == ["green"]
    assert status.route["active_slot"] == "green"
    assert actions(ws, "hello_world_api")[-3:] == ["run:monitor:completed", "process:stop", "state:done"]
    kpis = services.kpis(ws)
    assert kpis.systems_migrated == 1 and kpis.total_downtime_minutes == 0
    assert 0 < kpis.avg_migration_time_hours < 0.1  # deploy, switch and a 2 s window: seconds, measured
    view = services.overview(ws)
    assert view.changes["what"].to_list()[:2] == ["done", "promoted"]
    assert view.schedule.filter(pl.col("name") == "hello_world_api")["migrated_at"].is_not_null().all()


def test_a_trigger_during_the_parallel_run_rolls_back_on_its_own(ready_ws) -> None:
    ws = ready_ws("hello_world_api")
    out = services.deploy(ws, "hello_world_api", "blue_green", actor="lead", reason="pilot")
    killed = []

    def kill_green_once(done: int, total: int, label: str) -> None:
        if not killed:
            os.kill(supervisor_pid(ws, out.green_port), signal.SIGKILL)
            killed.append(True)

    run = services.parallel_run(
        ws, "hello_world_api", actor="lead", duration_s=20, bucket_s=0.5, rps=100, progress=kill_green_once
    )
    assert run.status == "triggered"
    assert run.summary["fired"]["name"] in ("error_rate", "failed_health_checks")
    assert run.rollback is not None and run.rollback.state == "rolled_back"
    assert run.rollback.reason.startswith("automatic rollback during the parallel run")
    assert run.summary["lost"] == 0  # blue kept answering every request while green was dead
    last = services.list_events(ws, system="hello_world_api", limit=1).row(0, named=True)
    assert last["action"] == "state:rolled_back" and last["actor"].startswith("trigger:")
    assert services.overview(ws).changes["what"][0] == "trigger fired, rolled back"


def test_running_longer_adds_to_the_judged_run_and_is_judged_with_it(ready_ws, capsys) -> None:
    """ "Run N more minutes" after a verdict: a run that continues the judged one, judged at its end on
    both runs' samples (more evidence, not a fresh start), from the CLI as from the page."""
    ws = ready_ws("hello_world_api")
    services.deploy(ws, "hello_world_api", "blue_green", actor="lead", reason="pilot")
    first = services.parallel_run(ws, "hello_world_api", actor="lead", duration_s=2, bucket_s=1, rps=60)
    assert first.verdict is not None and first.state == "judged"

    code = main(["--workspace", str(ws.root), "parallel-run", "hello_world_api", "--extend", "--duration=2"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"(continues {first.run_id})" in text and "verdict: " in text
    assert "The seed's point-estimate rule says new is" in text
    bare = BARE.search(text)  # the CLI's text in units too: "+1.9%", "0.853 ms", "+0.0 pp", never 0.0011
    assert bare is None, (bare, text)
    second = services.status(ws, "hello_world_api")
    assert second.state == "judged" and second.latest_run["outcome"]["continues"] == first.run_id
    recorded = services.run_evidence(ws, "hello_world_api").verdict
    both = first.summary["samples"] + second.latest_run["samples"]
    assert recorded is not None and recorded["run_id"] == second.latest_run["id"]
    assert recorded["result"]["n_old"] + recorded["result"]["n_new"] == both  # every sample of both runs
    again = services.rejudge(ws, "hello_world_api", actor="lead")
    assert again.rejudged.n_old == recorded["result"]["n_old"]  # a re-judgement weighs the same samples


def supervisor_pid(ws, port: int) -> int:
    with connect(ws.db_path) as con:
        procs = store.live_processes(con)
    return int(procs.filter(procs["port"] == port)["pid"][0])


def test_deploy_refuses_until_the_checklist_is_complete(sample_ws) -> None:
    services.convert_systems(sample_ws, ["hello_world_api"], actor="tester")
    services.validate_systems_v2(sample_ws, ["hello_world_api"], actor="tester")
    result = services.checklist(sample_ws, "hello_world_api", actor="tester")
    assert not result.ready_to_migrate
    assert [i.name for i in result.missing()] == ["team_notified"]
    with pytest.raises(StateConflictError, match="ready"):
        services.deploy(sample_ws, "hello_world_api", actor="tester")
    assert services.status(sample_ws, "hello_world_api").processes == []


def test_within_the_warm_window_a_rollback_is_a_traffic_switch(ready_ws) -> None:
    ws = ready_ws("hello_world_api")
    out = services.deploy(
        ws, "hello_world_api", "direct", actor="lead", reason="pilot", monitor_s=2, warm_s=300
    )
    assert out.state == "done"
    status = services.status(ws, "hello_world_api")
    assert sorted(p["role"] for p in status.processes) == ["blue", "green"]  # old kept warm
    assert status.route["active_slot"] == "green"
    assert 250 < services.warm_seconds_left(ws, "hello_world_api") <= 300
    blue_pid = next(p["pid"] for p in status.processes if p["role"] == "blue")

    back = services.rollback(ws, "hello_world_api", actor="lead", reason="customer impact after the switch")
    assert back.verified and back.state == "rolled_back"
    status = services.status(ws, "hello_world_api")
    assert [(p["role"], p["pid"]) for p in status.processes] == [("blue", blue_pid)]  # switched, not restored
    assert status.route["active_slot"] == "blue"
    assert services.warm_seconds_left(ws, "hello_world_api") is None
    assert json.loads(open(back.failure_document).read())["verified"] is True


def test_after_the_warm_window_a_done_system_cannot_be_switched_back(sample_ws) -> None:
    with connect(sample_ws.db_path) as con:
        con.execute("UPDATE systems SET state = 'done' WHERE name = 'hello_world_api'")
    with pytest.raises(StateConflictError, match="decommissioned: there is nothing warm"):
        services.rollback(sample_ws, "hello_world_api", actor="lead", reason="too late")
