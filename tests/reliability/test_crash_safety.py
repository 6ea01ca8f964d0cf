"""Crash safety: SIGKILL the CLI in the middle of convert, promote and rollback, then start again.

Each test kills ``python -m engine --workspace W ...`` at a named moment and
then checks, as the next command finds it: no process of the workspace runs
or listens that the store does not record (and the other way round), the
store and the files agree (v2 folders vs conversion rows, backups and
rollback plans byte for byte, failure documents named by the store), the
interrupted operation is reported with what to do next (the finding of
:func:`services.recover`, its audit event and :func:`services.status`),
every sample segment reads whole, and the operation run again succeeds.

The moments are hit deterministically: the CLI runs under a small wrapper
that SIGKILLs its own process just before or after the n-th call of a named
engine function (``kill_at``), which is a real SIGKILL of the CLI in that
state; one test per operation also kills from outside at a seeded moment
once progress is observable.

The reconcile race is here too: a process being started is not stopped as an
orphan by another process's reconcile before its row is written.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from engine import services
from engine.convert.converter import convert_blueprint
from engine.convert.probe import probe_code
from engine.convert.writer import write_v2_system
from engine.deploy import supervisor
from engine.models.blueprint_v1 import load_v1_blueprint
from engine.store import connect
from engine.store import deployments as store
from engine.workspace import SAMPLE_FLEET_DIR, Workspace
from tests.reliability.test_loopback import listening_sockets, sockets_of

REPO = Path(__file__).resolve().parents[2]
NAME = "hello_world_api"
BATCH = ["todo_api_system", "simple_rest_api", NAME, "auth_token_api", "user_service_api"]
"""A small batch of sample systems: enough to kill in the middle, fast enough to run again."""

# These test kill points, not triggers: the CLI processes they start run under a policy with the
# p95 and throughput triggers out of reach (tests/conftest.py kill_point_policy), so a busy machine
# cannot roll back before the kill point and send the test down another branch.
pytestmark = pytest.mark.usefixtures("kill_point_policy")

KILLER = r"""
import functools, importlib, os, signal, sys

spec, nth, when, *argv = sys.argv[1:]
module_name, _, attr_path = spec.partition(":")
*holders, attr = attr_path.split(".")
owner = functools.reduce(getattr, holders, importlib.import_module(module_name))
original = getattr(owner, attr)
calls = 0


def wrapped(*args, **kwargs):
    global calls
    calls += 1
    if calls == int(nth) and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = original(*args, **kwargs)
    if calls == int(nth) and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
    return result


setattr(owner, attr, wrapped)
from engine.cli import main

sys.exit(main(argv))
"""


def cli(ws: Workspace, *args: str) -> subprocess.Popen[bytes]:
    """The CLI as an operator runs it, in its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "--workspace", str(ws.root), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )


def kill_at(ws: Workspace, spec: str, nth: int, when: str, *args: str) -> int:
    """Run the CLI and SIGKILL it ``when`` ("before"/"after") the ``nth`` call of ``module:function``.

    Returns the exit status, -9 when the kill point was reached (the test
    asserts that, so a renamed function cannot make a kill silently miss).
    """
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, spec, str(nth), when, "--workspace", str(ws.root), *args],
        capture_output=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    return proc.returncode


def rerun(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI run again to completion (its own recovery runs first)."""
    return subprocess.run(
        [sys.executable, "-m", "engine", "--workspace", str(ws.root), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )


def live_pids(ws: Workspace) -> set[int]:
    with connect(ws.db_path) as con:
        return set(store.live_processes(con)["pid"].to_list())


def assert_no_orphan(ws: Workspace) -> None:
    """Every process of the workspace is recorded as live and listens on its recorded port, and only there."""
    assert supervisor.owned_pids(ws) == live_pids(ws)
    with connect(ws.db_path) as con:
        live = store.live_processes(con)
    listening = listening_sockets()
    recorded = {(int(r["pid"]), int(r["port"])) for r in live.iter_rows(named=True)}
    found = {
        (pid, listening[i][1]) for pid in supervisor.owned_pids(ws) for i in sockets_of(pid) if i in listening
    }
    assert found == recorded


def interrupted(findings: list[dict[str, Any]], operation: str) -> dict[str, Any]:
    """The one interrupted ``operation`` among recover's findings."""
    found = [f for f in findings if f["kind"] == "interrupted" and f["operation"] == operation]
    assert len(found) == 1, findings
    return found[0]


def tree_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_segments_whole(ws: Workspace) -> int:
    """Every sample segment reads to its end (none half-written, no temp file left); returns the rows."""
    parts = sorted(ws.samples_dir.rglob("*.parquet"))
    assert not [p for p in ws.samples_dir.rglob("*") if p.is_file() and p.suffix != ".parquet"]
    rows = 0
    with duckdb.connect() as con:
        for part in parts:
            rows += con.execute("SELECT count(*) FROM read_parquet(?)", [str(part)]).fetchall()[0][0]
    return rows


# --------------------------------------------------------------------------- conversion


@pytest.fixture(scope="module")
def reference_v2(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, str]]:
    """What a whole conversion of a sample system writes (the converter is deterministic), by file."""
    root = tmp_path_factory.mktemp("reference_v2")
    cache: dict[str, dict[str, str]] = {}

    def reference(name: str) -> dict[str, str]:
        if name not in cache:
            source = SAMPLE_FLEET_DIR / name
            blueprint = load_v1_blueprint(source / "blueprint.yaml")
            result = convert_blueprint(blueprint, source, *probe_code(blueprint, source))
            cache[name] = tree_hashes(write_v2_system(result, root))
        return cache[name]

    return reference


def assert_conversions_agree(ws: Workspace, reference: Callable[[str], dict[str, str]]) -> set[str]:
    """Store and generated_systems_v2 agree; returns the systems converted.

    A system is converted in the store (state and a conversion row) exactly
    when its v2 folder exists, and then the folder is whole (file for file what
    a full conversion writes); no staging or set-aside folder is left.
    """
    assert not [p.name for p in ws.v2_dir.iterdir() if p.name.startswith(".")]
    folders = {p.name for p in ws.v2_dir.iterdir()}
    with connect(ws.db_path) as con:
        states = dict(con.execute("SELECT name, state FROM systems").fetchall())
        recorded = {r[0] for r in con.execute("SELECT DISTINCT system FROM conversions").fetchall()}
    converted = {n for n, s in states.items() if s != "inventoried"}
    assert converted == recorded == folders
    for name in folders:
        assert tree_hashes(ws.v2_dir / name) == reference(name), name
    return converted


CONVERT_KILLS = [
    # (function, call, before/after, what is on disk at that moment)
    ("engine.services:stage_v2_system", 3, "after"),  # third system staged, not recorded
    ("engine.services:finish_swap", 3, "before"),  # third system recorded, not swapped in
    ("engine.store.conversions:record_conversions", 4, "after"),  # fourth inside its transaction
]


@pytest.mark.parametrize(("spec", "nth", "when"), CONVERT_KILLS, ids=["staged", "recorded", "in-commit"])
def test_convert_killed_mid_batch_is_reported_and_completes_when_run_again(
    sample_ws: Workspace, reference_v2: Callable[[str], dict[str, str]], spec: str, nth: int, when: str
) -> None:
    ws = sample_ws
    assert kill_at(ws, spec, nth, when, "convert", *BATCH) == -signal.SIGKILL

    findings = services.recover(ws, actor="tester")
    found = interrupted(findings, "convert")
    done = nth - 1 if spec.endswith(("stage_v2_system", "record_conversions")) else nth
    assert found["system"] == BATCH[max(done - 1, 0)]  # the last one recorded (the first, before any)
    left = BATCH[done:]
    assert f"{done} of {len(BATCH)} converted" in found["next"]
    assert f"run convert again for {' '.join(left)}" in found["next"]
    assert assert_conversions_agree(ws, reference_v2) == set(BATCH[:done])
    event = services.list_events(ws, action="reconcile:interrupted", limit=1).row(0, named=True)
    assert found["next"] in event["reason"]
    shown = services.status(ws, found["system"]).interrupted
    assert shown is not None and shown["operation"] == "convert" and shown["next"] == found["next"]
    assert services.recover(ws, actor="tester") == []  # settled once, not again

    again = rerun(ws, "convert", *left)
    assert again.returncode == 0, again.stderr
    assert assert_conversions_agree(ws, reference_v2) == set(BATCH)


def test_reconverting_killed_between_the_two_renames_rolls_the_recorded_system_forward(
    sample_ws: Workspace, reference_v2: Callable[[str], dict[str, str]]
) -> None:
    """The old folder moved aside, the new not yet in: the store already says converted, so it goes in."""
    ws = sample_ws
    services.convert_systems(ws, BATCH, actor="tester")
    (ws.v2_dir / BATCH[1] / "stale.txt").write_text("from the previous conversion")
    # the second system's first rename is call 3: each re-conversion renames the old folder, then the new
    assert kill_at(ws, "pathlib:Path.rename", 3, "after", "convert", *BATCH) == -signal.SIGKILL
    assert not (ws.v2_dir / BATCH[1]).exists()  # the moment: neither folder at its place

    found = interrupted(services.recover(ws, actor="tester"), "convert")
    assert found["system"] == BATCH[1] and "2 of 5 converted" in found["next"]
    assert assert_conversions_agree(ws, reference_v2) == set(BATCH)
    assert not (ws.v2_dir / BATCH[1] / "stale.txt").exists()  # the new conversion, not the old
    again = rerun(ws, "convert", *BATCH[2:])
    assert again.returncode == 0, again.stderr
    assert assert_conversions_agree(ws, reference_v2) == set(BATCH)


@pytest.mark.parametrize("seed", [8])
def test_convert_all_killed_at_a_seeded_moment_leaves_store_and_files_agreeing(
    sample_ws: Workspace, reference_v2: Callable[[str], dict[str, str]], seed: int
) -> None:
    ws = sample_ws
    proc = cli(ws, "convert", "--all")
    deadline = time.monotonic() + 30
    while len([p for p in ws.v2_dir.iterdir() if not p.name.startswith(".")]) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, "conversion never got going"
        time.sleep(0.01)
    time.sleep(random.Random(seed).uniform(0.0, 1.5))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL

    found = interrupted(services.recover(ws, actor="tester"), "convert")
    converted = assert_conversions_agree(ws, reference_v2)
    assert 2 <= len(converted) < 52
    assert f"{len(converted)} of 52 converted" in found["next"]
    again = rerun(ws, "convert", "--all")
    assert again.returncode == 0, again.stderr
    assert len(assert_conversions_agree(ws, reference_v2)) == 52


# --------------------------------------------------------------------------- the reconcile race

RECOVER_ELSEWHERE = """
import json, sys
from pathlib import Path
from engine import services
from engine.workspace import Workspace
print(json.dumps(services.recover(Workspace(Path(sys.argv[1])), actor="other process"), default=str))
"""


def test_a_process_being_started_is_not_stopped_by_another_process_reconcile(
    sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spawned but not yet recorded: another process's reconcile must leave it alone, not stop an orphan."""
    ws = sample_ws.ensure()
    supervisor.write_routes_file(ws)
    spawned, release = threading.Event(), threading.Event()
    original = supervisor.connect

    def paused(*args: Any, **kwargs: Any) -> Any:  # start_process's first store write: right after the spawn
        if not spawned.is_set():
            spawned.set()
            release.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(supervisor, "connect", paused)
    started: dict[str, Any] = {}

    def start() -> None:
        started.update(
            supervisor.start_process(
                ws,
                system=None,
                role="gateway",
                runtime="gateway",
                args=[
                    "engine.deploy.gateway",
                    "--routes",
                    str(supervisor.routes_file(ws)),
                    "--samples-dir",
                    str(ws.samples_dir),
                ],
                served_dir=None,
                health_path="/_switchyard/health",
                actor="tester",
            )
        )

    starter = threading.Thread(target=start)
    starter.start()
    try:
        assert spawned.wait(20)
        (child,) = supervisor.owned_pids(ws)
        other = subprocess.run(
            [sys.executable, "-c", RECOVER_ELSEWHERE, str(ws.root)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=True,
        )
        assert json.loads(other.stdout) == []  # nothing to find: not an orphan, just not recorded yet
        assert supervisor.pid_alive(child)
    finally:
        release.set()
        starter.join(30)
    monkeypatch.setattr(supervisor, "connect", original)
    assert started["pid"] == child and supervisor.healthy(started["port"], "/_switchyard/health")
    assert_no_orphan(ws)
    services.down(ws, actor="tester")


def test_a_process_whose_starter_died_before_recording_it_is_stopped_as_an_orphan(ready_ws) -> None:
    ws = ready_ws(NAME)
    # the first process a deploy starts is the gateway... or blue: whichever, it is spawned, then the CLI dies
    assert kill_at(ws, "engine.store.deployments:insert_process", 1, "before", "deploy", NAME) == -9
    (child,) = supervisor.owned_pids(ws)
    findings = services.recover(ws, actor="tester")
    assert [(f["kind"], f["pid"]) for f in findings if f["kind"] == "orphan_stopped"] == [
        ("orphan_stopped", child)
    ]
    assert not supervisor.pid_alive(child)
    assert_no_orphan(ws)
    found = interrupted(findings, "deploy")
    assert "run deploy hello_world_api again" in found["next"]
    again = rerun(ws, "deploy", NAME)
    assert again.returncode == 0, again.stderr
    assert services.status(ws, NAME).state == "green_deployed"
    assert_no_orphan(ws)


# --------------------------------------------------------------------------- blue/green switch and rollback

RUN = "parallel-stored-go"


@pytest.fixture
def deployed_ws(ready_ws: Callable[[str], Workspace]) -> Workspace:
    """NAME deployed blue/green (blue, green and the gateway running); every process is stopped afterwards."""
    ws = ready_ws(NAME)
    services.deploy(ws, NAME, actor="lead")
    return ws


def judged_go(ws: Workspace) -> Workspace:
    """NAME judged GO on a stored run, so a promote may start (the verdict is not what is tested here)."""
    with connect(ws.db_path) as con:
        con.execute(
            "INSERT INTO runs (id, system, kind, status, actor, started_at, duration_s, bucket_s, rps) "
            "VALUES (?, ?, 'parallel', 'completed', 'lead', now(), 60, 1, 50)",
            [RUN, NAME],
        )
        result = {"verdict": "GO", "new_better": True, "reasons": ["a stored GO for the crash tests"]}
        store.insert_verdict(con, NAME, RUN, result, "lead")
        con.execute("UPDATE systems SET state = 'judged', version = version + 1 WHERE name = ?", [NAME])
    return ws


def kept_documents(ws: Workspace) -> dict[str, str]:
    """The backups and rollback plans, file by file: a crash must never touch them."""
    return {f"backups/{k}": v for k, v in tree_hashes(ws.backups_dir).items()} | {
        f"rollback/{k}": v for k, v in tree_hashes(ws.rollback_dir).items()
    }


def assert_failure_documents_named(ws: Workspace) -> None:
    """Every failure document on disk is named by a state change in the store (none written and forgotten)."""
    named: set[str] = set()
    for after in services.list_events(ws, system=NAME, action_prefix="state:", limit=500)["after"]:
        detail = json.loads(after) if isinstance(after, str) else (after or {})
        named |= {detail["failure_document"]} if detail.get("failure_document") else set()
        named |= set(detail.get("failure_documents") or [])
    on_disk = {p.relative_to(ws.root).as_posix() for p in ws.failures_dir.glob("*.json")}
    assert on_disk <= named, on_disk - named


def assert_route(ws: Workspace, active: str) -> None:
    """Traffic goes to ``active`` alone: no canary share, no mirror, no run recording samples."""
    route = services.status(ws, NAME).route
    assert route is not None
    assert (route["active_slot"], route["canary_weight"], route["mirror"], route["record_run"]) == (
        active,
        0.0,
        False,
        None,
    )


PROMOTE = ("promote", NAME, "--reason", "GO", "--monitor", "3", "--rps", "20", "--warm", "0")

PROMOTE_KILLS = {
    # point: (function, call, before/after), where traffic is afterwards
    "promoted": (("engine.deploy.strategies:_transition", 1, "after"), "blue"),  # switch recorded, not made
    "window-clean": (("engine.deploy.slots:stop_slot", 1, "before"), "green"),  # blue not stopped yet
    "blue-stopped": (("engine.deploy.slots:stop_slot", 1, "after"), "green"),  # blue gone, not yet done
}


@pytest.mark.parametrize("point", list(PROMOTE_KILLS))
def test_promote_killed_mid_switch_is_reported_and_resumes(deployed_ws: Workspace, point: str) -> None:
    ws = judged_go(deployed_ws)
    kept = kept_documents(ws)
    kill, active = PROMOTE_KILLS[point]
    assert kill_at(ws, *kill, *PROMOTE) == -signal.SIGKILL
    check_promote_recovery(ws, kept, active)


def test_promote_killed_in_the_monitor_window_is_reported_and_resumes(deployed_ws: Workspace) -> None:
    ws = judged_go(deployed_ws)
    kept = kept_documents(ws)
    proc = cli(ws, *PROMOTE)
    deadline = time.monotonic() + 30
    while True:  # killed once the window records samples: traffic on green, blue mirrored
        with connect(ws.db_path) as con:
            run = store.latest_run(con, NAME, "monitor", "running")
        if run is not None and list(
            (ws.samples_dir / f"system={NAME}" / f"run={run['id']}").glob("*.parquet")
        ):
            break
        assert time.monotonic() < deadline and proc.poll() is None, "the monitor window never recorded"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    check_promote_recovery(ws, kept, "green")
    with connect(ws.db_path) as con:
        assert store.get_run(con, run["id"])["status"] == "interrupted"


def check_promote_recovery(ws: Workspace, kept: dict[str, str], active: str) -> None:
    found = interrupted(services.recover(ws, actor="tester"), "promote")
    assert f"run promote {NAME} again" in found["next"], found
    assert_no_orphan(ws)
    assert_route(ws, active)  # where the switch had got to, nothing recording a run that ended
    status = services.status(ws, NAME)
    assert status.state in ("promoted", "monitoring")
    assert status.interrupted is not None and status.interrupted["next"] == found["next"]
    assert not any(
        r["status"] == "running" for r in services.run_evidence(ws, NAME).runs.iter_rows(named=True)
    )
    assert kept_documents(ws) == kept
    assert_segments_whole(ws)

    again = rerun(ws, *PROMOTE)
    assert again.returncode == 0, again.stderr
    status = services.status(ws, NAME)
    assert status.state == "done" and status.interrupted is None
    assert [p["role"] for p in status.processes] == ["green"]
    assert_no_orphan(ws)
    assert kept_documents(ws) == kept
    assert_segments_whole(ws)


ROLLBACK = ("rollback", NAME, "--reason", "customer impact")


def on_green(ws: Workspace) -> Workspace:
    """Traffic on green, as after a switch: the rollback's first step is to send it back to blue."""
    with connect(ws.db_path) as con:
        store.put_route(con, NAME, strategy="blue_green", active_slot="green")
    supervisor.publish_routes(ws, "tester")
    return ws


ROLLBACK_KILLS = {
    "nothing-done": ("engine.rollback.manager:_route_to_blue", 1, "before"),  # traffic still on green
    "traffic-on-blue": ("engine.deploy.slots:stop_slot", 1, "before"),  # green still running
    "green-stopped": ("engine.deploy.slots:start_blue", 1, "before"),  # blue not restored yet
    "two-blues": ("engine.deploy.supervisor:stop_process", 2, "before"),  # restored blue beside the old
    "documented": ("engine.rollback.manager:document_failure", 1, "after"),  # document, no state change
}


@pytest.mark.parametrize("point", list(ROLLBACK_KILLS))
def test_rollback_killed_midway_is_an_emergency_with_a_way_out(deployed_ws: Workspace, point: str) -> None:
    ws = on_green(deployed_ws)
    kept = kept_documents(ws)
    assert kill_at(ws, *ROLLBACK_KILLS[point], *ROLLBACK) == -signal.SIGKILL
    check_rollback_recovery(ws, kept)


@pytest.mark.parametrize("seed", [5])
def test_rollback_killed_at_a_seeded_moment_is_an_emergency_with_a_way_out(
    deployed_ws: Workspace, seed: int
) -> None:
    ws = on_green(deployed_ws)
    kept = kept_documents(ws)
    proc = cli(ws, *ROLLBACK)
    deadline = time.monotonic() + 30
    while True:
        with connect(ws.db_path) as con:
            if not store.running_operations(con, NAME).is_empty():
                break
        assert time.monotonic() < deadline and proc.poll() is None, "the rollback never started"
        time.sleep(0.02)
    time.sleep(random.Random(seed).uniform(0.0, 1.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    if proc.returncode == 0:
        pytest.skip("the rollback finished before the kill landed")
    check_rollback_recovery(ws, kept)


def test_a_stop_under_way_when_its_stopper_dies_is_finished_by_recover(deployed_ws: Workspace) -> None:
    """Killed just after green got its SIGTERM: green may still be draining when recover looks (CI saw
    it pass as live, then vanish under its ``running`` row). Its row ends ``stopped``, the stop it was
    getting, never ``running`` under a dying pid nor ``lost``."""
    ws = on_green(deployed_ws)
    kept = kept_documents(ws)
    with connect(ws.db_path) as con:
        green = store.live_slot(con, NAME, "green")
    assert green is not None
    assert kill_at(ws, "os:killpg", 1, "after", *ROLLBACK) == -signal.SIGKILL  # the first signal sent
    check_rollback_recovery(ws, kept)
    with connect(ws.db_path) as con:
        row = con.execute("SELECT status, stop_reason FROM processes WHERE id = ?", [green["id"]]).fetchone()
    assert row[0] == "stopped" and row[1], row
    assert not supervisor.pid_alive(int(green["pid"]))


def check_rollback_recovery(ws: Workspace, kept: dict[str, str]) -> None:
    found = interrupted(services.recover(ws, actor="tester"), "rollback")
    assert f"run rollback {NAME} again" in found["next"], found
    status = services.status(ws, NAME)
    assert status.state == "emergency"  # never silent: the old version was not verified
    assert status.interrupted is not None and status.interrupted["next"] == found["next"]
    assert "emergency" in services.list_events(ws, system=NAME, limit=5)["action"].to_list()
    assert_no_orphan(ws)
    if any(p["role"] == "blue" for p in status.processes):
        assert_route(ws, "blue")
    assert kept_documents(ws) == kept
    assert_failure_documents_named(ws)
    assert_segments_whole(ws)

    again = rerun(ws, *ROLLBACK)
    assert again.returncode == 0, again.stderr
    status = services.status(ws, NAME)
    assert status.state == "rolled_back" and status.interrupted is None
    assert [p["role"] for p in status.processes if p["role"] != "gateway"] == ["blue"]
    assert_route(ws, "blue")
    assert_no_orphan(ws)
    assert kept_documents(ws) == kept
    assert_failure_documents_named(ws)
