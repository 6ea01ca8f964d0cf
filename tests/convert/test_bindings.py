"""Bindings come from the v1 ``calls`` (the seed's generate_bindings), whatever the configuration says."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.convert.converter import convert_blueprint
from engine.models import load_v1_blueprint

BLUEPRINT = """
system:
  name: orders_desk
  description: written by hand, configuration in the team's own words
  version: "0.9"
  components:
    - name: front
      type: APIGateway
      configuration: {routes: [/orders, "/orders/{id}"]}
      calls: [desk.place, desk.lookup]
    - name: desk
      type: Router
      configuration: {rules: by region, fallback: west}
      calls: [east.book, west.book, ledger.write, ghost.ping, ledger.erase]
    - {name: east, type: Processor, configuration: [eu, uk]}
    - {name: west, type: Processor, configuration: "everything else"}
    - {name: ledger, type: DataStore, configuration: {file: ledger.json}}
"""

PLAIN = (
    "class Component:\n    def __init__(self, *a):\n        pass\n"
    "    def {method}(self, m):\n        return m\n"
)
MODULES = {
    "front": "class Component:\n    def __init__(self, name, config, call):\n        self.call = call\n"
    "    def orders(self, message):\n        return self.call('desk.place', message)\n",
    "desk": "class Component:\n    def __init__(self, name, config, call):\n        self.call = call\n"
    "    def place(self, message):\n        return {}\n    def lookup(self, message):\n        return {}\n",
    "east": PLAIN.format(method="book"),
    "ledger": PLAIN.format(method="write"),
}


@pytest.fixture
def result(tmp_path: Path):
    system = tmp_path / "orders_desk"
    (system / "components").mkdir(parents=True)
    (system / "blueprint.yaml").write_text(BLUEPRINT, encoding="utf-8")
    for name, text in MODULES.items():
        (system / "components" / f"{name}.py").write_text(text, encoding="utf-8")
    return convert_blueprint(load_v1_blueprint(system / "blueprint.yaml"), system)


def test_every_declared_call_to_something_that_exists_is_a_binding(result) -> None:
    pairs = {(b.source, b.target) for b in result.blueprint.bindings}
    assert pairs == {
        ("front.to_desk_place", "desk.place"),
        ("front.to_desk_lookup", "desk.lookup"),
        ("desk.to_east_book", "east.book"),
        ("desk.to_west_book", "west.book"),
        ("desk.to_ledger_write", "ledger.write"),
    }


def test_only_calls_to_missing_components_or_methods_are_dropped_as_errors(result) -> None:
    errors = [d for d in result.report.decisions if d.severity == "error"]
    assert [(d.kind, d.component) for d in errors] == [("binding_dropped", "desk")] * 2
    assert "component 'ghost' does not exist" in errors[0].message
    assert "'ledger' has no method 'erase' (it has: write)" in errors[1].message


def test_free_form_configuration_is_carried_as_is_with_warnings_not_refusals(result) -> None:
    """Code keeps its configuration (hosted); without code (west) the recipe says it cannot use it."""
    components = {c.name: c for c in result.blueprint.components}
    assert components["east"].recipe == "Hosted" and components["east"].config["configuration"] == [
        "eu",
        "uk",
    ]
    assert components["front"].config["configuration"] == {"routes": ["/orders", "/orders/{id}"]}
    assert components["west"].recipe == "Transformer" and components["west"].config == "everything else"
    assert result.blueprint.entry == "front"
    cannot_use = [d for d in result.report.decisions if d.kind == "config_invalid"]
    assert [(d.component, d.severity) for d in cannot_use] == [("west", "warning")]
