"""Convert a v1 (RPC) blueprint to v2 (port-based), as the seed's ``convert_blueprint`` does.

The seed's part is kept exactly: ``schema_version: "2.0.0"``, the system's
name, description and version, one component per v1 component with its
``configuration`` carried as ``config``, and the recipe mapping DataStore ->
Store, APIGateway -> APIEndpoint, Controller, Router, Aggregator, Filter,
Processor -> Transformer, anything else -> Transformer.

Bindings come from the v1 ``calls``, as the seed's ``generate_bindings(old
components)`` has it: every declared call becomes a binding from the
caller's output port ``to_<callee>_<method>`` to the callee's input port for
that method. Only a call whose target does not exist (no such component, or
a method the callee's module does not have) is dropped, as an error; so is a
call that closes a cycle, which request/response ports cannot answer.
``configuration`` is carried as is whatever its shape; a recipe that cannot
use it says so as a warning.

Beyond the seed, every decision lands in a report with a severity: types
mapped to the six extra recipes, types defaulted, config keys the recipe
does not use, each call that became a binding (and how), and each call that
could not.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from engine.models.blueprint_v1 import V1Blueprint, V1Component
from engine.models.blueprint_v2 import SCHEMA_VERSION, V2Binding, V2Blueprint, V2Component, V2System
from engine.models.common import find_cycle
from engine.runtime.legacy import accepts_of, read_contract_statically, v1_entry
from engine.runtime.recipes import RECIPES, Recipe, out_port

SEED_TYPE_TO_RECIPE = {
    "DataStore": "Store",
    "APIGateway": "APIEndpoint",
    "Controller": "Controller",
    "Router": "Router",
    "Aggregator": "Aggregator",
    "Filter": "Filter",
    "Processor": "Transformer",
}
"""The seed's mapping, as is."""

EXTRA_TYPE_TO_RECIPE = {
    "EventSource": "Source",
    "MetricsSink": "Sink",
    "MessageQueue": "Queue",
    "Cache": "Cache",
    "Validator": "Validator",
    "Scheduler": "Scheduler",
}
"""Types outside the seed's table that one of the six extra recipes fits."""

DEFAULT_RECIPE = "Transformer"

Severity = Literal["info", "warning", "error"]


class Decision(BaseModel):
    """One thing the converter decided, and how much it matters."""

    kind: str
    severity: Severity
    component: str | None
    message: str


class ConversionReport(BaseModel):
    system: str
    decisions: list[Decision]

    def count(self, severity: Severity) -> int:
        return sum(d.severity == severity for d in self.decisions)


class ConversionResult(BaseModel):
    blueprint: V2Blueprint
    report: ConversionReport


def recipe_for(v1_type: str) -> tuple[str, str, Severity]:
    """(recipe, decision kind, severity) for a v1 component type."""
    if v1_type in SEED_TYPE_TO_RECIPE:
        return SEED_TYPE_TO_RECIPE[v1_type], "mapped", "info"
    if v1_type in EXTRA_TYPE_TO_RECIPE:
        return EXTRA_TYPE_TO_RECIPE[v1_type], "mapped_extra", "info"
    return DEFAULT_RECIPE, "defaulted", "warning"


def _static_methods(v1_dir: Path | None, comp: V1Component) -> dict[str, dict[str, Any]] | None:
    """The methods the v1 module of ``comp`` provides, read without running it; None if unknown."""
    if v1_dir is None:
        return None
    contract = read_contract_statically(v1_dir / "components" / f"{comp.name}.py")
    return None if contract is None else contract[0]


def convert_blueprint(v1: V1Blueprint, v1_dir: Path | None = None) -> ConversionResult:
    """Convert one v1 blueprint; ``v1_dir`` lets the modules' contracts (methods, shapes) be read."""
    decisions: list[Decision] = []
    components: list[V2Component] = []
    recipes: dict[str, Recipe] = {}
    methods = {c.name: _static_methods(v1_dir, c) for c in v1.system.components}
    for comp in v1.system.components:
        recipe_name, kind, severity = recipe_for(comp.type)
        config = copy.deepcopy(comp.configuration)
        text = f"{comp.type} -> {recipe_name}"
        if kind == "defaulted":
            text += f" (no recipe for {comp.type}; defaulted, behaviour may differ)"
        decisions.append(Decision(kind=kind, severity=severity, component=comp.name, message=text))
        if recipe_name == "APIEndpoint" and isinstance(config, dict):
            config = _with_endpoint_contract(comp, config, methods[comp.name], decisions)
        cls = RECIPES[recipe_name]
        for key in sorted(
            set(config) - cls.used_keys() - {"endpoint_schemas"} if isinstance(config, dict) else ()
        ):
            decisions.append(
                Decision(
                    kind="config_unused",
                    severity="warning",
                    component=comp.name,
                    message=f"config key '{key}' is not used by recipe {recipe_name}",
                )
            )
        try:
            recipes[comp.name] = cls.parse(config)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(map(str, err["loc"]))
            decisions.append(
                Decision(
                    kind="config_invalid",
                    severity="warning",
                    component=comp.name,
                    message=f"recipe {recipe_name} cannot use this configuration (carried as is): "
                    f"{where + ': ' if where else ''}{err['msg']}",
                )
            )
        components.append(V2Component(name=comp.name, recipe=recipe_name, config=config))
    bindings = _bindings(v1, recipes, methods, decisions)
    blueprint = V2Blueprint(
        schema_version=SCHEMA_VERSION,
        system=V2System(name=v1.system.name, description=v1.system.description, version=v1.system.version),
        entry=v1_entry(v1),
        components=components,
        bindings=bindings,
    )
    return ConversionResult(
        blueprint=blueprint, report=ConversionReport(system=v1.system.name, decisions=decisions)
    )


def _with_endpoint_contract(
    comp: V1Component,
    config: dict[str, Any],
    methods: dict[str, dict[str, Any]] | None,
    decisions: list[Decision],
) -> dict[str, Any]:
    schemas = {
        ep: accepts for ep, spec in (methods or {}).items() if (accepts := accepts_of(spec)) is not None
    }
    if not schemas:
        decisions.append(
            Decision(
                kind="contract",
                severity="warning",
                component=comp.name,
                message="no endpoint message shapes found in the v1 module; endpoints accept {}",
            )
        )
        return config
    decisions.append(
        Decision(
            kind="contract",
            severity="info",
            component=comp.name,
            message=f"endpoint message shapes taken from the v1 module: {sorted(schemas)}",
        )
    )
    return {**config, "endpoint_schemas": schemas}


def _bindings(
    v1: V1Blueprint,
    recipes: dict[str, Recipe],
    methods: dict[str, dict[str, Any] | None],
    decisions: list[Decision],
) -> list[V2Binding]:
    """One binding per declared call (the seed's ``generate_bindings(old components)``).

    A call is dropped, as an error, only when its target does not exist: no
    such component, a method the callee's module does not have, or (since
    ports answer request/response) a call that closes a cycle.
    """
    bindings: list[V2Binding] = []
    calls: dict[str, set[str]] = {}

    def note(kind: str, severity: Severity, component: str, message: str) -> None:
        decisions.append(Decision(kind=kind, severity=severity, component=component, message=message))

    for comp in v1.system.components:
        caller = recipes.get(comp.name)
        made = {port.ref for port in caller.outputs()} if caller is not None else set()
        for ref in dict.fromkeys(comp.calls):
            callee_name, _, method = ref.partition(".")
            callee = v1.component(callee_name)
            if callee is None:
                note(
                    "binding_dropped",
                    "error",
                    comp.name,
                    f"call {ref} dropped: component '{callee_name}' does not exist",
                )
                continue
            known = methods.get(callee_name)
            if known is not None and method not in known:
                have = ", ".join(sorted(known)) or "none"
                note(
                    "binding_dropped",
                    "error",
                    comp.name,
                    f"call {ref} dropped: '{callee_name}' has no method '{method}' (it has: {have})",
                )
                continue
            target_recipe = recipes.get(callee_name)
            target_port = target_recipe.resolve_input(method) if target_recipe is not None else None
            defaulted = recipe_for(callee.type)[1] == "defaulted"
            if (
                target_port is None
                and defaulted
                and target_recipe is not None
                and len(target_recipe.inputs()) == 1
            ):
                target_port = next(iter(target_recipe.inputs()))  # the default recipe's only way in
            if target_port is None:
                target_port = method
                what = f"recipe {target_recipe.name}" if target_recipe is not None else "its recipe"
                note(
                    "binding_unchecked",
                    "warning",
                    comp.name,
                    f"call {ref}: '{callee_name}' ({what}) has no "
                    f"input port '{method}'; bound by name, the gate checks it",
                )
            loop = find_cycle({**calls, comp.name: calls.get(comp.name, set()) | {callee_name}})
            if loop:
                note(
                    "binding_dropped",
                    "error",
                    comp.name,
                    f"call {ref} dropped: it closes a call cycle "
                    f"({' -> '.join(loop)}), which request/response ports cannot answer",
                )
                continue
            source = f"{comp.name}.{out_port(ref)}"
            if caller is not None and ref not in made:
                note(
                    "binding_unchecked",
                    "warning",
                    comp.name,
                    f"call {ref}: recipe {caller.name} makes no "
                    "such call from this configuration; bound by name, the gate checks it",
                )
            if target_port != method and defaulted:
                note(
                    "binding_alias",
                    "warning",
                    comp.name,
                    f"call {ref} bound to {callee_name}.{target_port}, the only input of the default recipe",
                )
            elif target_port != method:
                note(
                    "binding_alias",
                    "info",
                    comp.name,
                    f"call {ref} -> binding {source} -> "
                    f"{callee_name}.{target_port} ('{method}' is the recipe's legacy name for it)",
                )
            else:
                note(
                    "binding", "info", comp.name, f"call {ref} -> binding {source} -> {callee_name}.{method}"
                )
            calls.setdefault(comp.name, set()).add(callee_name)
            bindings.append(V2Binding.model_validate({"from": source, "to": f"{callee_name}.{target_port}"}))
        for ref in sorted(made - set(comp.calls)):
            note(
                "call_undeclared",
                "warning",
                comp.name,
                f"recipe {caller.name if caller else '?'} would call "
                f"{ref}, which blueprint.yaml does not list under calls: not bound",
            )
    return bindings
