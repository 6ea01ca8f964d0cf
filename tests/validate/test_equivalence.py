"""The gate proves equivalence: v1 and v2 get the same requests from a fresh start, and must answer alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine import access, services
from engine.cli import main
from engine.judge.policy import GatePolicy, load_policy
from engine.models.validation import Check, SystemValidation
from engine.validate.gate import gate_outcome
from engine.validate.live import equivalence_requests
from engine.workspace import REPO_ROOT, SAMPLE_FLEET_DIR, Workspace

NAME = "hello_world_api"
STYLES = REPO_ROOT / "tests" / "data" / "fleets" / "styles"


@pytest.fixture
def hello(tmp_path: Path) -> tuple[Workspace, Path]:
    """A workspace on a one-system fleet: a copy of hello_world_api the test may change."""
    fleet = tmp_path / "fleet"
    shutil.copytree(SAMPLE_FLEET_DIR / NAME, fleet / NAME)
    ws = Workspace(tmp_path / "ws")
    services.init_workspace(ws, fleet, actor="tester")
    access.write_roles(ws, access.Roles(operators=["tester", services.default_actor()]))
    return ws, fleet / NAME


def say_howdy(system: Path) -> None:
    greeter = system / "components" / "greeter.py"
    greeter.write_text(
        greeter.read_text(encoding="utf-8").replace('"Hello, "', '"Howdy, "'), encoding="utf-8"
    )


def cli(capsys: pytest.CaptureFixture[str], ws: Workspace, *argv: str) -> str:
    assert main(["--workspace", str(ws.root), *argv]) == 0
    return capsys.readouterr().out


def test_a_v1_that_answers_differently_fails_the_gate_with_both_answers_shown(
    hello: tuple[Workspace, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Converted while it said Hello, then its v1 greeter changed to say Howdy: v2 no longer answers alike."""
    ws, system = hello
    services.convert_systems(ws, [NAME], actor="tester")
    say_howdy(system)
    text = cli(capsys, ws, "validate", NAME)
    assert services.status(ws, NAME).state == "validation_failed"
    assert "equivalence [gateway.hello]: 28 of 28 requests answered differently" in text
    assert 'v1: 200 {"data": {"name": "Howdy, user-0!"}' in text
    assert 'v2: 200 {"data": {"name": "Hello, user-0!"}' in text
    assert "blocked at the gate:\n  hello_world_api: equivalence gateway.hello" in text
    shown = cli(capsys, ws, "show", NAME)
    assert "## v2 gate: 11/12 checks passed" in shown and '"Howdy, user-0!"' in shown
    failed = next(c for c in services.show_system(ws, NAME).v2_validation.failures())  # type: ignore[union-attr]
    assert failed.name == "equivalence" and len(failed.evidence or []) == 3
    first = failed.evidence[0]  # type: ignore[index]
    assert first["request"] == {"name": "user-0"} and first["v1"]["status"] == first["v2"]["status"] == 200
    assert services.checklist(ws, NAME, actor="tester", ack="team_notified").ready_to_migrate is False


def test_converted_again_the_changed_code_is_hosted_and_passes(hello: tuple[Workspace, Path]) -> None:
    """The issue's Howdy copy: it converted to a recipe that said Hello; now its code is kept."""
    ws, system = hello
    say_howdy(system)
    services.convert_systems(ws, [NAME], actor="tester")
    result = services.validate_systems_v2(ws, [NAME], actor="tester").systems[0]
    assert result.passed, result.failures()
    equivalence = next(c for c in result.checks if c.name == "equivalence")
    assert equivalence.message == "28 requests answered alike by v1 and v2"


def test_code_that_dies_on_a_request_fails_the_check_with_where_and_how(
    hello: tuple[Workspace, Path],
) -> None:
    ws, system = hello
    greeter = system / "components" / "greeter.py"
    greeter.write_text(
        greeter.read_text(encoding="utf-8").replace(
            "        value = str(message[field])\n",
            "        value = str(message[field])\n"
            "        if value == 'x' * 300:\n"
            "            import os; os._exit(3)\n",
        ),
        encoding="utf-8",
    )
    services.convert_systems(ws, [NAME], actor="tester")
    result = services.validate_systems_v2(ws, [NAME], actor="tester").systems[0]
    failed = {c.name: c.message for c in result.failures()}
    assert set(failed) == {"equivalence"}, failed  # the smoke's tidy requests still pass
    assert (
        "could not be compared: v1 exited with status 3 while sending gateway.hello" in failed["equivalence"]
    )
    assert "v2 exited with status 3" in failed["equivalence"]
    assert not gate_outcome(result).success


def test_requests_are_the_parallel_runs_own_then_varied_values() -> None:
    requests = equivalence_requests({"hello": {"name": "str"}, "sum": {"n": "int", "x": "float"}})
    assert requests[:2] == [("hello", {"name": "user-0"}), ("sum", {"n": 0, "x": 0.0})]
    names = {m["name"] for ep, m in requests if ep == "hello"}
    assert {"", "Zoë ✓ 東京 🚀", "x" * 300} <= names
    numbers = {m["n"] for ep, m in requests if ep == "sum"}
    assert {-7, 0, 2**53 + 1} <= numbers
    assert all(isinstance(m["x"], float) for ep, m in requests if ep == "sum")


def checks(*failing: str, passing: int = 20) -> SystemValidation:
    return SystemValidation(
        system="s",
        blueprint_version="v2",
        checks=[Check(name="ok", passed=True)] * passing
        + [Check(name=n, target="t", passed=False) for n in failing],
    )


def test_a_blocking_check_blocks_whatever_the_share_and_the_threshold_is_the_policys(tmp_path: Path) -> None:
    assert checks("schema_compatible").validation_success_rate > 0.8
    assert gate_outcome(checks("schema_compatible")).success  # not blocking: the seed's share decides
    for blocking in ("smoke", "equivalence", "import"):
        outcome = gate_outcome(checks(blocking))
        assert not outcome.success and outcome.blocked_by == [f"{blocking} t"]
    assert gate_outcome(checks("smoke"), GatePolicy(blocking_checks=[])).success
    policy = tmp_path / "policy.toml"
    policy.write_text("[gate]\nmin_validation_success_rate = 0.99\nblocking_checks = []\n", encoding="utf-8")
    gate = load_policy(policy).gate
    outcome = gate_outcome(checks("schema_compatible"), gate)
    assert not outcome.success and outcome.blocked_by == ["95% of checks passed, below 99%"]


def test_policy_refuses_an_unknown_blocking_check(tmp_path: Path) -> None:
    from engine.errors import InputError

    policy = tmp_path / "policy.toml"
    policy.write_text('[gate]\nblocking_checks = ["smoke", "vibes"]\n', encoding="utf-8")
    with pytest.raises(InputError, match="gate.blocking_checks"):
        load_policy(policy)


def test_what_the_gate_compares_is_the_parallel_runs_digest() -> None:
    """Key order does not count, status does: the gateway's own comparison of a mirrored pair."""
    from engine.validate.live import SideRun, equivalence_checks

    def side(*answers: tuple[int, object]) -> SideRun:
        return SideRun([{"answer": {"status": s, "body": json.dumps(b)}} for s, b in answers], True, None)

    requests = [("a", {}), ("a", {"k": 1})]
    same = equivalence_checks(
        "e", requests, side((200, {"x": 1, "y": 2}), (502, {})), side((200, {"y": 2, "x": 1}), (502, {}))
    )
    assert same[0].passed and "1 of them failures, alike" in same[0].message
    differ = equivalence_checks(
        "e", requests, side((200, {"x": 1}), (200, {})), side((200, {"x": 1}), (502, {}))
    )
    assert not differ[0].passed and differ[0].evidence[0]["position"] == 1  # type: ignore[index]


def test_hosted_code_that_ends_its_process_at_import_fails_the_gate_and_nothing_else_dies(
    hello: tuple[Workspace, Path],
) -> None:
    ws, system = hello
    greeter = system / "components" / "greeter.py"
    greeter.write_text("import os\nos._exit(7)\n" + greeter.read_text(encoding="utf-8"), encoding="utf-8")
    services.convert_systems(ws, [NAME], actor="tester")
    result = services.validate_systems_v2(ws, [NAME], actor="tester").systems[0]
    failed = {c.name: c.message for c in result.failures()}
    assert failed["import"] == "the code exited with status 7 while importing components/greeter.py"
    assert failed["smoke"].startswith("not run: the code exited with status 7")
    assert "v1 exited with status 7 while loading v1" in failed["equivalence"]
    assert services.status(ws, NAME).state == "validation_failed"


def test_state_kept_in_the_working_folder_starts_fresh_on_both_sides(tmp_path: Path) -> None:
    """cwd_writer counts visits in visits.json in its working folder. v2's smoke requests run first; had
    the equivalence sequence run in the same folder, v2 would count 4, 5, 6 where v1 counts 1, 2, 3."""
    fleet = tmp_path / "fleet"
    shutil.copytree(STYLES / "cwd_writer", fleet / "cwd_writer")
    ws = Workspace(tmp_path / "ws")
    services.init_workspace(ws, fleet, actor="tester")
    access.write_roles(ws, access.Roles(operators=["tester", services.default_actor()]))
    services.convert_systems(ws, ["cwd_writer"], actor="tester")
    result = services.validate_systems_v2(ws, ["cwd_writer"], actor="tester").systems[0]
    assert result.passed, result.failures()
    equivalence = next(c for c in result.checks if c.name == "equivalence")
    assert equivalence.message.endswith("answered alike by v1 and v2")
    assert not list(fleet.rglob("visits.json"))  # both sides wrote in scratch copies only
