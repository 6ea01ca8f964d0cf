"""Crashes in the middle: the next command finds what is left, settles it and records it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from engine import services
from engine.deploy import supervisor
from engine.store import connect
from engine.store import deployments as store

# These test kill points, not triggers: the CLI processes they start run under a policy with the
# p95 and throughput triggers out of reach (tests/conftest.py kill_point_policy), so a busy machine
# cannot roll back before the kill point and send the test down another branch.
pytestmark = pytest.mark.usefixtures("kill_point_policy")


def cli(ws, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "--workspace", str(ws.root), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def live_pids(ws) -> set[int]:
    with connect(ws.db_path) as con:
        return set(store.live_processes(con)["pid"].to_list())


def test_a_dead_service_is_marked_lost_and_an_unclaimed_one_is_stopped(ready_ws) -> None:
    ws = ready_ws("hello_world_api")
    out = services.deploy(ws, "hello_world_api", actor="lead")
    blue_pid = next(p["pid"] for p in services.status(ws, "hello_world_api").processes if p["role"] == "blue")
    os.kill(blue_pid, signal.SIGKILL)
    orphan = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.runtime.serve",
            "--system-dir",
            str(ws.live_dir / "hello_world_api" / "blue"),
            "--port",
            str(supervisor.free_port()),
            "--owner",
            ws.owner_tag,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(0.5)
    findings = services.recover(ws, actor="tester")
    kinds = {(f["kind"], f.get("pid")) for f in findings}
    assert ("lost_process", blue_pid) in kinds
    assert ("orphan_stopped", orphan.pid) in kinds
    assert orphan.wait(timeout=10) is not None
    assert supervisor.owned_pids(ws) == live_pids(ws)  # nothing runs that the store does not know
    roles = [p["role"] for p in services.status(ws, "hello_world_api").processes]
    assert "blue" not in roles and "green" in roles
    seen = services.list_events(ws, limit=20)["action"].to_list()
    assert "reconcile:lost_process" in seen and "reconcile:orphan_stopped" in seen
    assert out.green_port


def test_killing_the_cli_mid_parallel_run_leaves_a_consistent_recorded_state(ready_ws) -> None:
    ws = ready_ws("hello_world_api")
    services.deploy(ws, "hello_world_api", actor="lead")
    proc = cli(ws, "parallel-run", "hello_world_api", "--duration", "60", "--bucket", "1", "--rps", "50")
    deadline = time.monotonic() + 20
    while services.status(ws, "hello_world_api").state != "parallel_run":
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.2)
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    findings = services.recover(ws, actor="tester")
    assert any(f["kind"] == "interrupted" and f["operation"] == "parallel_run" for f in findings)
    status = services.status(ws, "hello_world_api")
    assert status.state == "green_deployed"  # can be run again
    assert status.route["record_run"] is None and not status.route["mirror"]
    with connect(ws.db_path) as con:
        runs = store.list_runs(con, "hello_world_api")
    assert runs["status"].to_list() == ["interrupted"]
    assert supervisor.owned_pids(ws) == live_pids(ws)
    actions = services.list_events(ws, system="hello_world_api", limit=5)["action"].to_list()
    assert "reconcile:interrupted" in actions and "state:green_deployed" in actions


def test_killing_the_cli_mid_deploy_leaves_no_orphan(ready_ws) -> None:
    ws = ready_ws("hello_world_api")
    proc = cli(ws, "deploy", "hello_world_api")
    deadline = time.monotonic() + 20
    while not live_pids(ws):  # wait until it has started at least one process
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    services.recover(ws, actor="tester")
    status = services.status(ws, "hello_world_api")
    assert status.state in ("ready", "green_deployed")
    if status.state == "ready":  # what the dead deploy started is stopped, blue included
        assert status.processes == []
    assert supervisor.owned_pids(ws) == live_pids(ws)
