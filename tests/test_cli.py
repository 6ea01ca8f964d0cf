"""The CLI end to end: init, inventory, validate-v1, import-fleet, events; errors exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.workspace import SAMPLE_FLEET_DIR, Workspace


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    data = json.loads(out) if "--json" in argv and out.strip() else {}
    return code, data, err


def test_init_then_inventory_lists_the_sample_fleet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = str(tmp_path / "w")
    code, data, _ = run(capsys, "--workspace", ws, "init", "--json")
    assert code == 0 and data["created"] is True
    assert len(data["imported"]["loaded"]) == 52 and data["imported"]["rejected"] == []
    code, data, _ = run(capsys, "--workspace", ws, "inventory", "--json")
    assert code == 0
    assert data["total"] == 52
    assert data["counts"]["by_category"] == {
        "api": 12,
        "data_processing": 8,
        "experimental": 12,
        "monitoring": 5,
        "todo": 15,
    }
    assert data["counts"]["by_state"] == {"inventoried": 52}
    assert data["counts"]["by_phase"] == {"1": 3, "2": 12, "3": 25, "4": 12}
    first = data["systems"][0]
    assert first["name"] == "todo_api_system" and first["priority"] == "P0" and first["phase"] == 1


def test_validate_all_reports_measured_rate_and_reasons(
    sample_ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, _ = run(capsys, "--workspace", str(sample_ws.root), "validate-v1", "--all", "--json")
    assert code == 0
    assert 0.20 <= data["validation_success_rate"] <= 0.35
    assert data["systems_total"] == 52
    failing = [s for s in data["systems"] if not s["passed"]]
    assert failing and all(s["failed_checks"] for s in failing)
    assert all(c["message"] for s in failing for c in s["failed_checks"])


def test_validate_unknown_system_exits_2_with_json_error(
    sample_ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, err = run(
        capsys, "--workspace", str(sample_ws.root), "validate-v1", "no_such_system", "--json"
    )
    assert code == 2
    assert "no_such_system" in err and err.count("\n") == 1
    assert "no_such_system" in data["error"]["message"]


def test_commands_before_init_say_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--workspace", str(tmp_path / "none"), "inventory")
    assert code == 2 and "run 'python -m engine init'" in err


def test_import_fleet_reports_loaded_and_rejected(
    sample_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(SAMPLE_FLEET_DIR / "hello_world_api", fleet / "hello_world_api")
    shutil.copytree(SAMPLE_FLEET_DIR / "hello_world_api", fleet / "renamed_api")
    (fleet / "broken_api").mkdir()
    (fleet / "broken_api" / "blueprint.yaml").write_text("system: [", encoding="utf-8")
    code, data, _ = run(capsys, "--workspace", str(sample_ws.root), "import-fleet", str(fleet), "--json")
    assert code == 0
    assert data["updated"] == ["hello_world_api"] and data["loaded"] == []
    rejected = {r["folder"]: r["error"] for r in data["rejected"]}
    assert set(rejected) == {"broken_api", "renamed_api"}
    assert "valid YAML" in rejected["broken_api"] and "blueprint.yaml" in rejected["broken_api"]
    assert "folder name" in rejected["renamed_api"]


def test_import_of_nothing_usable_exits_2_and_changes_nothing(
    sample_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sample_ws.db_path.read_bytes()
    code, data, err = run(
        capsys, "--workspace", str(sample_ws.root), "import-fleet", str(tmp_path / "nope"), "--json"
    )
    assert code == 2 and "nope" in err
    assert data["error"]["source"].endswith("nope")
    code, data, _ = run(capsys, "--workspace", str(sample_ws.root), "inventory", "--json")
    assert data["total"] == 52
    assert sample_ws.db_path.read_bytes() == before


def test_events_record_imports_and_validations(
    sample_ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, data, _ = run(
        capsys, "--workspace", str(sample_ws.root), "events", "--system", "hello_world_api", "--json"
    )
    assert code == 0
    actions = {e["action"] for e in data["events"]}
    assert {"imported", "validated:v1"} <= actions
    assert all(e["actor"] for e in data["events"])


def test_human_output_is_a_table(sample_ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--workspace", str(sample_ws.root), "inventory", "--category", "monitoring"]) == 0
    out = capsys.readouterr().out
    assert "monitoring_" in out and "5 systems" in out


def test_convert_then_validate_moves_states_and_reports(
    sample_ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = str(sample_ws.root)
    code, data, _ = run(capsys, "--workspace", ws, "convert", "--phase", "1", "--json")
    assert code == 0 and [c["system"] for c in data["converted"]] == [
        "todo_api_system",
        "hello_world_api",
        "simple_rest_api",
    ]
    assert (sample_ws.v2_dir / "hello_world_api" / "blueprint.yaml").is_file()
    code, data, _ = run(capsys, "--workspace", ws, "validate", "--phase", "1", "--json")
    assert code == 0 and data["validation_success_rate"] == 1.0
    code, data, _ = run(capsys, "--workspace", ws, "inventory", "--json")
    assert data["counts"]["by_state"] == {"inventoried": 49, "validated": 3}
    code, data, _ = run(capsys, "--workspace", ws, "show", "hello_world_api", "--json")
    assert data["v2_yaml"].startswith("schema_version: 2.0.0")
    assert any(d["kind"] == "mapped" for d in data["report"]["decisions"])


def test_validate_before_convert_is_refused(sample_ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--workspace", str(sample_ws.root), "validate", "hello_world_api")
    assert code == 2 and "convert these systems first" in err


def test_a_reader_that_stops_early_is_not_a_failure(sample_ws: Workspace) -> None:
    """``... inventory | head -2``: the pipe closes before the table is written; no traceback, exit 0."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes anything
    try:
        done = subprocess.run(
            [sys.executable, "-m", "engine", "--workspace", str(sample_ws.root), "inventory"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
