"""Roles: a viewer changes nothing through the services or the CLI; operators act; roles.toml is checked."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import access, services
from engine.access import Role, Roles
from engine.cli import main
from engine.errors import AccessDeniedError, InputError, StateConflictError
from engine.store import connect
from engine.workspace import REPO_ROOT, SAMPLE_FLEET_DIR, Workspace

VIEWER = "Visitor"
NAME = "hello_world_api"


def snapshot(ws: Workspace) -> dict[str, Any]:
    """Every table's rows and every file but the database itself: all that a change could touch."""
    with connect(ws.db_path) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        rows = {t: sorted(map(repr, con.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables}
    files = {
        str(p.relative_to(ws.root)): p.read_bytes()
        for p in sorted(ws.root.rglob("*"))
        if p.is_file() and not p.name.startswith("switchyard.duckdb")
    }
    return {"tables": rows, "files": files}


GUARDED: dict[str, Callable[[Workspace, str | None], Any]] = {
    "init (again)": lambda ws, a: services.init_workspace(ws, actor=a),
    "import_fleet": lambda ws, a: services.import_fleet(ws, SAMPLE_FLEET_DIR, actor=a),
    "validate_v1": lambda ws, a: services.validate_v1(ws, [NAME], actor=a),
    "convert_systems": lambda ws, a: services.convert_systems(ws, [NAME], actor=a),
    "validate_systems_v2": lambda ws, a: services.validate_systems_v2(ws, [NAME], actor=a),
    "checklist": lambda ws, a: services.checklist(ws, NAME, actor=a),
    "checklist --ack": lambda ws, a: services.checklist(ws, NAME, actor=a, ack="team_notified"),
    "deploy": lambda ws, a: services.deploy(ws, NAME, actor=a),
    "parallel_run": lambda ws, a: services.parallel_run(ws, NAME, actor=a, duration_s=1, bucket_s=1),
    "stop_run": lambda ws, a: services.stop_run(ws, NAME, actor=a),
    "judge": lambda ws, a: services.judge_system(ws, NAME, actor=a),
    "promote": lambda ws, a: services.promote(ws, NAME, actor=a, reason="go"),
    "rollback": lambda ws, a: services.rollback(ws, NAME, actor=a, reason="team decision"),
    "down": lambda ws, a: services.down(ws, actor=a),
    "set_role": lambda ws, a: services.set_role(ws, VIEWER, "operator", actor=a),
}


@pytest.mark.parametrize("use_case", list(GUARDED))
@pytest.mark.parametrize("how", ["actor=", "$SWITCHYARD_ACTOR"])
def test_a_viewer_changes_nothing_through_any_service(
    sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch, use_case: str, how: str
) -> None:
    actor: str | None = VIEWER
    if how == "$SWITCHYARD_ACTOR":
        monkeypatch.setenv("SWITCHYARD_ACTOR", VIEWER)
        actor = None  # the services' default: whoever the environment says
    before = snapshot(sample_ws)
    with pytest.raises(AccessDeniedError) as caught:
        GUARDED[use_case](sample_ws, actor)
    assert snapshot(sample_ws) == before
    message = str(caught.value)
    assert f"'{VIEWER}' is a viewer" in message
    assert str(sample_ws.root / "roles.toml") in message and "--grant Visitor --role operator" in message


def test_a_blank_actor_is_nobody_even_when_everyone_is_an_operator(sample_ws: Workspace) -> None:
    access.write_roles(sample_ws, Roles(default_role=Role.OPERATOR))
    assert access.role_of(sample_ws, "anyone") is Role.OPERATOR
    with pytest.raises(AccessDeniedError, match="is a viewer"):
        services.convert_systems(sample_ws, [NAME], actor="  ")


def test_operators_act_and_names_match_without_case(sample_ws: Workspace) -> None:
    services.set_role(sample_ws, " Dana@Example.com ", "operator", actor="lead")
    converted = services.convert_systems(sample_ws, [NAME], actor="dana@example.COM")
    assert converted[0].state == "converted"
    event = services.list_events(sample_ws, action="role:operator").row(0, named=True)
    assert event["actor"] == "lead" and event["reason"] == "Dana@Example.com is now operator"
    assert json.loads(event["before"])["role"] == "viewer"
    assert access.load_roles(sample_ws).operators[-1] == "Dana@Example.com"


def test_demoting_moves_a_name_between_lists_but_never_removes_the_last_operator(
    sample_ws: Workspace,
) -> None:
    roles = services.set_role(sample_ws, "LEAD", "viewer", actor="lead")
    assert "lead" not in [n.lower() for n in roles.operators] and roles.viewers == ["LEAD"]
    with pytest.raises(AccessDeniedError):
        services.convert_systems(sample_ws, [NAME], actor="lead")
    access.write_roles(sample_ws, Roles(operators=["tester"]))
    with pytest.raises(StateConflictError, match="last operator"):
        services.set_role(sample_ws, "tester", "viewer", actor="tester")
    with pytest.raises(InputError, match="operator or viewer"):
        services.set_role(sample_ws, "x", "admin", actor="tester")


def test_a_new_workspace_names_its_creator_and_everyone_else_is_a_viewer(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(SAMPLE_FLEET_DIR / NAME, fleet / NAME)
    ws = Workspace(tmp_path / "w")
    services.init_workspace(ws, fleet, actor="Ann")
    assert access.load_roles(ws) == Roles(default_role=Role.VIEWER, operators=["Ann"], viewers=[])
    assert services.role_of(ws, "ann") is Role.OPERATOR and services.role_of(ws, "bob") is Role.VIEWER
    with pytest.raises(AccessDeniedError, match="re-initialise"):
        services.init_workspace(ws, fleet, actor="bob")
    assert services.init_workspace(ws, fleet, actor="ann").imported.updated == [NAME]


def test_first_start_writes_the_roles_file_for_the_os_user_and_acts_as_the_engine(
    empty_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHYARD_ACTOR", "server-owner")
    assert services.ensure_initialised(empty_ws)  # acts as "switchyard", who is no operator: not checked
    assert access.load_roles(empty_ws).operators == ["server-owner"]
    assert services.list_events(empty_ws, action="imported", limit=1)["actor"][0] == "switchyard"


def test_an_old_workspace_gets_its_roles_file_on_the_next_start(
    sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    access.roles_path(sample_ws).unlink()
    with pytest.raises(AccessDeniedError, match="not written yet"):
        services.convert_systems(sample_ws, [NAME], actor="tester")
    monkeypatch.setenv("SWITCHYARD_ACTOR", "tester")
    assert services.ensure_initialised(sample_ws) is False  # nothing re-imported
    assert services.convert_systems(sample_ws, [NAME])[0].state == "converted"


@pytest.mark.parametrize(
    ("text", "location"),
    [
        ('default_role = "admin"\n', "default_role"),
        ('operator = ["ann"]\n', "operator"),  # a typo is not silently ignored
        ('operators = ["ann", ""]\n', "operators[1]"),
        ('operators = ["ann"]\nviewers = ["ANN"]\n', "viewers"),
        ("operators = [ann]\n", "line 1, column 14"),  # the line and column of the TOML error
    ],
)
def test_a_malformed_roles_file_is_an_input_error_naming_file_and_key(
    sample_ws: Workspace, text: str, location: str
) -> None:
    access.roles_path(sample_ws).write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        services.convert_systems(sample_ws, [NAME], actor="tester")
    assert caught.value.source == str(access.roles_path(sample_ws))
    assert caught.value.location == location


def test_the_template_in_data_is_a_valid_roles_file_with_the_safe_default(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    shutil.copy(REPO_ROOT / "data" / "roles.toml", access.roles_path(ws))
    roles = access.load_roles(ws)
    assert roles.default_role is Role.VIEWER
    assert roles.role_of("ALICE") is Role.OPERATOR and roles.role_of("mallory") is Role.VIEWER
    assert Roles() == Roles(default_role=Role.VIEWER, operators=[], viewers=[])


def test_written_roles_read_back_the_same(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    roles = Roles(operators=['O"Brien', "zoë@example.com"], viewers=["back\\slash"])
    access.write_roles(ws, roles)
    assert access.load_roles(ws) == roles


# --------------------------------------------------------------------------- CLI


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_viewer_exits_2_with_one_line_and_nothing_changes(
    sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SWITCHYARD_ACTOR", VIEWER)
    before = snapshot(sample_ws)
    for argv in (["convert", NAME], ["promote", NAME, "--reason", "go"], ["down"], ["validate-v1", "--all"]):
        code, out, err = cli(capsys, "--workspace", str(sample_ws.root), *argv)
        assert code == 2, argv
        assert err.count("\n") == 1 and err.startswith(f"error: '{VIEWER}' is a viewer"), err
    code, out, _ = cli(capsys, "--workspace", str(sample_ws.root), "judge", NAME, "--json")
    assert code == 2 and "is a viewer and may not judge" in json.loads(out)["error"]["message"]
    assert snapshot(sample_ws) == before
    code, out, _ = cli(capsys, "--workspace", str(sample_ws.root), "inventory", "--json")  # reading is free
    assert code == 0 and json.loads(out)["total"] == 52


def test_cli_roles_lists_and_an_operator_grants(
    sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = str(sample_ws.root)
    monkeypatch.setenv("SWITCHYARD_ACTOR", VIEWER)
    code, out, _ = cli(capsys, "--workspace", ws, "roles", "--json")
    assert code == 0
    listed = json.loads(out)
    assert listed["your_role"] == "viewer" and "lead" in listed["operators"]
    assert cli(capsys, "--workspace", ws, "roles", "--grant", VIEWER)[0] == 2  # no granting oneself
    code, out, _ = cli(capsys, "--workspace", ws, "roles", "--grant", VIEWER, "--actor", "lead")
    assert code == 0 and "you (lead): operator" in out
    assert cli(capsys, "--workspace", ws, "convert", NAME)[0] == 0
    assert services.list_events(sample_ws, action="state:converted")["actor"].to_list() == [VIEWER]


# --------------------------------------------------------------------------- visitors nobody identified


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # a dual-stack server's view of an IPv4 loopback peer
        ("203.0.113.7", False),
        ("::ffff:192.0.2.2", False),
        ("10.0.0.5", False),  # a private network is still another machine
        ("fe80::1%eth0", False),
        ("2001:db8::1", False),
        ("localhost", False),  # a name, not an address: never trusted as loopback
        ("", False),
    ],
)
def test_loopback_is_this_machine_only(address: str, local: bool) -> None:
    assert access.is_loopback(address) is local
    visitor = access.network_visitor(address)
    assert (visitor is None) is local
    if visitor is not None:
        assert access.is_anonymous(visitor) and address.strip() in visitor


def test_no_address_is_this_machine() -> None:
    """Streamlit reports 127.0.0.1 and ::1 as no address at all."""
    assert access.network_visitor(None) is None


def test_an_anonymous_visitor_is_a_viewer_whatever_the_roles_file_says(sample_ws: Workspace) -> None:
    access.write_roles(sample_ws, Roles(default_role=Role.OPERATOR))
    visitor = access.network_visitor("203.0.113.7")
    assert visitor is not None and access.role_of(sample_ws, visitor) is Role.VIEWER
    assert access.role_of(sample_ws, "anonymous (not logged in)") is Role.VIEWER
    before = snapshot(sample_ws)
    with pytest.raises(AccessDeniedError) as caught:
        services.convert_systems(sample_ws, [NAME], actor=visitor)
    assert "nobody identified this visitor" in str(caught.value) and "--grant" not in str(caught.value)
    assert snapshot(sample_ws) == before


def test_anonymous_names_cannot_be_made_operators(sample_ws: Workspace) -> None:
    with pytest.raises(InputError, match="not an anonymous visitor"):
        services.set_role(sample_ws, "Anonymous from 203.0.113.7", "operator", actor="lead")
    access.roles_path(sample_ws).write_text('operators = ["lead", "anonymous"]\n', encoding="utf-8")
    with pytest.raises(InputError) as caught:
        services.convert_systems(sample_ws, [NAME], actor="lead")
    assert caught.value.location == "operators"
    assert access.Roles(operators=["anonymously-named-bot"]).role_of("anonymously-named-bot") is Role.OPERATOR
