"""The sample fleet generator: seed-shaped counts, dates, names; byte-identical regeneration."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

from engine.fleet.generator import PILOT, generate_fleet, plan_fleet
from engine.models import load_v1_blueprint
from engine.workspace import SAMPLE_FLEET_DIR


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but Python's bytecode caches, which running the fleet's code leaves
    behind unless $PYTHONDONTWRITEBYTECODE is set (it is on the team's machine, not on a fresh one)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def blueprints():
    return [load_v1_blueprint(p / "blueprint.yaml") for p in sorted(SAMPLE_FLEET_DIR.iterdir()) if p.is_dir()]


def test_counts_by_category_match_the_seed(blueprints) -> None:
    assert len(blueprints) == 52
    assert Counter(bp.system.category for bp in blueprints) == {
        "todo": 15,
        "api": 12,
        "data_processing": 8,
        "monitoring": 5,
        "experimental": 12,
    }


def test_names_the_seed_mentions_are_there(blueprints) -> None:
    names = {bp.system.name for bp in blueprints}
    assert {"todo_api_system", "simple_rest_api", "hello_world_api"} <= names
    assert sum(n.startswith("data_processing_") for n in names) == 8
    assert sum(n.startswith("monitoring_") for n in names) == 5
    assert sum(n.startswith("experimental_") for n in names) == 12


def test_created_dates_span_the_seed_range(blueprints) -> None:
    dates = {bp.system.created for bp in blueprints}
    assert min(dates) == dt.date(2025, 7, 22) and max(dates) == dt.date(2025, 8, 6)


def test_component_types_are_varied(blueprints) -> None:
    types = {c.type for bp in blueprints for c in bp.system.components}
    assert {"APIGateway", "Controller", "DataStore", "Processor", "Router", "Aggregator", "Filter"} <= types
    assert types - {"APIGateway", "Controller", "DataStore", "Processor", "Router", "Aggregator", "Filter"}


def test_every_component_has_its_module(blueprints) -> None:
    for bp in blueprints:
        for comp in bp.system.components:
            assert (SAMPLE_FLEET_DIR / bp.system.name / "components" / f"{comp.name}.py").is_file()


def test_regeneration_is_byte_identical_to_the_committed_fleet(tmp_path: Path) -> None:
    generate_fleet(tmp_path / "a")
    assert tree(tmp_path / "a") == tree(SAMPLE_FLEET_DIR)


def test_generation_replaces_stale_systems_only(tmp_path: Path) -> None:
    out = tmp_path / "fleet"
    (out / "old_system").mkdir(parents=True)
    (out / "old_system" / "blueprint.yaml").write_text("x", encoding="utf-8")
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    generate_fleet(out)
    assert not (out / "old_system").exists()
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_pilot_systems_are_clean_and_most_others_are_not() -> None:
    builds = {b.name: b for b in plan_fleet()}
    assert all(not builds[n].defects for n in PILOT)
    assert sum(bool(b.defects) for b in builds.values()) == 37
    kinds = Counter(k for b in builds.values() for k in b.defects)
    assert set(kinds) == {"import", "missing_component", "missing_method", "shape"}
