"""PortBasedValidationGate: is this v2 system fit to deploy?

For every component: the recipe exists, its config fits the recipe's schema,
every required output port is bound, each binding joins compatible message
schemas, the recipe expands to a well-formed primitive graph, and (for a
config-driven recipe) a smoke message passes through the component on its
own (calls answered by a stub). Then, in a sandbox (:mod:`engine.validate.live`),
the system is started (each hosted component's code must import), the
deploy's smoke requests go through it end to end, and v1 and v2 are sent the
same requests from a fresh start and must give the same answers (equivalence):
requests built from each endpoint's declared shape, plus the requests real
clients sent in the system's earlier runs (recorded by the gateway).

``validation_success_rate`` is passed checks / all checks, as in the seed;
below the policy's threshold (``[gate] min_validation_success_rate``, the
seed's 0.8) the migration stops with ``success=False, reason="Validation
failed", rollback_needed=False``. So does any failing check the policy names
as blocking (``[gate] blocking_checks``: import, smoke, equivalence), whatever
the share: a system whose v2 answers differently from v1, or whose end-to-end
smoke fails, is not deployed because most of its other checks pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
from pydantic import BaseModel, ValidationError

from engine.judge.policy import GatePolicy, SandboxPolicy
from engine.models.blueprint_v1 import V1Blueprint, load_v1_blueprint
from engine.models.blueprint_v2 import V2Blueprint, load_v2_blueprint
from engine.models.validation import Check, SystemValidation
from engine.runtime.graph import schema_problems
from engine.runtime.legacy import example_message
from engine.runtime.port_system import component_graph
from engine.runtime.primitives import Message, MessageSchema
from engine.runtime.recipes import RECIPES, Hosted, Recipe
from engine.store.recorded_requests import RecordedRequest
from engine.validate.live import live_checks

SMOKE_TIMEOUT_S = 5.0


class GateOutcome(BaseModel):
    """The seed's MigrationResult for a gate stop, and what stopped it."""

    success: bool
    reason: str | None = None
    rollback_needed: bool = False
    blocked_by: list[str] = []
    """Why, in words: the share below the threshold, and each failing blocking check."""


def gate_outcome(validation: SystemValidation, policy: GatePolicy | None = None) -> GateOutcome:
    """Stop the migration below the threshold (the seed) or on any failing blocking check (module doc)."""
    policy = policy or GatePolicy()
    why = [
        f"{c.name} {c.target or c.component or ''}".strip()
        for c in validation.failures()
        if c.name in policy.blocking_checks
    ]
    rate = validation.validation_success_rate
    if rate < policy.min_validation_success_rate:
        why.insert(0, f"{rate:.0%} of checks passed, below {policy.min_validation_success_rate:.0%}")
    if why:
        return GateOutcome(success=False, reason="Validation failed", rollback_needed=False, blocked_by=why)
    return GateOutcome(success=True)


def validate_v2_dir(system_dir: Path, v1_dir: Path | None = None) -> SystemValidation:
    """Validate the v2 system written in ``system_dir`` (BlueprintError if a blueprint won't load)."""
    v1 = (load_v1_blueprint(v1_dir / "blueprint.yaml"), v1_dir) if v1_dir is not None else None
    return validate_v2(load_v2_blueprint(system_dir / "blueprint.yaml"), system_dir, v1)


def validate_v2(
    blueprint: V2Blueprint,
    v2_dir: Path | None = None,
    v1: tuple[V1Blueprint, Path] | None = None,
    limits: SandboxPolicy | None = None,
    recorded: Sequence[RecordedRequest] = (),
) -> SystemValidation:
    """Run every gate check on a v2 blueprint.

    ``v2_dir`` holds its hosted components' code; ``v1`` (blueprint and folder)
    is the system it must answer like; ``limits`` bound each sandboxed run (the
    policy's ``[sandbox]``); ``recorded``: requests of earlier runs' real
    traffic, replayed to both beside the generated ones.
    """
    checks: list[Check] = []
    recipes: dict[str, Recipe] = {}
    for comp in blueprint.components:
        cls = RECIPES.get(comp.recipe)
        checks.append(
            Check(
                name="recipe_exists",
                component=comp.name,
                target=comp.recipe,
                passed=cls is not None,
                message="known recipe" if cls else f"no recipe named '{comp.recipe}'",
            )
        )
        if cls is None:
            continue
        try:
            recipes[comp.name] = cls.parse(comp.config)
            checks.append(
                Check(
                    name="config_valid",
                    component=comp.name,
                    target=comp.recipe,
                    passed=True,
                    message="config fits the recipe's schema",
                )
            )
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            checks.append(
                Check(
                    name="config_valid",
                    component=comp.name,
                    target=comp.recipe,
                    passed=False,
                    message=f"config.{'.'.join(map(str, err['loc']))}: {err['msg']}",
                )
            )
    bound = {b.source: b.target for b in blueprint.bindings}
    produced = _produced_schemas(blueprint, recipes)
    for name, recipe in recipes.items():
        checks += _port_checks(name, recipe, bound, recipes, produced)
        checks.append(_graph_check(name, recipe))
        if not isinstance(recipe, Hosted):  # the code's own behaviour is judged whole, in the sandbox
            checks += _isolated_smoke(name, recipe)
    checks += _binding_target_checks(blueprint, recipes)
    if all(c.passed for c in checks if c.name in ("recipe_exists", "config_valid")):
        checks += live_checks(blueprint, v2_dir, v1, limits, recorded)
    return SystemValidation(system=blueprint.system.name, blueprint_version="v2", checks=checks)


def _produced_schemas(blueprint: V2Blueprint, recipes: dict[str, Recipe]) -> dict[str, MessageSchema]:
    """What each output port is known to carry; a pass-through sends on what reaches it."""
    incoming: dict[str, list[str]] = {}
    for b in blueprint.bindings:
        incoming.setdefault(b.target.split(".")[0], []).append(b.source)
    memo: dict[str, MessageSchema] = {}

    def schema_of(source: str, depth: int = 0) -> MessageSchema:
        if source in memo:
            return memo[source]
        comp, _, port = source.partition(".")
        recipe = recipes.get(comp)
        spec = next((p for p in recipe.outputs() if p.name == port), None) if recipe else None
        result: MessageSchema = dict(spec.schema) if spec and spec.schema else {}
        if recipe is not None and recipe.passes_through and depth < 32:
            upstream = [schema_of(s, depth + 1) for s in incoming.get(comp, [])]
            if upstream:
                common = set.intersection(*(set(u) for u in upstream))
                result = {**{f: upstream[0][f] for f in common}, **result}
            else:  # fed from outside: it carries at least what its own input requires
                for schema in recipe.inputs().values():
                    result = {**schema, **result}
        memo[source] = result
        return result

    return {b.source: schema_of(b.source) for b in blueprint.bindings}


def _port_checks(
    name: str,
    recipe: Recipe,
    bound: dict[str, str],
    recipes: dict[str, Recipe],
    produced: dict[str, MessageSchema],
) -> list[Check]:
    checks = []
    for port in recipe.outputs():
        ref = f"{name}.{port.name}"
        target = bound.get(ref)
        if target is None:
            checks.append(
                Check(
                    name="port_bound",
                    component=name,
                    target=ref,
                    passed=not port.required,
                    message=f"required output {port.name} (for {port.ref}) is not bound"
                    if port.required
                    else f"optional output {port.name} is not bound; the call is skipped",
                )
            )
            continue
        checks.append(
            Check(name="port_bound", component=name, target=ref, passed=True, message=f"bound to {target}")
        )
        dst_comp, _, dst_port = target.partition(".")
        accepts = recipes[dst_comp].inputs().get(dst_port) if dst_comp in recipes else None
        if accepts is None:
            continue  # reported by the binding-target check
        if port.schema is None and not recipe.passes_through:
            checks.append(
                Check(
                    name="schema_compatible",
                    component=name,
                    target=f"{ref} -> {target}",
                    passed=True,
                    message="the code declares no shape for this call (no SENDS); the callee checks each "
                    "message when called",
                )
            )
            continue
        problems = schema_problems(produced.get(ref, port.schema), accepts)
        checks.append(
            Check(
                name="schema_compatible",
                component=name,
                target=f"{ref} -> {target}",
                passed=not problems,
                message="; ".join(problems) or f"carries {sorted(produced.get(ref, {}))}",
            )
        )
    return checks


def _binding_target_checks(blueprint: V2Blueprint, recipes: dict[str, Recipe]) -> list[Check]:
    checks = []
    for b in blueprint.bindings:
        comp, _, port = b.target.partition(".")
        src_comp, _, src_port = b.source.partition(".")
        ok = comp in recipes and port in recipes[comp].inputs()
        src_ok = src_comp in recipes and any(p.name == src_port for p in recipes[src_comp].outputs())
        if not ok or not src_ok:
            what = b.target if not ok else b.source
            checks.append(
                Check(
                    name="binding_valid",
                    component=src_comp,
                    target=f"{b.source} -> {b.target}",
                    passed=False,
                    message=f"no such port {what}",
                )
            )
    return checks


def _graph_check(name: str, recipe: Recipe) -> Check:
    send, receive = anyio.create_memory_object_stream[object](1)
    send.close()
    graph = component_graph(name, recipe, receive, None)
    problems = graph.problems()
    receive.close()
    return Check(
        name="graph_well_formed",
        component=name,
        target=recipe.name,
        passed=not problems,
        message="; ".join(problems) or f"{len(graph.nodes)} primitives, {len(graph.edges)} streams",
    )


def _isolated_smoke(name: str, recipe: Recipe) -> list[Check]:
    """Each input port once, on a fresh instance, with every call answered by an empty reply."""
    checks = []
    for port, schema in sorted(recipe.inputs().items()):
        fresh = type(recipe)(recipe.config)

        async def stub(out: str, message: Message) -> Message:
            return {}

        async def run(fresh: Recipe = fresh, port: str = port, schema: MessageSchema = schema) -> Message:
            with anyio.fail_after(SMOKE_TIMEOUT_S):
                return await fresh.handle(port, example_message(schema), stub)

        try:
            reply = anyio.run(run)
            checks.append(
                Check(
                    name="smoke_isolated",
                    component=name,
                    target=f"{name}.{port}",
                    passed=True,
                    message=f"answered with fields {sorted(reply)}",
                )
            )
        except Exception as exc:  # noqa: BLE001 - the failure is the finding
            checks.append(
                Check(
                    name="smoke_isolated",
                    component=name,
                    target=f"{name}.{port}",
                    passed=False,
                    message=f"{type(exc).__name__}: {exc}",
                )
            )
    return checks
