"""Convert a v1 (RPC) blueprint to v2 (port-based), as the seed's ``convert_blueprint`` does.

The seed's part is kept exactly: ``schema_version: "2.0.0"``, the system's
name, description and version, one component per v1 component with its
``configuration`` carried as ``config``, and the recipe mapping DataStore ->
Store, APIGateway -> APIEndpoint, Controller, Router, Aggregator, Filter,
Processor -> Transformer, anything else -> Transformer.

Beyond the seed, every decision lands in a report with a severity: types
mapped to the six extra recipes, types defaulted, config keys the recipe
does not use, each call that became a binding (and how), and each call that
could not (a target component or method that does not exist).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from engine.models.blueprint_v1 import V1Blueprint, V1Component
from engine.models.blueprint_v2 import SCHEMA_VERSION, V2Binding, V2Blueprint, V2Component, V2System
from engine.models.common import find_cycle
from engine.runtime.recipes import RECIPES, Recipe

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


def declared_methods_static(module_path: Path) -> dict[str, Any]:
    """A v1 module's ``METHODS`` table read without running the module (so a broken import can't stop it)."""
    try:
        tree = ast.parse(module_path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "METHODS" for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                return {}
            return value if isinstance(value, dict) else {}
    return {}


def convert_blueprint(v1: V1Blueprint, v1_dir: Path | None = None) -> ConversionResult:
    """Convert one v1 blueprint; ``v1_dir`` lets the endpoint contract be read from the gateway module."""
    decisions: list[Decision] = []
    components: list[V2Component] = []
    recipes: dict[str, Recipe] = {}
    defaulted: set[str] = set()
    for comp in v1.system.components:
        recipe_name, kind, severity = recipe_for(comp.type)
        config = dict(comp.configuration)
        text = f"{comp.type} -> {recipe_name}"
        if kind == "defaulted":
            text += f" (no recipe for {comp.type}; defaulted, behaviour may differ)"
            defaulted.add(comp.name)
        decisions.append(Decision(kind=kind, severity=severity, component=comp.name, message=text))
        if recipe_name == "APIEndpoint" and v1_dir is not None:
            config = _with_endpoint_contract(comp, config, v1_dir, decisions)
        cls = RECIPES[recipe_name]
        for key in sorted(set(config) - cls.used_keys() - {"endpoint_schemas"}):
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
            decisions.append(
                Decision(
                    kind="config_invalid",
                    severity="error",
                    component=comp.name,
                    message=f"config does not fit {recipe_name}: {'.'.join(map(str, err['loc']))}: "
                    f"{err['msg']}",
                )
            )
        components.append(V2Component(name=comp.name, recipe=recipe_name, config=config))
    bindings = _bindings(v1, recipes, defaulted, decisions)
    blueprint = V2Blueprint(
        schema_version=SCHEMA_VERSION,
        system=V2System(name=v1.system.name, description=v1.system.description, version=v1.system.version),
        components=components,
        bindings=bindings,
    )
    return ConversionResult(
        blueprint=blueprint, report=ConversionReport(system=v1.system.name, decisions=decisions)
    )


def _with_endpoint_contract(
    comp: V1Component, config: dict[str, Any], v1_dir: Path, decisions: list[Decision]
) -> dict[str, Any]:
    methods = declared_methods_static(v1_dir / "components" / f"{comp.name}.py")
    schemas = {}
    for ep, spec in methods.items():  # a module's table is free-form: keep the entries that are shapes
        accepts = spec.get("accepts", {}) if isinstance(spec, dict) else None
        if isinstance(ep, str) and isinstance(accepts, dict):
            schemas[ep] = dict(accepts)
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
    v1: V1Blueprint, recipes: dict[str, Recipe], defaulted: set[str], decisions: list[Decision]
) -> list[V2Binding]:
    bindings: list[V2Binding] = []
    calls: dict[str, set[str]] = {}
    for comp in v1.system.components:
        recipe = recipes.get(comp.name)
        if recipe is None:
            continue
        used_refs = set()
        for port in recipe.outputs():
            used_refs.add(port.ref)
            callee_name, _, method = port.ref.partition(".")
            source = f"{comp.name}.{port.name}"
            callee = recipes.get(callee_name)
            if v1.component(callee_name) is None or callee is None:
                why = "does not exist" if v1.component(callee_name) is None else "could not be converted"
                decisions.append(
                    Decision(
                        kind="binding_dropped",
                        severity="error" if port.required else "warning",
                        component=comp.name,
                        message=f"call {port.ref} dropped: component '{callee_name}' {why}"
                        + ("" if port.required else " (optional side call; the system works without it)"),
                    )
                )
                continue
            target_port = callee.resolve_input(method)
            note: tuple[str, Severity, str] | None = None  # what to report once the binding is made
            if target_port is None and callee_name in defaulted and len(callee.inputs()) == 1:
                target_port = next(iter(callee.inputs()))
                note = (
                    "binding_alias",
                    "warning",
                    f"call {port.ref} bound to {callee_name}.{target_port}, the only "
                    "input of the default recipe",
                )
            elif target_port is None:
                known = ", ".join(sorted(callee.inputs())) or "none"
                decisions.append(
                    Decision(
                        kind="binding_dropped",
                        severity="error",
                        component=comp.name,
                        message=f"call {port.ref} dropped: '{callee_name}' has no input port "
                        f"'{method}' (it has: {known})",
                    )
                )
                continue
            elif target_port != method:
                note = (
                    "binding_alias",
                    "warning",
                    f"call {port.ref} bound to {callee_name}.{target_port} "
                    f"('{method}' is a legacy name for it)",
                )
            loop = find_cycle({**calls, comp.name: calls.get(comp.name, set()) | {callee_name}})
            if loop:
                decisions.append(
                    Decision(
                        kind="binding_dropped",
                        severity="error" if port.required else "warning",
                        component=comp.name,
                        message=f"call {port.ref} dropped: it closes a call cycle ({' -> '.join(loop)}), "
                        "which request/response ports cannot answer",
                    )
                )
                continue
            kind, severity, message = note or (
                "binding",
                "info",
                f"call {port.ref} -> binding {source} -> {callee_name}.{target_port}",
            )
            decisions.append(Decision(kind=kind, severity=severity, component=comp.name, message=message))
            calls.setdefault(comp.name, set()).add(callee_name)
            bindings.append(V2Binding.model_validate({"from": source, "to": f"{callee_name}.{target_port}"}))
        for ref in comp.calls:
            if ref not in used_refs:
                decisions.append(
                    Decision(
                        kind="call_unused",
                        severity="info",
                        component=comp.name,
                        message=f"listed call {ref} is not made by the component's config; no binding",
                    )
                )
    return bindings
