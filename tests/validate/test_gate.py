"""PortBasedValidationGate: each check fails on purpose, and a sound system passes all."""

from __future__ import annotations

from typing import Any

from engine.models.blueprint_v2 import V2Blueprint
from engine.validate.gate import validate_v2


def blueprint(components: list[dict[str, Any]], bindings: list[tuple[str, str]]) -> V2Blueprint:
    return V2Blueprint.model_validate(
        {
            "schema_version": "2.0.0",
            "system": {"name": "gate_case", "description": "d", "version": "1"},
            "components": components,
            "bindings": [{"from": a, "to": b} for a, b in bindings],
        }
    )


API = {
    "name": "api",
    "recipe": "APIEndpoint",
    "config": {"routes": {"get_item": "db.get"}, "endpoint_schemas": {"get_item": {"id": "int"}}},
}
DB = {"name": "db", "recipe": "Store", "config": {}}
SOUND = ([API, DB], [("api.to_db_get", "db.get")])


def failed(bp: V2Blueprint) -> set[str]:
    return {c.name for c in validate_v2(bp).failures()}


def test_sound_system_passes_every_check() -> None:
    result = validate_v2(blueprint(*SOUND))
    assert result.passed, result.failures()
    names = {c.name for c in result.checks}
    assert {
        "recipe_exists",
        "config_valid",
        "port_bound",
        "schema_compatible",
        "graph_well_formed",
        "smoke_isolated",
        "smoke",
    } <= names


def test_unknown_recipe() -> None:
    bp = blueprint([API, {**DB, "recipe": "Teleporter"}], SOUND[1])
    assert "recipe_exists" in failed(bp)


def test_config_that_does_not_fit() -> None:
    bp = blueprint([API, {**DB, "config": {"capacity": "lots"}}], SOUND[1])
    result = validate_v2(bp)
    assert any(c.name == "config_valid" and "capacity" in c.message for c in result.failures())


def test_unbound_required_port() -> None:
    assert {"port_bound", "smoke"} <= failed(blueprint([API, DB], []))


def test_incompatible_schemas() -> None:
    api = {**API, "config": {**API["config"], "endpoint_schemas": {"get_item": {"key": "str"}}}}
    result = validate_v2(blueprint([api, DB], SOUND[1]))
    assert any(c.name == "schema_compatible" and "'id' is required" in c.message for c in result.failures())


def test_binding_to_missing_port() -> None:
    assert "binding_valid" in failed(blueprint([API, DB], [("api.to_db_get", "db.teleport")]))


def test_component_failing_in_isolation() -> None:
    bad = {"name": "agg", "recipe": "Aggregator", "config": {"sources": [], "operation": "sum", "field": "v"}}
    tf = {"name": "tf", "recipe": "Transformer", "config": {"field": "name", "operation": "upper"}}
    api = {
        "name": "api",
        "recipe": "APIEndpoint",
        "config": {"routes": {"go": "tf.process"}, "endpoint_schemas": {"go": {}}},
    }
    result = validate_v2(blueprint([api, tf, bad], [("api.to_tf_process", "tf.process")]))
    failures = {(c.name, c.component) for c in result.failures()}
    assert ("schema_compatible", "api") in failures  # endpoint does not promise the 'name' field
    assert ("smoke", "api") in failures  # and the end-to-end request really fails on it


def test_config_its_recipe_cannot_use_fails_the_config_check_not_the_load() -> None:
    result = validate_v2(blueprint([API, {**DB, "config": ["key_field", "id"]}], SOUND[1]))
    assert any(c.name == "config_valid" and c.component == "db" for c in result.failures())
