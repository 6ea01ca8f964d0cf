"""The bad input corpus (tests/data/bad/cases.toml) through the CLI and the pages.

Every case must give exit status 2 and one line on stderr naming the file and
the place (field path, line, row and column), no traceback, and leave the
store exactly as it was. Page-facing loaders (the Inventory page's fleet
import, the Validation and Conversion pages on a converted system, the Standup
and Timeline pages on the workspace's plan) must show a red message, never an
exception.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from engine import access, services
from engine.cli import main, printable
from engine.workspace import REPO_ROOT, Workspace
from tests.app.conftest import open_page
from tests.reliability.fingerprint import store_fingerprint

BAD = REPO_ROOT / "tests" / "data" / "bad"
CASES: list[dict[str, Any]] = tomllib.loads((BAD / "cases.toml").read_text(encoding="utf-8"))["case"]
V2_SYSTEM = "hello_world_api"
"""The system whose converted blueprint the v2 cases replace."""
BIG = 50 * 1024 * 1024


def case_id(case: dict[str, Any]) -> str:
    return case.get("file") or f"{case['feed']}:{case['generate']}"


def cases(*feeds: str) -> list[Any]:
    return [pytest.param(c, id=case_id(c)) for c in CASES if c["feed"] in feeds]


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def converted_template(sample_workspace_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample workspace with ``hello_world_api`` converted (so it has a v2 blueprint to break)."""
    root = tmp_path_factory.mktemp("converted") / "ws"
    shutil.copytree(sample_workspace_template, root)
    services.convert_systems(Workspace(root), [V2_SYSTEM], actor="fixture")
    return root


@pytest.fixture
def ws(converted_template: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(converted_template, root)
    return Workspace(root)


@pytest.fixture(scope="module")
def good_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A samples file that judges fine, for the policy cases."""
    path = tmp_path_factory.mktemp("samples") / "good.csv"
    rows = [
        f"2025-01-01T00:{i // 60:02d}:{i % 60:02d},{v},{10 + i % 7},true"
        for i in range(300)
        for v in ("old", "new")
    ]
    path.write_text("ts,version,latency_ms,ok\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_big(path: Path, head: str, comment: str) -> None:
    """A 50 MB file that starts like a real one and goes on in comments (generated, never committed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (comment + " padding " + "x" * 90 + "\n").encode()
    with path.open("wb") as out:
        out.write(head.encode())
        out.write(line * (BIG // len(line) + 1))


def generated(case: dict[str, Any], target: Path) -> Path:
    """Write a generated case at ``target`` (or around it) and return what is fed."""
    kind = case["generate"]
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "big":
        head = {
            "v1": (BAD / "v1" / "name_mismatch.yaml").read_text(encoding="utf-8"),
            "v2": "schema_version: 2.0.0\n",
            "policy": "[rule]\n",
            "plan": "start_date = 2026-11-25\n",
        }[case["feed"]]
        write_big(target, head, "#")
    elif kind == "folder":
        target.mkdir(parents=True)
    elif kind == "missing":
        pass
    elif kind == "file":
        target.write_text("not a folder\n", encoding="utf-8")
    elif kind == "empty_dir":
        target.mkdir(parents=True)
    elif kind == "symlink":
        target.mkdir(parents=True)
        (target / "sys_a").symlink_to(target.parent.parent, target_is_directory=True)
    elif kind == "non_utf8_name":
        target.mkdir(parents=True)
        folder = Path(os.fsdecode(os.fsencode(target) + b"/caf\xe9_api"))
        folder.mkdir()
        (folder / "blueprint.yaml").write_text("system: {}\n", encoding="utf-8")
    else:  # pragma: no cover - a typo in cases.toml
        raise AssertionError(f"unknown generate kind {kind!r}")
    return target


def prepare(case: dict[str, Any], ws: Workspace, scratch: Path, good_samples: Path) -> tuple[list[str], Path]:
    """Put the case where its feed expects it; returns the CLI arguments and the path the error must name."""
    source = BAD / case["file"] if "file" in case else None

    def put(fed: Path) -> Path:
        if fed.is_dir():
            shutil.rmtree(fed)
        fed.unlink(missing_ok=True)
        fed.parent.mkdir(parents=True, exist_ok=True)
        return generated(case, fed) if source is None else Path(shutil.copyfile(source, fed))

    feed = case["feed"]
    if feed == "v1":
        fed = put(scratch / "fleet" / "case_system" / "blueprint.yaml")
        return ["import-fleet", str(scratch / "fleet")], fed
    if feed == "v2":
        return ["validate", V2_SYSTEM], put(ws.v2_dir / V2_SYSTEM / "blueprint.yaml")
    if feed == "plan":
        return ["timeline"], put(ws.root / "plan.toml")
    if feed == "policy":
        fed = source or generated(case, scratch / "policy.toml")
        return ["judge", "--samples", str(good_samples), "--policy", str(fed)], fed
    if feed == "samples":
        fed = source or generated(case, scratch / "samples.csv")
        return ["judge", "--samples", str(fed)], fed
    if feed == "fleet":
        fed = source or generated(case, scratch / "fleet_dir")
        return ["import-fleet", str(fed)], fed
    raise AssertionError(f"unknown feed {feed!r}")  # pragma: no cover


def run_cli(capsys: pytest.CaptureFixture[str], ws: Workspace, argv: list[str]) -> tuple[int, str, str]:
    code = main(["--workspace", str(ws.root), *argv, "--json"])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, fed: Path, case: dict[str, Any]) -> None:
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert printable(str(fed), one_line=True) in err, f"the error does not name {fed}: {err}"
    assert case["where"] in err, f"the error does not name the place {case['where']!r}: {err}"
    assert case.get("says", "") in err, f"the error does not say {case.get('says')!r}: {err}"


# --------------------------------------------------------------------------- the corpus itself


def test_the_corpus_has_forty_cases_or_more_and_every_file_is_in_the_manifest() -> None:
    assert len(CASES) >= 40
    listed = {c["file"] for c in CASES if "file" in c}
    on_disk = {
        f"{kind.name}/{entry.name}" for kind in BAD.iterdir() if kind.is_dir() for entry in kind.iterdir()
    }
    assert on_disk == listed, on_disk ^ listed
    assert {c["feed"] for c in CASES} == {"v1", "v2", "policy", "plan", "samples", "fleet"}
    assert all(len(p.read_bytes()) < 1024 * 1024 for p in BAD.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("case", cases("v1", "v2", "policy", "plan", "samples", "fleet"))
def test_cli_exits_2_with_one_line_naming_file_and_place_and_the_store_is_unchanged(
    case: dict[str, Any],
    ws: Workspace,
    tmp_path: Path,
    good_samples: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv, fed = prepare(case, ws, tmp_path / "in", good_samples)
    before = store_fingerprint(ws)
    code, out, err = run_cli(capsys, ws, argv)
    assert code == 2, (out, err)
    assert_one_line_error(err, fed, case)
    payload = json.loads(out)["error"]
    assert printable(payload["message"], one_line=True) in err
    assert store_fingerprint(ws) == before


@pytest.mark.parametrize("case", cases("v1", "fleet"))
def test_init_on_a_bad_fleet_leaves_no_workspace_behind(
    case: dict[str, Any], tmp_path: Path, good_samples: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = Workspace(tmp_path / "new_ws")
    argv, fed = prepare(case, fresh, tmp_path / "in", good_samples)
    code = main(["--workspace", str(fresh.root), "init", "--fleet", argv[-1]])
    err = capsys.readouterr().err
    assert code == 2
    assert_one_line_error(err, fed, case)
    assert not fresh.root.exists()


@pytest.mark.parametrize("name", ["a\x7fb", "evil\n[operators]", "\x1b[31mred", "tab\there"])
def test_a_role_grant_for_a_name_with_control_characters_is_refused_and_changes_nothing(
    name: str, ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name TOML cannot hold raw would have made roles.toml unreadable, and locked every operator out."""
    roles_file = ws.root / "roles.toml"
    before, text = store_fingerprint(ws), roles_file.read_bytes()
    code = main(["--workspace", str(ws.root), "roles", "--grant", name, "--actor", "tester"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--grant" in err and "\x1b" not in err
    assert roles_file.read_bytes() == text and store_fingerprint(ws) == before
    access.write_roles(ws, access.load_roles(ws).with_role(name, access.Role.VIEWER))  # written anyway:
    assert name in access.load_roles(ws).viewers  # it loads back


SUBPROCESS_CASES = ["v1/binary_garbage.yaml", "v1/terminal_escape.yaml", "fleet:non_utf8_name", "v2:big"]


@pytest.mark.parametrize("case", [c for c in cases("v1", "v2", "fleet") if c.id in SUBPROCESS_CASES])
def test_a_real_process_prints_one_line_and_no_traceback(
    case: Any, ws: Workspace, tmp_path: Path, good_samples: Path
) -> None:
    """``python -m engine`` itself: stderr is one escaped line even for escape codes and undecodable names."""
    argv, fed = prepare(case, ws, tmp_path / "in", good_samples)
    before = store_fingerprint(ws)
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "--workspace", str(ws.root), *argv],
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=120,
        env={**os.environ, "SWITCHYARD_ACTOR": "tester"},
    )
    err = proc.stderr.decode("utf-8")  # strict: nothing undecodable reaches the terminal
    assert proc.returncode == 2, err
    assert "\x1b" not in err
    assert_one_line_error(err, fed, case)
    assert proc.stdout == b""
    assert store_fingerprint(ws) == before


def test_convert_refuses_a_v1_blueprint_edited_after_import_and_changes_nothing(
    ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every blueprint of a selection is read before the first is converted."""
    fleet = tmp_path / "fleet"
    for name in ("todo_api_system", "simple_rest_api"):
        source = Path(services.system_detail(ws, name).row["source_path"])
        shutil.copytree(source, fleet / name, ignore=shutil.ignore_patterns("__pycache__"))
    services.import_fleet(ws, fleet, actor="tester")  # the inventory now points at the copies
    bad = fleet / "simple_rest_api" / "blueprint.yaml"
    bad.write_text(bad.read_text(encoding="utf-8").replace("name: simple_rest_api", "name: other_api"))
    before = store_fingerprint(ws)
    code, _, err = run_cli(capsys, ws, ["convert", "todo_api_system", "simple_rest_api"])
    assert code == 2
    assert_one_line_error(err, bad, {"where": "system.name", "says": "(got 'other_api')"})
    assert store_fingerprint(ws) == before


def test_a_component_module_with_a_strange_methods_table_converts(tmp_path: Path) -> None:
    """The converter reads METHODS without running the module: what is not a shape means 'any message'."""
    from engine.convert.converter import convert_blueprint
    from engine.models.blueprint_v1 import load_v1_blueprint

    folder = tmp_path / "case_system"
    (folder / "components").mkdir(parents=True)
    shutil.copyfile(BAD / "v1" / "name_mismatch.yaml", folder / "blueprint.yaml")
    text = (folder / "blueprint.yaml").read_text(encoding="utf-8").replace("other_system", "case_system")
    (folder / "blueprint.yaml").write_text(text, encoding="utf-8")
    (folder / "components" / "gateway.py").write_text(
        "METHODS = {'hello': {'accepts': 5}, 7: {}, 'x': 'y'}\n", encoding="utf-8"
    )
    result = convert_blueprint(load_v1_blueprint(folder / "blueprint.yaml"), folder)
    gateway = next(c for c in result.blueprint.components if c.name == "gateway")
    assert gateway.recipe == "Hosted" and gateway.config["methods"] == {"hello": None, "x": None}


# --------------------------------------------------------------------------- the pages


@pytest.fixture
def page_env(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(ws.root))
    monkeypatch.setenv("SWITCHYARD_ACTOR", "tester")  # an operator of the sample workspace
    return ws


def red(page: AppTest) -> str:
    return "\n".join(e.value for e in page.error)


def test_inventory_import_shows_each_bad_fleet_in_red(
    page_env: Workspace, tmp_path: Path, good_samples: Path
) -> None:
    ws = page_env
    page = open_page("inventory.py")
    before = store_fingerprint(ws)
    page.text_input(key="import_folder").input("/").run()  # Import is on once a folder is typed
    for case in [p.values[0] for p in cases("v1", "fleet")]:
        if case.get("generate") == "non_utf8_name":
            continue  # no browser can type a path that is not text
        argv, fed = prepare(
            case, ws, tmp_path / case_id(case).replace("/", "_").replace(":", "_"), good_samples
        )
        page.text_input(key="import_folder").input(argv[-1])  # typed, then Import clicked: one run
        page.button(key="import_fleet").click().run()
        assert not page.exception, (case_id(case), page.exception)
        shown = red(page)
        assert case["where"] in shown and case.get("says", "") in shown, (case_id(case), shown)
    assert store_fingerprint(ws) == before


def test_validation_and_conversion_pages_show_each_bad_v2_blueprint_in_red(
    page_env: Workspace, tmp_path: Path, good_samples: Path
) -> None:
    ws = page_env
    validation, conversion = open_page("validation.py"), open_page("conversion.py")
    validation.selectbox(key="validation_system").select(V2_SYSTEM).run()
    conversion.selectbox(key="convert_system").select(V2_SYSTEM).run()
    fed = ws.v2_dir / V2_SYSTEM / "blueprint.yaml"
    before = store_fingerprint(ws, fed)
    for case in [p.values[0] for p in cases("v2")]:
        prepare(case, ws, tmp_path, good_samples)
        validation.button(key="validate_v2").click().run()
        conversion.run()
        for page in (validation, conversion):
            assert not page.exception, (case_id(case), page.exception)
            assert case["where"] in red(page), (case_id(case), red(page))
    assert store_fingerprint(ws, fed) == before


def test_standup_and_timeline_pages_show_each_bad_plan_in_red(
    page_env: Workspace, tmp_path: Path, good_samples: Path
) -> None:
    ws = page_env
    pages = [open_page("standup.py"), open_page("timeline.py")]
    for case in [p.values[0] for p in cases("plan")]:
        prepare(case, ws, tmp_path, good_samples)
        for page in pages:
            page.run()
            assert not page.exception, (case_id(case), page.exception)
            assert case["where"] in red(page), (case_id(case), red(page))
