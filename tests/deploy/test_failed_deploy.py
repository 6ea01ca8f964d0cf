"""A deploy that fails half-way stops what it started, puts the route back, and says why in one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine import services
from engine.deploy import supervisor
from engine.deploy.supervisor import DeployError
from engine.judge.policy import POLICY_ENV
from engine.rollback.backups import latest_backup
from engine.store import connect
from engine.store import deployments as store
from engine.workspace import REPO_ROOT, Workspace, safe_child
from tests.conftest import edited_policy

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


HUNG = "auth_token_api"
INIT = "        self.name = name\n"
WITHIN = "no answer on /health of port [0-9]+ within 4 s: "
HANGS = {
    # case: (slot, the module's text -> the text that fails, the one-line error after "<system>-<slot>: ")
    "hangs at import": (  # waits for a service that never comes up
        "green",
        lambda text: "import time\n\nwhile True:\n    time.sleep(0.05)\n" + text,
        WITHIN + re.escape("still importing components/auth.py (line 4)"),
    ),
    "spins in its constructor": (  # a busy loop, no sleep
        "blue",
        lambda text: text.replace(INIT, INIT + "        while True:\n            pass\n", 1),
        WITHIN + r"still in components/auth\.py line (19|20) \(__init__\)",  # the loop's two lines
    ),
    "exits at import": (
        "green",
        lambda text: "import sys\n\nsys.exit('no licence server on deploy day')\n" + text,
        re.escape(  # 3: uvicorn's code for a start that failed; the module's exception and line said
            "process exited with code 3 before answering: "
            "SystemExit: no licence server on deploy day (components/auth.py line 3)"
        ),
    ),
}


def cli(ws: Workspace, policy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "--workspace", str(ws.root), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=os.environ | {POLICY_ENV: str(policy)},
        timeout=120,
    )


@pytest.mark.parametrize("case", list(HANGS))
def test_a_version_that_hangs_as_it_starts_fails_the_deploy_in_one_line_and_nothing_runs_on(
    ready_ws, tmp_path: Path, case: str
) -> None:
    """A module that passed the gate and then hangs or exits when served (it waits at import for a service
    that is not there on deploy day; a constructor that loops): deploy stops after the policy's health
    timeout with one line saying where the team's code is stuck (or what it said as it exited), stops
    what it started, records why; the parallel run is refused in one line too. Exit 2, no traceback."""
    ws = ready_ws(HUNG)
    slot, hang, said = HANGS[case]
    folder = safe_child(ws.v2_dir, HUNG) if slot == "green" else latest_backup(ws, HUNG)
    assert folder is not None
    code = folder / "components" / "auth.py"
    text = code.read_text(encoding="utf-8")
    assert INIT in text
    code.write_text(hang(text), encoding="utf-8")
    policy = edited_policy(tmp_path / "policy.toml", {"health_timeout_s = 20": "health_timeout_s = 4"})

    done = cli(ws, policy, "deploy", HUNG, "--actor", "lead")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert re.fullmatch(f"error: {HUNG}-{slot}: {said}", line), line
    status = services.status(ws, HUNG)
    assert status.state == "ready" and status.processes == [] and status.route is None
    assert not [p for p in supervisor.owned_pids(ws) if "engine.runtime.serve" in supervisor._cmdline(p)]
    [event] = services.list_events(ws, system=HUNG, action="deploy:failed").to_dicts()
    assert event["actor"] == "lead" and event["reason"] == line.removeprefix("error: ")
    failed = services.list_events(ws, system=HUNG, action="process:failed").to_dicts()
    assert [e["reason"] for e in failed] == [line.split(f"{HUNG}-{slot}: ", 1)[1]]

    run = cli(ws, policy, "parallel-run", HUNG, "--actor", "lead", "--duration", "3", "--bucket", "1")
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert [line for line in run.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {HUNG} is ready: a parallel run needs green deployed (deploy first)"
    ]
