"""A deploy that fails half-way stops what it started, puts the route back, and says why in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import services
from engine.deploy import supervisor
from engine.deploy.supervisor import DeployError
from engine.store import connect
from engine.store import deployments as store
from engine.workspace import REPO_ROOT, Workspace, safe_child

NAME = "hello_world_api"
NO_ENDPOINTS = f"""schema_version: 2.0.0
system:
  name: {NAME}
  description: an entry that lists no endpoints (as a gateway whose METHODS are built in code converted)
  version: '1'
components:
- name: gateway
  recipe: APIEndpoint
  config: {{}}
bindings: []
"""


def failures(ws: Workspace) -> list[dict]:
    events = services.list_events(ws, system=NAME, action="deploy:failed")
    return events.to_dicts()


def assert_nothing_left(ws: Workspace) -> None:
    status = services.status(ws, NAME)
    assert status.state == "ready" and status.processes == [] and status.route is None
    assert not [p for p in supervisor.owned_pids(ws) if "engine.runtime.serve" in supervisor._cmdline(p)]


def test_a_failure_after_both_versions_started_stops_both_and_is_recorded(
    ready_ws, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = ready_ws(NAME)
    seen: dict[str, tuple[str, str]] = {}

    def refuse(ws: Workspace, actor: str) -> dict:
        with connect(ws.db_path) as con:  # both versions run now: each in its own folder, memory bounded
            for row in store.live_processes(con, NAME).iter_rows(named=True):
                limits = Path(f"/proc/{row['pid']}/limits").read_text()
                data = next(line for line in limits.splitlines() if line.startswith("Max data size"))
                seen[row["role"]] = (os.readlink(f"/proc/{row['pid']}/cwd"), data.split()[3])
        raise OSError("the gateway refused the new routes")

    monkeypatch.setattr(supervisor, "publish_routes", refuse)
    with pytest.raises(DeployError) as info:
        services.deploy(ws, NAME, "blue_green", actor="lead", reason="phase 1")
    assert str(info.value) == (
        f"{NAME}: deploy failed while routing traffic to blue through the gateway: "
        "the gateway refused the new routes"
    )
    for role in ("blue", "green"):
        cwd, data_limit = seen[role]
        assert cwd == str(ws.live_dir.resolve() / NAME / role) and data_limit != "unlimited"
    assert_nothing_left(ws)
    [event] = failures(ws)
    assert event["actor"] == "lead" and event["reason"] == str(info.value)
    assert '"stopped": ["green", "blue"]' in event["after"]


def test_a_green_without_endpoints_is_a_one_line_error_from_the_cli(ready_ws) -> None:
    ws = ready_ws(NAME)
    (safe_child(ws.v2_dir, NAME) / "blueprint.yaml").write_text(NO_ENDPOINTS, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "engine", "--workspace", str(ws.root), "deploy", NAME, "--actor", "lead"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        f"error: {NAME}: green failed its smoke test: /endpoints: "
        "the system has no entry endpoints to send requests to"
    ]
    assert "Traceback" not in done.stderr
    assert_nothing_left(ws)
    assert len(failures(ws)) == 1
