"""Blueprint models: good files load, structurally bad files give one error naming file, path, expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import BlueprintError
from engine.models import load_v1_blueprint, load_v2_blueprint
from engine.models.common import dump_yaml

GOOD_V1 = """
system:
  name: shop_api
  description: A small shop
  version: "1.2.0"
  created: 2025-07-30
  components:
    - name: gateway
      type: APIGateway
      configuration: {routes: {buy: orders.create}}
      calls: [orders.create]
    - name: orders
      type: Controller
      description: order logic
      calls: [ghost.lookup]
"""

GOOD_V2 = """
schema_version: "2.0.0"
system: {name: shop_api, description: A small shop, version: "1.2.0"}
components:
  - {name: gateway, recipe: APIEndpoint, config: {routes: {buy: orders}}}
  - {name: orders, recipe: Controller}
bindings:
  - {from: gateway.out, to: orders.in}
"""


def write(tmp_path: Path, text: str, name: str = "blueprint.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_v1_loads_with_defaults(tmp_path: Path) -> None:
    bp = load_v1_blueprint(write(tmp_path, GOOD_V1))
    assert bp.system.name == "shop_api"
    assert [c.type for c in bp.system.components] == ["APIGateway", "Controller"]
    assert bp.system.components[1].configuration == {}
    assert bp.component("orders").calls == ["ghost.lookup"]


def test_call_to_missing_component_is_not_a_load_error(tmp_path: Path) -> None:
    bp = load_v1_blueprint(write(tmp_path, GOOD_V1))
    assert bp.component("ghost") is None


def test_good_v2_loads_and_round_trips_from_to_keys(tmp_path: Path) -> None:
    bp = load_v2_blueprint(write(tmp_path, GOOD_V2))
    assert bp.bindings[0].source == "gateway.out"
    doc = bp.to_document()
    assert doc["bindings"] == [{"from": "gateway.out", "to": "orders.in"}]
    again = load_v2_blueprint(write(tmp_path, dump_yaml(doc), "again.yaml"))
    assert again == bp


@pytest.mark.parametrize(
    ("text", "location", "expected"),
    [
        ("system: [unclosed", "line 1", "valid YAML"),
        ("", "<document>", "a YAML mapping"),
        ("- just\n- a list\n", "<document>", "mapping at the top level"),
        (
            "system:\n  description: x\n  version: '1'\n  components: [{name: a, type: T}]\n",
            "system.name",
            "required",
        ),
        (
            "system:\n  name: s\n  description: x\n  version: 3\n  components: [{name: a, type: T}]\n",
            "system.version",
            "string",
        ),
        (
            "system:\n  name: s\n  description: x\n  version: '1'\n  components: []\n",
            "system.components",
            "at least 1",
        ),
        (
            "system:\n  name: s\n  description: x\n  version: '1'\n"
            "  components: [{name: a, type: T}, {name: a, type: U}]\n",
            "system.components",
            "unique",
        ),
        (
            "system:\n  name: ../etc\n  description: x\n  version: '1'\n  components: [{name: a, type: T}]\n",
            "system.name",
            "plain identifier",
        ),
        (
            "system:\n  name: s\n  description: x\n  version: '1'\n"
            "  components: [{name: a, type: T, calls: [nodot]}]\n",
            "system.components[0].calls[0]",
            "joined by a dot",
        ),
        (
            "system:\n  name: s\n  description: x\n  version: '1'\n  colour: red\n"
            "  components: [{name: a, type: T}]\n",
            "system.colour",
            "unknown key",
        ),
    ],
)
def test_bad_v1_names_file_path_and_expectation(
    tmp_path: Path, text: str, location: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BlueprintError) as info:
        load_v1_blueprint(path)
    err = info.value
    assert err.source == str(path)
    assert location in err.location
    assert expected in str(err)


def test_bad_v2_schema_version(tmp_path: Path) -> None:
    with pytest.raises(BlueprintError) as info:
        load_v2_blueprint(write(tmp_path, GOOD_V2.replace('"2.0.0"', '"1.0.0"')))
    assert info.value.location == "schema_version"


def test_non_utf8_and_missing_files_are_blueprint_errors(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"system:\n  name: \xff\xfe\n")
    with pytest.raises(BlueprintError, match="UTF-8"):
        load_v1_blueprint(path)
    with pytest.raises(BlueprintError, match="readable file"):
        load_v1_blueprint(tmp_path / "absent.yaml")


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (3 * 1024 * 1024))
    with pytest.raises(BlueprintError, match="at most"):
        load_v1_blueprint(path)


@pytest.mark.parametrize(
    "configuration",
    ["route everything to greeter", [1, "two", {"three": 3}], {"routes": ["/orders", "/orders/{id}"]}, 7],
)
def test_v1_configuration_of_any_shape_loads_as_is(tmp_path: Path, configuration: object) -> None:
    """A team's own code reads its configuration: a list, a sentence or a free-form mapping is theirs."""
    doc = {
        "system": {
            "name": "s",
            "description": "x",
            "version": "1",
            "components": [{"name": "a", "type": "T", "configuration": configuration}],
        }
    }
    bp = load_v1_blueprint(write(tmp_path, dump_yaml(doc)))
    assert bp.system.components[0].configuration == configuration
