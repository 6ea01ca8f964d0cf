"""Convert a v1 (RPC) blueprint to v2 (port-based), as the seed's ``convert_blueprint`` does.

The seed's part is kept: ``schema_version: "2.0.0"``, the system's name,
description and version, one component per v1 component with its
``configuration`` carried as ``config``, and the recipe mapping DataStore ->
Store, APIGateway -> APIEndpoint, Controller, Router, Aggregator, Filter,
Processor -> Transformer, anything else -> Transformer.

**Behaviour is preserved.** A migration changes how components talk, not what
they do. A v1 component with code (``components/<name>.py``) is *hosted*: its
module is copied beside the v2 blueprint and runs behind ports (recipe
``Hosted``: an input port per method, an output port per declared call). Its
recipe from the mapping replaces the code only where the code probe
(:mod:`engine.convert.probe`, in a sandbox) showed the recipe gives the same
answers to the same requests. A component without code has nothing to keep
and becomes its recipe. The report says, per component, which was done and why
(``hosted`` / ``re_expressed``). A module that does not import is hosted all
the same: v2 then fails as v1 does, and the gate reports the old code's defect.

**Bindings come from the v1 calls**, as the seed's ``generate_bindings(old
components)`` has it: every declared call becomes a binding from the caller's
output port ``to_<callee>_<method>`` to the callee's input port for that
method. Only a call whose target does not exist (no such component, or a
method the callee's code does not have) is dropped, as an error (hosted code
making it fails with the legacy runtime's words); so is a call that closes a
cycle, which request/response ports cannot answer. ``configuration`` is
carried as is whatever its shape; a recipe that cannot use it says so as a
warning.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.convert.mapping import (  # noqa: F401 - the mapping is part of the converter's interface
    DEFAULT_RECIPE,
    EXTRA_TYPE_TO_RECIPE,
    SEED_TYPE_TO_RECIPE,
    Decision,
    Severity,
    recipe_config,
    recipe_for,
)
from engine.convert.probe import CodeFacts, module_path, static_facts, unreachable_calls
from engine.models.blueprint_v1 import V1Blueprint, V1Component
from engine.models.blueprint_v2 import SCHEMA_VERSION, V2Binding, V2Blueprint, V2Component, V2System
from engine.models.common import find_cycle
from engine.runtime.legacy import accepts_of, v1_entry
from engine.runtime.recipes import RECIPES, Recipe, out_port


class ConversionReport(BaseModel):
    system: str
    decisions: list[Decision]

    def count(self, severity: Severity) -> int:
        return sum(d.severity == severity for d in self.decisions)


class ConversionResult(BaseModel):
    blueprint: V2Blueprint
    report: ConversionReport
    code: dict[str, str] = {}
    """Hosted component -> its v1 module file, copied beside the v2 blueprint by the writer."""


def convert_blueprint(
    v1: V1Blueprint,
    v1_dir: Path | None = None,
    facts: dict[str, CodeFacts] | None = None,
    probe_notes: list[str] | None = None,
) -> ConversionResult:
    """Convert one v1 blueprint.

    ``facts`` is what the code probe learnt (:func:`engine.convert.probe.probe_code`);
    without it the modules under ``v1_dir`` are read without running them and
    every component with code is hosted (no recipe was shown to match it).
    """
    facts = facts if facts is not None else static_facts(v1, v1_dir)
    decisions: list[Decision] = [
        Decision(kind="probe", severity="warning", component=None, message=note) for note in probe_notes or []
    ]
    methods = _known_methods(v1, facts)
    unreachable = unreachable_calls(v1, facts)
    components: list[V2Component] = []
    recipes: dict[str, Recipe] = {}
    code: dict[str, str] = {}
    for comp in v1.system.components:
        fact = facts[comp.name]
        check = fact.recipe_check
        if fact.has_code and not (check is not None and check.equivalent):
            config: Any = _hosted_config(comp, fact, methods[comp.name], unreachable.get(comp.name, {}))
            recipe_name = "Hosted"
            decisions.append(_hosting_decision(comp, fact))
            if v1_dir is not None:
                code[comp.name] = str(module_path(v1_dir, comp.name))
        else:
            recipe_name, config, found = recipe_config(comp, methods[comp.name])
            decisions += found
            why = (
                f"re-expressed as recipe {recipe_name}: {check.why}"
                if check is not None
                else f"no components/{comp.name}.py: nothing to host, re-expressed as recipe {recipe_name} "
                "(the seed's mapping)"
            )
            decisions.append(Decision(kind="re_expressed", severity="info", component=comp.name, message=why))
        try:
            recipes[comp.name] = RECIPES[recipe_name].parse(config)
        except (ValidationError, ValueError) as exc:
            decisions.append(_config_warning(comp.name, recipe_name, exc))
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
        blueprint=blueprint, report=ConversionReport(system=v1.system.name, decisions=decisions), code=code
    )


def _known_methods(v1: V1Blueprint, facts: dict[str, CodeFacts]) -> dict[str, dict[str, Any] | None]:
    """Each component's methods as ``{method: {"accepts": shape}}``; None where the code cannot tell.

    A module that neither imports nor parses still has the methods its callers
    call: hosting it with those keeps the bindings, and v2 fails as v1 does.
    """
    out: dict[str, dict[str, Any] | None] = {}
    for comp in v1.system.components:
        known = facts[comp.name].methods
        if known is not None:
            out[comp.name] = {m: {} if shape is None else {"accepts": shape} for m, shape in known.items()}
        elif facts[comp.name].has_code:
            called = [ref for c in v1.system.components for ref in c.calls if ref.split(".")[0] == comp.name]
            out[comp.name] = {ref.partition(".")[2]: {} for ref in called}
        else:
            out[comp.name] = None
    return out


def _hosted_config(
    comp: V1Component,
    fact: CodeFacts,
    methods: dict[str, Any] | None,
    unreachable: dict[str, tuple[str, str]],
) -> dict[str, Any]:
    return {
        "module": f"{comp.name}.py",
        "type": comp.type,
        "configuration": copy.deepcopy(comp.configuration),
        "methods": {m: accepts_of(spec) for m, spec in (methods or {}).items()},
        "calls": {ref: fact.sends.get(ref) for ref in dict.fromkeys(comp.calls)},
        **({"unreachable": {ref: list(v) for ref, v in unreachable.items()}} if unreachable else {}),
    }


def _hosting_decision(comp: V1Component, fact: CodeFacts) -> Decision:
    where = f"components/{comp.name}.py"
    if fact.imports is False:
        return Decision(
            kind="hosted",
            severity="warning",
            component=comp.name,
            message=f"hosts {where} as it is, though it does not import ({fact.import_error}): in v2 it "
            "answers not_loaded as in v1, and the gate fails until the v1 code is fixed",
        )
    check = fact.recipe_check
    why = check.why if check is not None else "no recipe was checked against it"
    return Decision(
        kind="hosted", severity="info", component=comp.name, message=f"hosts {where} behind ports: {why}"
    )


def _config_warning(name: str, recipe_name: str, exc: Exception) -> Decision:
    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False)[0]
        where, msg = ".".join(map(str, err["loc"])), err["msg"]
    else:
        where, msg = "", str(exc)
    return Decision(
        kind="config_invalid",
        severity="warning",
        component=name,
        message=f"recipe {recipe_name} cannot use this configuration (carried as is): "
        f"{where + ': ' if where else ''}{msg}",
    )


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
            if target_port != method:
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
