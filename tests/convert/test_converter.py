"""The converter: the seed's mapping and shape, bindings from calls, a report of every decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.convert.converter import SEED_TYPE_TO_RECIPE, convert_blueprint
from engine.convert.writer import write_v2_system
from engine.models import load_v1_blueprint, load_v2_blueprint
from engine.workspace import SAMPLE_FLEET_DIR

ALL_TYPES = """
system:
  name: every_type
  description: one of each mapped type
  version: "2.1"
  components:
    - {name: gw, type: APIGateway, configuration: {routes: {go: ctl.run}}, calls: [ctl.run]}
    - name: ctl
      type: Controller
      configuration: {actions: {run: {call: db.fetch_all}}, colour: blue}
      calls: [db.fetch_all]
    - {name: db, type: DataStore, configuration: {key_field: id}}
    - name: rt
      type: Router
      configuration: {route_field: kind, routes: {}, default: tf.process}
      calls: [tf.process]
    - {name: agg, type: Aggregator, configuration: {sources: [db.list], operation: count}, calls: [db.list]}
    - name: flt
      type: Filter
      configuration: {field: v, op: gt, value: 1, next: ghost.eat}
      calls: [ghost.eat]
    - {name: tf, type: Processor, configuration: {field: kind, operation: upper}}
    - {name: bell, type: Notifier, configuration: {channel: email}}
"""


@pytest.fixture
def result(tmp_path: Path):
    path = tmp_path / "blueprint.yaml"
    path.write_text(ALL_TYPES, encoding="utf-8")
    return convert_blueprint(load_v1_blueprint(path))


def test_seed_shape_and_mapping(result) -> None:
    bp = result.blueprint
    assert bp.schema_version == "2.0.0"
    assert (bp.system.name, bp.system.description, bp.system.version) == (
        "every_type",
        "one of each mapped type",
        "2.1",
    )
    recipes = {c.name: c.recipe for c in bp.components}
    assert recipes == {
        "gw": "APIEndpoint",
        "ctl": "Controller",
        "db": "Store",
        "rt": "Router",
        "agg": "Aggregator",
        "flt": "Filter",
        "tf": "Transformer",
        "bell": "Transformer",
    }
    assert set(SEED_TYPE_TO_RECIPE.values()) <= set(recipes.values())
    assert (
        next(c for c in bp.components if c.name == "ctl").config["colour"] == "blue"
    )  # config carried as is


def test_report_lists_every_decision_with_severity(result) -> None:
    by_kind: dict[str, list] = {}
    for d in result.report.decisions:
        by_kind.setdefault(d.kind, []).append(d)
    assert {d.component for d in by_kind["mapped"]} == {"gw", "ctl", "db", "rt", "agg", "flt", "tf"}
    assert [(d.component, d.severity) for d in by_kind["defaulted"]] == [("bell", "warning")]
    assert any(d.component == "ctl" and "'colour'" in d.message for d in by_kind["config_unused"])
    assert any("db.fetch_all" in d.message and "db.list" in d.message for d in by_kind["binding_alias"])
    dropped = by_kind["binding_dropped"]
    assert [(d.component, d.severity) for d in dropped] == [("flt", "error")]
    assert "ghost" in dropped[0].message


def test_bindings_come_from_calls(result) -> None:
    pairs = {(b.source, b.target) for b in result.blueprint.bindings}
    assert ("gw.to_ctl_run", "ctl.run") in pairs
    assert ("ctl.to_db_fetch_all", "db.list") in pairs
    assert ("agg.to_db_list", "db.list") in pairs
    assert not any(t.startswith("ghost.") for _, t in pairs)


def test_converting_twice_gives_the_same_output(tmp_path: Path) -> None:
    system = SAMPLE_FLEET_DIR / "todo_api_system"
    first = write_v2_system(
        convert_blueprint(load_v1_blueprint(system / "blueprint.yaml"), system), tmp_path / "a"
    )
    second = write_v2_system(
        convert_blueprint(load_v1_blueprint(system / "blueprint.yaml"), system), tmp_path / "b"
    )
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes()
    assert load_v2_blueprint(first / "blueprint.yaml").system.name == "todo_api_system"


def test_writer_replaces_and_never_touches_v1(tmp_path: Path) -> None:
    system = SAMPLE_FLEET_DIR / "hello_world_api"
    before = {p: p.read_bytes() for p in system.rglob("*") if p.is_file()}
    result = convert_blueprint(load_v1_blueprint(system / "blueprint.yaml"), system)
    folder = write_v2_system(result, tmp_path)
    (folder / "stale.txt").write_text("old", encoding="utf-8")
    write_v2_system(result, tmp_path)
    assert not (folder / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello_world_api"]
    assert {p: p.read_bytes() for p in system.rglob("*") if p.is_file()} == before
