"""Conversion keeps a component's code unless its recipe is shown (in a sandbox) to answer the same."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import pytest

from engine.convert.converter import ConversionResult, convert_blueprint
from engine.convert.probe import probe_code
from engine.convert.writer import write_v2_system
from engine.models import load_v1_blueprint, load_v2_blueprint
from engine.runtime.port_system import PortSystem
from engine.workspace import SAMPLE_FLEET_DIR


def copy_system(tmp_path: Path, name: str) -> Path:
    target = tmp_path / "fleet" / name
    shutil.copytree(SAMPLE_FLEET_DIR / name, target)
    return target


def convert(system: Path) -> ConversionResult:
    v1 = load_v1_blueprint(system / "blueprint.yaml")
    facts, notes = probe_code(v1, system)
    return convert_blueprint(v1, system, facts, notes)


def how(result: ConversionResult) -> dict[str, tuple[str, str]]:
    """Per component: 'hosted' or 're_expressed', and why."""
    done = [d for d in result.report.decisions if d.kind in ("hosted", "re_expressed")]
    assert len(done) == len(result.blueprint.components)  # one decision per component, no more
    return {d.component: (d.kind, d.message) for d in done if d.component}


def test_recipes_that_answer_as_the_code_does_replace_it(tmp_path: Path) -> None:
    result = convert(copy_system(tmp_path, "hello_world_api"))
    done = how(result)
    assert {c: k for c, (k, _) in done.items()} == {"gateway": "re_expressed", "greeter": "re_expressed"}
    assert "same answers" in done["greeter"][1] and "Transformer" in done["greeter"][1]
    assert result.code == {}


def test_changed_code_is_hosted_and_still_answers_as_it_did(tmp_path: Path) -> None:
    system = copy_system(tmp_path, "hello_world_api")
    greeter = system / "components" / "greeter.py"
    greeter.write_text(
        greeter.read_text(encoding="utf-8").replace('"Hello, "', '"Howdy, "'), encoding="utf-8"
    )
    result = convert(system)
    done = how(result)
    assert done["greeter"][0] == "hosted" and done["gateway"][0] == "re_expressed"
    assert "Transformer answered differently on process" in done["greeter"][1]
    assert "Howdy, smoke!" in done["greeter"][1] and "Hello, smoke!" in done["greeter"][1]
    folder = write_v2_system(result, tmp_path / "v2")
    assert (folder / "components" / "greeter.py").read_bytes() == greeter.read_bytes()
    blueprint = load_v2_blueprint(folder / "blueprint.yaml")
    assert [c.recipe for c in blueprint.components] == ["APIEndpoint", "Hosted"]

    async def hello() -> dict:
        system = PortSystem(blueprint, folder / "components")
        async with system.running():
            return await system.handle("hello", {"name": "Zoë"})

    assert anyio.run(hello)["data"]["name"] == "Howdy, Zoë!"


def test_a_module_that_does_not_import_is_hosted_not_replaced(tmp_path: Path) -> None:
    """The 22 sample systems that fail v1 on an import: their code is kept, and so is the defect."""
    result = convert(SAMPLE_FLEET_DIR / "data_processing_batch_scorer")
    kind, why = how(result)["ingest"]
    assert kind == "hosted" and "does not import (ModuleNotFoundError: No module named 'utils')" in why
    assert next(
        d for d in result.report.decisions if d.component == "ingest" and d.kind == "hosted"
    ).severity == ("warning")


def test_a_module_that_ends_the_probe_costs_only_its_own_facts(tmp_path: Path) -> None:
    system = copy_system(tmp_path, "todo_api_system")
    todos = system / "components" / "todos.py"
    todos.write_text("import os\nos._exit(7)\n" + todos.read_text(encoding="utf-8"), encoding="utf-8")
    result = convert(system)
    done = how(result)
    assert done["todos"][0] == "hosted" and "importing it exited with status 7" in done["todos"][1]
    assert {c: k for c, (k, _) in done.items() if c != "todos"} == {
        "gateway": "re_expressed",
        "todo_store": "re_expressed",
    }
    probe = [d.message for d in result.report.decisions if d.kind == "probe"]
    assert probe == ["components/todos.py exited with status 7 while importing components/todos.py"]


@pytest.mark.parametrize(
    ("name", "component"), [("auth_token_api", "auth"), ("monitoring_alert_router", "alerter")]
)
def test_types_without_a_recipe_are_hosted(name: str, component: str) -> None:
    kind, why = how(convert(SAMPLE_FLEET_DIR / name))[component]
    assert kind == "hosted" and "no recipe does what a" in why
