"""What a v1 system's code is: its methods and calls, whether it imports, whether a recipe answers alike.

The converter keeps a component's own code (it hosts it) unless a
config-driven recipe is *shown* to give the same answers. Showing that means
running the code, and the code is a team's, not ours, so it runs in a
sandboxed child (:func:`engine.sandbox.run_isolated`), on a scratch copy of
the system folder:

* each module is imported, and its contract read from the live module
  (``METHODS``, else ``Component``'s public methods; ``SENDS``);
* the component and the recipe the seed's mapping names are each built fresh
  and sent the same sequence of requests, varied values from each method's
  declared shape (:mod:`engine.validate.requests`), with every call they make
  answered by the same stub. The recipe passes only if every answer (or
  failure, word for word) and every call made (target and message) is the
  same. Failures count as answers: the legacy runtime names ``file.py:line``
  of the code, a recipe cannot, so code that fails on some input stays hosted.

The child streams what it learns component by component (:func:`emit`), so
a module that exits, hangs or eats memory costs only its own facts: the
parent records the failure against it and probes the rest again without it.
Without a probe (a blueprint converted on its own), the contract is read
from the source without running it, and every component with code is hosted.
"""

from __future__ import annotations

import copy
import inspect
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.convert.mapping import recipe_config, recipe_for
from engine.judge.policy import SandboxPolicy
from engine.models.blueprint_v1 import V1Blueprint, V1Component
from engine.runtime.legacy import (
    RpcError,
    accepts_of,
    declared_methods,
    declared_sends,
    describe_failure,
    load_component_module,
    read_contract_statically,
)
from engine.runtime.port_system import run_now
from engine.runtime.primitives import Message
from engine.runtime.recipes import RECIPES, PortCallError, Recipe
from engine.sandbox import emit, run_isolated
from engine.validate.requests import interleaved, varied_messages
from engine.validate.v1 import scratch_copy

Shape = dict[str, str]


class RecipeCheck(BaseModel):
    """Whether the recipe the seed's mapping names answered as the component's code does."""

    recipe: str
    equivalent: bool
    requests: int = 0
    why: str


class CodeFacts(BaseModel):
    """What is known of one v1 component's code."""

    has_code: bool = False
    imports: bool | None = None
    """None: not tried (read without running it)."""
    import_error: str | None = None
    methods: dict[str, Shape | None] | None = None
    """Each method with the shape it accepts (None: not declared); None: the methods are not known."""
    sends: dict[str, Shape] = {}
    recipe_check: RecipeCheck | None = None


def module_path(v1_dir: Path, name: str) -> Path:
    return v1_dir / "components" / f"{name}.py"


def static_facts(v1: V1Blueprint, v1_dir: Path | None) -> dict[str, CodeFacts]:
    """Facts read from the source without running it (for a module that does not import, all there is)."""
    out = {}
    for comp in v1.system.components:
        path = module_path(v1_dir, comp.name) if v1_dir is not None else None
        if path is None or not path.is_file():
            out[comp.name] = CodeFacts(has_code=False)
            continue
        contract = read_contract_statically(path)
        if contract is None:
            out[comp.name] = CodeFacts(has_code=True)
            continue
        methods, sends = contract
        out[comp.name] = CodeFacts(
            has_code=True,
            methods={m: accepts_of(spec) for m, spec in methods.items()},
            sends=_shapes(sends),
        )
    return out


def unreachable_calls(v1: V1Blueprint, facts: dict[str, CodeFacts]) -> dict[str, dict[str, tuple[str, str]]]:
    """Per component, its declared calls whose target does not exist, with what the legacy runtime answers.

    The words are :class:`~engine.runtime.legacy.LegacySystem`'s, so hosted
    code meets the same failure in v2 as in v1.
    """
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for comp in v1.system.components:
        for ref in comp.calls:
            callee, _, method = ref.partition(".")
            known = facts[callee].methods if callee in facts else None
            if v1.component(callee) is None:
                out.setdefault(comp.name, {})[ref] = (
                    "unknown_component",
                    f"no component '{callee}' in the system",
                )
            elif known is not None and method not in known:
                out.setdefault(comp.name, {})[ref] = (
                    "unknown_method",
                    f"'{callee}' has no method '{method}'",
                )
    return out


# --------------------------------------------------------------------------- parent side


def probe_code(
    v1: V1Blueprint, v1_dir: Path, limits: SandboxPolicy | None = None
) -> tuple[dict[str, CodeFacts], list[str]]:
    """Facts for every component, learnt in a sandbox; plus one line per module that broke the probe.

    A module that kills the child (exits, hangs, runs out of memory) gets that
    failure as its facts and the rest are probed again without it. ``limits``:
    the policy's ``[sandbox]`` time and memory for one run.
    """
    limits = limits or SandboxPolicy()
    facts = static_facts(v1, v1_dir)
    todo = [c.name for c in v1.system.components if facts[c.name].has_code]
    notes: list[str] = []
    with scratch_copy(v1_dir) as copy_dir:
        while todo:
            result = run_isolated(
                "engine.convert.probe:probe_system",
                {"v1_dir": str(copy_dir), "blueprint": v1.model_dump(mode="json"), "only": todo},
                timeout_s=limits.timeout_s,
                memory_mb=limits.memory_mb,
                writable=[copy_dir],
                cwd=copy_dir,
            )
            step: dict[str, Any] = {}
            for record in result.emitted:
                if not isinstance(record, dict):
                    continue
                if "facts" in record:
                    facts[record["component"]] = CodeFacts.model_validate(record["facts"])
                elif "check" in record:
                    checked = facts[record["component"]]
                    checked.recipe_check = RecipeCheck.model_validate(record["check"])
                elif "step" in record:
                    step = record
            done = {r["component"] for r in result.emitted if isinstance(r, dict) and "done" in r}
            todo = [n for n in todo if n not in done]
            if result.ok or not todo:
                break
            culprit = step.get("component") if step.get("component") in todo else todo[0]
            failure = result.failure or "failed"
            what = step.get("step", f"probing {culprit}")
            notes.append(f"components/{culprit}.py {failure} while {what}")
            stuck = facts[culprit]
            if stuck.imports:  # it imported; the recipe check is what it did not survive
                recipe = recipe_for(v1.component(culprit).type)[0]  # type: ignore[union-attr]
                stuck.recipe_check = RecipeCheck(
                    recipe=recipe,
                    equivalent=False,
                    why=f"checking it against recipe {recipe}, the code {failure}",
                )
            else:
                stuck.imports, stuck.import_error = False, f"importing it {failure}"
            todo.remove(culprit)
    return facts, notes


# --------------------------------------------------------------------------- child side


def probe_system(payload: dict[str, Any]) -> dict[str, Any]:
    """Sandbox target: import each module named in ``only``, read its contract, check its recipe."""
    v1_dir = Path(payload["v1_dir"])
    v1 = V1Blueprint.model_validate(payload["blueprint"])
    facts = static_facts(v1, v1_dir)
    wanted = [c for c in v1.system.components if c.name in set(payload["only"])]
    modules: dict[str, ModuleType] = {}
    for comp in wanted:  # every import first: the recipe checks need every method known
        emit({"step": f"importing components/{comp.name}.py", "component": comp.name})
        found, module = _import(comp, module_path(v1_dir, comp.name), facts[comp.name])
        facts[comp.name] = found
        if module is not None:
            modules[comp.name] = module
        emit({"component": comp.name, "facts": found.model_dump(mode="json")})
    unreachable = unreachable_calls(v1, facts)
    for comp in wanted:
        if comp.name in modules:
            emit({"step": f"checking {comp.name} against its recipe", "component": comp.name})
            check = check_recipe(comp, modules[comp.name], facts[comp.name], unreachable.get(comp.name, {}))
            emit({"component": comp.name, "check": check.model_dump(mode="json")})
        emit({"component": comp.name, "done": True})
    return {"probed": [c.name for c in wanted]}


def _import(comp: V1Component, path: Path, known: CodeFacts) -> tuple[CodeFacts, ModuleType | None]:
    try:
        module = load_component_module(path)
    except Exception as exc:  # noqa: BLE001 - the failure is the fact
        return known.model_copy(
            update={"imports": False, "import_error": f"{type(exc).__name__}: {exc}"}
        ), None
    if not inspect.isclass(getattr(module, "Component", None)):
        return known.model_copy(
            update={"imports": False, "import_error": "module does not define Component"}
        ), None
    methods = {m: accepts_of(spec) for m, spec in declared_methods(module).items()}
    sends = _shapes(declared_sends(module)) if hasattr(module, "SENDS") else {}
    return CodeFacts(has_code=True, imports=True, methods=methods, sends=sends), module


def _shapes(table: Any) -> dict[str, Shape]:
    if not isinstance(table, dict):
        return {}
    return {str(k): {str(f): str(t) for f, t in v.items()} for k, v in table.items() if isinstance(v, dict)}


def _stub_reply(ref: str, message: Any) -> Message:
    """What every stubbed call answers: the same for code and recipe, and telling of what was sent."""
    return {"stub": ref, "echo": copy.deepcopy(message)}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def check_recipe(
    comp: V1Component, module: ModuleType, facts: CodeFacts, unreachable: dict[str, tuple[str, str]]
) -> RecipeCheck:
    """Send the code and its recipe the same requests from a fresh start; equivalent iff all answers match."""
    recipe_name, config, _ = recipe_config(
        comp, {m: {"accepts": s} for m, s in (facts.methods or {}).items()}
    )

    def verdict(why: str) -> RecipeCheck:
        return RecipeCheck(recipe=recipe_name, equivalent=False, why=why)

    if recipe_for(comp.type)[1] == "defaulted":
        return verdict(f"no recipe does what a {comp.type} does (the default one would not)")
    try:
        recipe = RECIPES[recipe_name].parse(config)
    except (ValidationError, ValueError) as exc:
        first = (
            exc.errors(include_url=False)[0]
            if isinstance(exc, ValidationError)
            else {"loc": (), "msg": str(exc)}
        )
        where = ".".join(map(str, first["loc"]))
        place = f"{where}: " if where else ""
        return verdict(f"recipe {recipe_name} cannot use its configuration ({place}{first['msg']})")
    methods = facts.methods or {}
    problem = _ports_problem(comp, recipe, methods)
    if problem:
        return verdict(problem)
    sequence = interleaved({m: varied_messages(shape) for m, shape in methods.items() if shape is not None})
    code_answers = _code_answers(comp, module, sequence, unreachable)
    try:
        recipe_answers = run_now(
            _recipe_answers(comp, RECIPES[recipe_name].parse(config), sequence, unreachable), comp.name
        )
    except PortCallError as exc:  # a recipe that waits on something cannot stand in for synchronous code
        return verdict(f"recipe {recipe_name} did not answer at once ({exc.detail})")
    for (method, message), old, new in zip(sequence, code_answers, recipe_answers, strict=True):
        if _canonical(old) != _canonical(new):
            return verdict(
                f"recipe {recipe_name} answered differently on {method} {_canonical(message)[:120]}: "
                f"code {_canonical(old)[:160]}, recipe {_canonical(new)[:160]}"
            )
    return RecipeCheck(
        recipe=recipe_name,
        equivalent=True,
        requests=len(sequence),
        why=f"it gave the same answers and made the same calls as the code on {len(sequence)} requests",
    )


def _ports_problem(comp: V1Component, recipe: Recipe, methods: dict[str, Shape | None]) -> str | None:
    """Why the recipe's ports cannot stand in for the code's methods and calls (None: they can)."""
    for method in sorted(methods):
        if recipe.resolve_input(method) is None:
            return f"recipe {recipe.name} has no input for method '{method}'"
        if methods[method] is None:
            return f"method '{method}' declares no message shape to test recipe {recipe.name} with"
    made = {p.ref: p for p in recipe.outputs()}
    for ref in dict.fromkeys(comp.calls):
        if ref not in made:
            return f"recipe {recipe.name} makes no call to {ref}, which the component declares"
    for ref, port in made.items():
        if ref not in comp.calls and port.required:
            return f"recipe {recipe.name} would call {ref}, which the component does not declare"
    return None


def _code_answers(
    comp: V1Component, module: ModuleType, sequence: list[tuple[str, Message]], unreachable: dict
) -> list[dict[str, Any]]:
    made: list[tuple[str, Any]] = []

    def call(target: str, message: Any) -> Message:
        made.append((target, copy.deepcopy(message)))
        if target in unreachable:
            raise RpcError(unreachable[target][0], target, unreachable[target][1])
        return _stub_reply(target, message)

    try:
        instance = module.Component(comp.name, copy.deepcopy(comp.configuration), call)
    except Exception as exc:  # noqa: BLE001 - a component that cannot be built answers nothing alike
        return [{"error": f"not built: {describe_failure(exc)}"} for _ in sequence]
    answers = []
    for method, message in sequence:
        made.clear()
        target = f"{comp.name}.{method}"
        try:
            result: Any = getattr(instance, method)(copy.deepcopy(message))
            outcome: dict[str, Any] = {"reply": result}
            if not isinstance(result, dict):
                outcome = _error(
                    "component_error", target, f"returned {type(result).__name__}, not a mapping"
                )
        except RpcError as exc:
            outcome = _error(exc.kind, exc.target, exc.detail)
        except Exception as exc:  # noqa: BLE001 - a failure is an answer too
            outcome = _error("component_error", target, describe_failure(exc))
        answers.append({**outcome, "calls": list(made)})
    return answers


async def _recipe_answers(
    comp: V1Component, recipe: Recipe, sequence: list[tuple[str, Message]], unreachable: dict
) -> list[dict[str, Any]]:
    ports = {p.name: p for p in recipe.outputs()}
    made: list[tuple[str, Any]] = []

    async def call(port: str, message: Message) -> Message | None:
        out = ports[port]
        made.append((out.ref, copy.deepcopy(message)))
        if out.ref in unreachable:  # dropped at conversion: unbound in v2
            if not out.required:
                return None
            raise PortCallError("unbound_port", f"{comp.name}.{port}", "no binding from this output port")
        return _stub_reply(out.ref, message)

    answers = []
    for method, message in sequence:
        made.clear()
        port = recipe.resolve_input(method) or method
        target = f"{comp.name}.{port}"
        try:
            outcome: dict[str, Any] = {"reply": await recipe.handle(port, copy.deepcopy(message), call)}
        except PortCallError as exc:
            outcome = _error(exc.kind, exc.target, exc.detail)
        except Exception as exc:  # noqa: BLE001 - as the port runtime reports a recipe's failure
            outcome = _error("component_error", target, f"{type(exc).__name__}: {exc}")
        answers.append({**outcome, "calls": list(made)})
    return answers


def _error(kind: str, target: str, detail: str) -> dict[str, Any]:
    return {"error": {"kind": kind, "target": target, "detail": detail}}
