"""Names are not paths: no system name makes the engine read or write outside its workspace.

Every use case that takes a system name refuses a name that is not a plain
identifier with an InputError before it touches anything (the store is
unchanged, nothing appears next to the workspace or inside it); and every
place that turns a name into a path (backups, rollback plans, failure
documents, generated systems, live slots, samples, logs) refuses it on its
own too, so a new caller cannot forget.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import services
from engine.cli import main
from engine.deploy import slots, supervisor
from engine.errors import InputError
from engine.rollback import backups, manager
from engine.store import samples as samples_store
from engine.workspace import Workspace, safe_child
from tests.reliability.fingerprint import listing, store_fingerprint

BAD_NAMES = [
    "../evil",
    "../../../../tmp/evil",
    "/etc/passwd",
    "/tmp/evil",
    "a/b",
    "..",
    ".",
    "",
    "x\x00y",
    "$(rm -rf ~)",
    "`touch pwned`",
    "evil; rm -rf /",
    "<script>alert(1)</script>",
    "evil\n",
    "C:\\evil",
    "~root",
    "x" * 65,
    "1starts_with_a_digit",
]
ACTOR = "tester"

SERVICES: dict[str, Callable[[Workspace, str], Any]] = {
    "convert_systems": lambda ws, n: services.convert_systems(ws, [n], actor=ACTOR),
    "validate_systems_v2": lambda ws, n: services.validate_systems_v2(ws, [n], actor=ACTOR),
    "validate_v1": lambda ws, n: services.validate_v1(ws, [n], actor=ACTOR),
    "select_systems": lambda ws, n: services.select_systems(ws, [n]),
    "system_detail": lambda ws, n: services.system_detail(ws, n),
    "show_system": lambda ws, n: services.show_system(ws, n),
    "blueprint_diagrams": lambda ws, n: services.blueprint_diagrams(ws, n),
    "checklist": lambda ws, n: services.checklist(ws, n, actor=ACTOR, ack="team_notified", note="x"),
    "deploy": lambda ws, n: services.deploy(ws, n, actor=ACTOR),
    "parallel_run": lambda ws, n: services.parallel_run(ws, n, actor=ACTOR, duration_s=1, bucket_s=1),
    "stop_run": lambda ws, n: services.stop_run(ws, n, actor=ACTOR),
    "judge": lambda ws, n: services.judge_system(ws, n, actor=ACTOR),
    "promote": lambda ws, n: services.promote(ws, n, actor=ACTOR, reason="go"),
    "rollback": lambda ws, n: services.rollback(ws, n, actor=ACTOR, reason="team decision"),
    "status": lambda ws, n: services.status(ws, n),
    "run_evidence": lambda ws, n: services.run_evidence(ws, n),
}
"""Every use case that takes a system name."""

PATHS: dict[str, Callable[[Workspace, str], Any]] = {
    "backup (backups/<name>_<date>)": lambda ws, n: backups.backup_path(ws, n),
    "backup made": lambda ws, n: backups.ensure_backup(ws, n, ws.root),
    "newest backup": lambda ws, n: backups.latest_backup(ws, n),
    "rollback plan (migration/rollback/<name>.md)": lambda ws, n: backups.ensure_rollback_plan(ws, n, {}),
    "failure document (migration/failures/)": lambda ws, n: manager.document_failure(
        ws, n, "r", ACTOR, None, {}
    ),
    "generated system (generated_systems_v2/<name>/)": lambda ws, n: safe_child(ws.v2_dir, n),
    "live slot (live/<name>/<slot>)": lambda ws, n: slots.slot_dir(ws, n, "green"),
    "green started from generated_systems_v2/<name>": lambda ws, n: slots.start_green(ws, n, ACTOR, 1.0),
    "samples (samples/system=<name>/)": lambda ws, n: samples_store.run_folder(ws, n, "run-1"),
    "process log (logs/<name>-<role>.log)": lambda ws, n: supervisor.start_process(
        ws,
        system=n,
        role="green",
        runtime="v2",
        args=["engine.no_such_module"],
        served_dir=None,
        health_path="/health",
        actor=ACTOR,
        timeout_s=1.0,
    ),
}
"""Every place a name becomes a path, called directly (defence in depth)."""


@pytest.fixture
def untouched(sample_ws: Workspace, tmp_path: Path) -> Iterator[Workspace]:
    """The sample workspace; afterwards nothing changed in it, beside it, or around it."""
    ws = sample_ws
    around = tmp_path.parent
    before = (store_fingerprint(ws), listing(tmp_path, recursive=True), listing(around, recursive=False))
    outside = {Path("/etc"), Path("/tmp")}
    outside_before = {p: listing(p, recursive=False) for p in outside}
    yield ws
    assert store_fingerprint(ws) == before[0]
    assert listing(tmp_path, recursive=True) == before[1]
    assert listing(around, recursive=False) - before[2] == set()
    for p in outside:  # the names above aim at /etc and /tmp; /tmp is shared, so only look for 'evil'
        assert {
            x for x in listing(p, recursive=False) - outside_before[p] if "evil" in x or "passwd" in x
        } == set()


@pytest.mark.parametrize("use_case", sorted(SERVICES))
def test_every_use_case_refuses_each_name_before_touching_anything(
    use_case: str, untouched: Workspace
) -> None:
    for name in BAD_NAMES:
        with pytest.raises(InputError) as caught:
            SERVICES[use_case](untouched, name)
        assert caught.value.source == "system name", (name, caught.value)
        assert caught.value.location == repr(name)


@pytest.mark.parametrize("place", sorted(PATHS))
def test_every_place_a_name_becomes_a_path_refuses_it_too(place: str, untouched: Workspace) -> None:
    for name in BAD_NAMES:
        with pytest.raises(InputError):
            PATHS[place](untouched, name)


@pytest.mark.parametrize("argv", [["status", "../evil"], ["rollback", "/etc/passwd", "--reason", "x"]])
def test_the_cli_says_so_in_one_line_and_exits_2(
    argv: list[str], untouched: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--workspace", str(untouched.root), *argv, "--actor", ACTOR]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "system name" in err and repr(argv[1]) in err


def test_a_plain_name_still_works(sample_ws: Workspace) -> None:
    """The guard refuses paths, not systems: a real one reads as before."""
    assert services.status(sample_ws, "todo_api_system").state == "inventoried"
    assert (
        backups.backup_path(sample_ws, "todo_api_system", dt.date(2025, 8, 1)).name
        == "todo_api_system_20250801"
    )
