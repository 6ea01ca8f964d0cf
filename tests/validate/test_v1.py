"""The v1 validator finds each kind of planted defect, for real, and the fleet rate lands near the seed's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.fleet.generator import plan_fleet
from engine.validate import v1
from engine.validate.v1 import validate_v1_fleet, validate_v1_system
from engine.workspace import SAMPLE_FLEET_DIR


@pytest.fixture(scope="module")
def fleet():
    return validate_v1_fleet(SAMPLE_FLEET_DIR)


def test_fleet_rate_is_measured_close_to_the_seed(fleet) -> None:
    assert len(fleet.systems) == 52
    assert 0.20 <= fleet.validation_success_rate <= 0.35


def test_every_planted_defect_is_found_and_no_clean_system_fails(fleet) -> None:
    planted = {b.name: b.defects for b in plan_fleet()}
    for result in fleet.systems:
        assert result.passed == (not planted[result.system]), (result.system, result.failures())


def test_pilot_systems_pass_every_check(fleet) -> None:
    by_name = {s.system: s for s in fleet.systems}
    for name in ("todo_api_system", "hello_world_api", "simple_rest_api"):
        assert by_name[name].passed
        assert any(c.name == "smoke" for c in by_name[name].checks)


def copy_system(tmp_path: Path, name: str = "simple_rest_api") -> Path:
    target = tmp_path / name
    shutil.copytree(SAMPLE_FLEET_DIR / name, target)
    return target


def failed(system_dir: Path) -> set[tuple[str, str | None]]:
    return {(c.name, c.target) for c in validate_v1_system(system_dir).failures()}


def test_missing_import_fails_import_and_smoke(tmp_path: Path) -> None:
    system = copy_system(tmp_path)
    module = system / "components" / "items.py"
    module.write_text("import no_such_module_here\n" + module.read_text(encoding="utf-8"), encoding="utf-8")
    result = validate_v1_system(system)
    bad = {c.name for c in result.failures()}
    assert "import" in bad and "smoke" in bad
    assert any("no_such_module_here" in c.message for c in result.failures())


def test_call_to_missing_component(tmp_path: Path) -> None:
    system = copy_system(tmp_path)
    bp = system / "blueprint.yaml"
    bp.write_text(
        bp.read_text(encoding="utf-8").replace("item_store.list", "ghost_store.list"), encoding="utf-8"
    )
    assert ("call_target", "ghost_store.list") in failed(system)


def test_call_to_missing_method(tmp_path: Path) -> None:
    system = copy_system(tmp_path)
    for path in (system / "blueprint.yaml", system / "components" / "items.py"):
        path.write_text(
            path.read_text(encoding="utf-8").replace("item_store.list", "item_store.fetch_all"),
            encoding="utf-8",
        )
    found = failed(system)
    assert ("call_target", "item_store.fetch_all") in found
    assert any(name == "smoke" for name, _ in found)


def test_message_shape_mismatch(tmp_path: Path) -> None:
    system = copy_system(tmp_path)
    for path in (system / "blueprint.yaml", system / "components" / "items.py"):
        text = path.read_text(encoding="utf-8").replace("wrap: record", "wrap: item")
        path.write_text(
            text.replace("'item_store.insert': {'record': 'dict'}", "'item_store.insert': {'item': 'dict'}"),
            encoding="utf-8",
        )
    found = failed(system)
    assert ("message_shape", "item_store.insert") in found
    assert ("smoke", "gateway.create_item") in found


def test_component_raising_is_a_failed_smoke_not_a_crash(tmp_path: Path) -> None:
    system = copy_system(tmp_path, "hello_world_api")
    module = system / "components" / "greeter.py"
    module.write_text(
        module.read_text(encoding="utf-8").replace(
            "value = str(message[field])", "value = str(message[field]) / 0"
        ),
        encoding="utf-8",
    )
    result = validate_v1_system(system)
    smoke = [c for c in result.checks if c.name == "smoke"]
    assert smoke and not smoke[0].passed and "TypeError" in smoke[0].message


def test_hanging_component_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(v1, "SMOKE_TIMEOUT_S", 0.2)
    system = copy_system(tmp_path, "hello_world_api")
    module = system / "components" / "greeter.py"
    module.write_text(
        module.read_text(encoding="utf-8").replace(
            "    def process(self, message):\n",
            "    def process(self, message):\n        import time; time.sleep(1)\n",
        ),
        encoding="utf-8",
    )
    smoke = [c for c in validate_v1_system(system).checks if c.name == "smoke"]
    assert "no answer within" in smoke[0].message


def test_missing_component_file_is_a_failed_import(tmp_path: Path) -> None:
    system = copy_system(tmp_path, "hello_world_api")
    (system / "components" / "greeter.py").unlink()
    assert ("import", "components/greeter.py") in failed(system)
