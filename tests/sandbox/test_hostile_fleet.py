"""A fleet whose modules exit, raise, hang, allocate without bound, write outside their folder or end the
process on a request: each fails its check with its reason, the CLI and the app go on, the store is whole."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import access, services
from engine.judge.policy import DEFAULT_POLICY
from engine.workspace import REPO_ROOT, Workspace
from tests.app.conftest import open_page

HOSTILE = REPO_ROOT / "tests" / "data" / "fleets" / "hostile"
OUTSIDE = Path("/tmp/switchyard-hostile-fleet-was-here")
REASONS = {
    # system: (check, target, how its failure message starts)
    "exits_at_import": ("import", "components/front.py", "exited with status 7"),
    "raises_at_import": (
        "import",
        "components/front.py",
        "KeyError: 'FLEET_REGION_THAT_IS_NEVER_SET' (front.py:",
    ),
    "hangs_at_import": ("import", "components/front.py", "timed out after 2 s"),
    "eats_memory": ("import", "components/front.py", "exceeded the 64 MiB memory limit"),
    "writes_outside": ("import", "components/front.py", f"tried to write outside its folder: {OUTSIDE}"),
    "crashes_on_call": ("smoke", "front.ping", "exited with status 3"),
    "hoards_on_call": ("smoke", "front.ping", "component_error at front.ping: MemoryError: out of memory"),
}
SYSTEMS = {*REASONS, "quote_api"}
GATE_REASONS = {
    # system: what one of its failed gate checks says (the gate runs v1 and v2 in the sandbox too)
    "exits_at_import": "exited with status 7",
    "raises_at_import": "KeyError: 'FLEET_REGION_THAT_IS_NEVER_SET'",
    "hangs_at_import": "timed out after 2 s",
    "eats_memory": "MemoryError: out of memory",
    "writes_outside": f"tried to write outside its folder: {OUTSIDE}",
    "crashes_on_call": "exited with status 3",
    "hoards_on_call": "MemoryError: out of memory",
}


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """The hostile fleet with what a real fleet folder also holds: a .git folder and a stray file."""
    folder = tmp_path / "fleet"
    shutil.copytree(HOSTILE, folder)
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / "inventory.csv").write_text("name,owner\nquote_api,pricing-team\n")
    return folder


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    """The policy with tight sandbox limits, so the hang and the allocation end fast."""
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^timeout_s = 10\b", "timeout_s = 2", text, count=1)
    text = re.sub(r"(?m)^memory_mb = 512\b", "memory_mb = 64", text, count=1)
    assert "timeout_s = 2" in text and "memory_mb = 64" in text
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_store_whole(ws: Workspace, others: int = 0) -> None:
    """Every system imported and validated once, each hostile one failing its check with its reason."""
    inventory = services.inventory(ws)
    assert SYSTEMS <= set(inventory["name"]) and inventory.height == len(SYSTEMS) + others
    for name in SYSTEMS:
        validation = services.system_detail(ws, name).v1_validation
        assert validation is not None, name
        if name == "quote_api":
            assert validation.passed, validation.failures()
            continue
        check, target, reason = REASONS[name]
        found = [c for c in validation.failures() if c.name == check and c.target == target]
        assert found and found[0].message.startswith(reason), (name, validation.failures())
    events = services.list_events(ws)
    for action in ("imported", "validated:v1"):
        named = events.filter(events["action"] == action)["system"].to_list()
        assert sorted(n for n in named if n in SYSTEMS) == sorted(SYSTEMS), action
    assert not OUTSIDE.exists()


def test_the_cli_survives_every_hostile_module(fleet: Path, policy: Path, tmp_path: Path) -> None:
    before = files(fleet)
    ws = Workspace(tmp_path / "ws")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "engine", "--workspace", str(ws.root), *args, "--json"],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            env=os.environ | {"SWITCHYARD_POLICY": str(policy)},
            timeout=180,
        )
        assert done.returncode == 0, (args, done.stderr)
        return done

    report = json.loads(cli("init", "--fleet", str(fleet)).stdout)["imported"]
    assert sorted(report["loaded"]) == sorted(SYSTEMS) and report["rejected"] == []
    assert sorted(report["ignored"]) == [".git", "README.md", "inventory.csv", "notes"]
    assert_store_whole(ws)
    assert files(fleet) == before  # the checks ran on a scratch copy: the team's folder is untouched

    cli("convert", "--all")  # the probe runs each module to decide hosted or re-expressed
    cli("validate", "--all")  # the gate runs v1 and v2 side by side
    for name in SYSTEMS:
        shown = services.show_system(ws, name)
        if name == "quote_api":
            assert shown.state == "validated"
            continue
        assert shown.state == "validation_failed" and shown.v2_validation is not None
        messages = " | ".join(c.message for c in shown.v2_validation.failures())
        assert GATE_REASONS[name] in messages, (name, messages)
    assert not OUTSIDE.exists()
    assert files(fleet) == before


def test_the_app_survives_importing_the_hostile_fleet(
    sample_ws: Workspace, fleet: Path, policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    monkeypatch.setattr(services, "DEFAULT_POLICY", policy)
    page = open_page("inventory.py")
    page.text_input(key="import_folder").input(str(fleet)).run()
    page.button(key="import_fleet").click().run()
    assert not page.exception
    assert any("Loaded 8 new" in s.value for s in page.success)
    assert any("1 of 8 systems pass" in i.value for i in page.info)
    assert any("README.md" in c.value for c in page.caption)
    page.run()  # the app is still serving: the table now has the new systems
    page.selectbox(key="inventory_system").select("exits_at_import").run()
    assert not page.exception
    assert any("exited with status 7" in str(d.value["message"].to_list()) for d in page.dataframe[1:])
    assert_store_whole(sample_ws, others=52)


def test_the_app_converts_and_gates_the_hostile_fleet_and_goes_on(
    fleet: Path, policy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the Conversion and Validation pages (AppTest): the probe and the gate run each hostile
    module, each system is blocked with its reason on the page, and the app goes on serving."""
    monkeypatch.setattr(services, "DEFAULT_POLICY", policy)
    ws = Workspace(tmp_path / "ws")
    services.init_workspace(ws, fleet, actor="lead")
    access.write_roles(ws, access.Roles(operators=["lead", services.default_actor()]))
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(ws.root))

    conversion = open_page("conversion.py", timeout=120)
    conversion.radio(key="convert_scope").set_value("the whole fleet").run()
    conversion.button(key="convert").click().run()
    assert not conversion.exception
    assert any(f"Converted {len(SYSTEMS)} system(s)" in s.value for s in conversion.success)

    validation = open_page("validation.py", timeout=120)
    for name in sorted(SYSTEMS):
        validation.selectbox(key="validation_system").select(name).run()
        validation.button(key="validate_v2").click().run()
        assert not validation.exception, name
        assert not validation.error, (name, [e.value for e in validation.error])
        tables = [d.value for d in validation.dataframe if "v2_blocked_by" not in d.value.columns]
        gate = tables[0]  # the checks of the v2 gate (then the v1 validator's), failures first
        if name == "quote_api":
            assert gate["passed"].all()
            continue
        messages = " | ".join(gate["message"].astype(str))
        assert GATE_REASONS[name] in messages, (name, messages)
    validation.run()  # still serving: the blocked list names every hostile system
    blocked = set(validation.dataframe[0].value["name"])  # the blocked list comes first
    assert blocked == SYSTEMS - {"quote_api"}
    assert not OUTSIDE.exists()
