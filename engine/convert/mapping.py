"""The seed's type -> recipe mapping, and the config a v1 component would have as that recipe.

Shared by the converter and by the code probe (:mod:`engine.convert.probe`),
which checks in a sandbox whether the recipe built here answers as the
component's own code does before the converter may use it.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel

from engine.models.blueprint_v1 import V1Component
from engine.runtime.legacy import accepts_of
from engine.runtime.recipes import RECIPES

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


def recipe_for(v1_type: str) -> tuple[str, str, Severity]:
    """(recipe, decision kind, severity) for a v1 component type."""
    if v1_type in SEED_TYPE_TO_RECIPE:
        return SEED_TYPE_TO_RECIPE[v1_type], "mapped", "info"
    if v1_type in EXTRA_TYPE_TO_RECIPE:
        return EXTRA_TYPE_TO_RECIPE[v1_type], "mapped_extra", "info"
    return DEFAULT_RECIPE, "defaulted", "warning"


def recipe_config(comp: V1Component, methods: dict[str, Any] | None) -> tuple[str, Any, list[Decision]]:
    """The recipe for ``comp``, its config (the v1 ``configuration`` as is), and what that decided.

    An APIEndpoint also gets ``endpoint_schemas``, the message shape of each
    endpoint taken from the v1 module's methods: the public contract.
    """
    recipe_name, kind, severity = recipe_for(comp.type)
    text = f"{comp.type} -> {recipe_name}"
    if kind == "defaulted":
        text += f" (no recipe for {comp.type}; defaulted, behaviour may differ)"
    decisions = [Decision(kind=kind, severity=severity, component=comp.name, message=text)]
    config = copy.deepcopy(comp.configuration)
    if recipe_name == "APIEndpoint" and isinstance(config, dict):
        schemas = {ep: a for ep, spec in (methods or {}).items() if (a := accepts_of(spec)) is not None}
        if schemas:
            config = {**config, "endpoint_schemas": schemas}
            message, level = f"endpoint message shapes taken from the v1 module: {sorted(schemas)}", "info"
        else:
            message, level = (
                "no endpoint message shapes found in the v1 module; endpoints accept {}",
                "warning",
            )
        decisions.append(Decision(kind="contract", severity=level, component=comp.name, message=message))  # type: ignore[arg-type]
    if isinstance(config, dict):
        for key in sorted(set(config) - RECIPES[recipe_name].used_keys() - {"endpoint_schemas"}):
            decisions.append(
                Decision(
                    kind="config_unused",
                    severity="warning",
                    component=comp.name,
                    message=f"config key '{key}' is not used by recipe {recipe_name}",
                )
            )
    return recipe_name, config, decisions
