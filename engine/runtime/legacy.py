"""Legacy RPC runtime: runs a v1 system's component modules as nested synchronous calls.

The contract a v1 component module (``components/<component>.py``) follows:

``Component`` (required)
    A class built as ``Component(name, config, call)``: ``config`` is the
    component's blueprint ``configuration`` as is (any YAML value: a mapping,
    a list, ...), and ``call(target, message) -> dict`` performs an RPC to
    ``"<component>.<method>"``. A method takes one ``dict`` (the message) and
    returns a ``dict``; raising is a failed call.
``METHODS`` (optional)
    ``{method: {"accepts": {field: type}, "returns": {field: type}}}`` where a
    type is one of ``str int float bool list dict any``. It names the methods
    callers may call (and the entry component's public endpoints); every
    ``accepts`` field is required, and ``accepts``/``returns`` may be left
    out. Without a ``METHODS`` table, every public method of ``Component``
    (a name not starting with ``_``) is a method that takes any message.
``SENDS`` (optional)
    ``{"<component>.<method>": {field: type}}``: the message shape this
    component sends on each of its calls (what the validator compares with the
    callee's ``accepts``; without it, the callee's runtime check is the only one).

The calls a component makes are listed in its blueprint entry (``calls``);
conversion turns each into a port binding.

The runtime plays the part of the old RPC framework: it resolves the target,
checks the message against the callee's declared shape (a mismatch is an
:class:`RpcError`, as a marshalling layer would raise) and invokes the method.
Modules are loaded from their files under a private module name so that two
systems with a component of the same name never share state.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import inspect
import itertools
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.models.blueprint_v1 import V1Blueprint

TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
    "any": lambda v: True,
}
"""Field types a v1 message shape may name, and how a value is checked against each."""

MAX_CALL_DEPTH = 32
"""Deeper nesting than this is treated as a call cycle."""

_module_counter = itertools.count()


class RpcError(Exception):
    """A call failed inside the legacy runtime.

    ``kind`` is one of ``unknown_component``, ``unknown_method``,
    ``bad_message``, ``component_error``, ``not_loaded``, ``call_depth``.
    """

    def __init__(self, kind: str, target: str, detail: str):
        self.kind = kind
        self.target = target
        self.detail = detail
        super().__init__(f"{kind} at {target}: {detail}")


def exception_text(exc: BaseException) -> str:
    """An exception's message; a MemoryError has none, so it is said (the process's memory limit was met)."""
    return str(exc) or ("out of memory" if isinstance(exc, MemoryError) else "")


def shape_problems(shape: dict[str, str], message: Any) -> list[str]:
    """What is wrong with ``message`` against a declared shape (empty list: it fits)."""
    if not isinstance(message, dict):
        return [f"message is {type(message).__name__}, expected a mapping"]
    problems = []
    for fld, type_name in shape.items():
        if fld not in message:
            problems.append(f"missing field '{fld}' ({type_name})")
            continue
        check = TYPE_CHECKS.get(type_name)
        if check is None:
            problems.append(f"field '{fld}' declares unknown type '{type_name}'")
        elif not check(message[fld]):
            problems.append(f"field '{fld}' is {type(message[fld]).__name__}, expected {type_name}")
    return problems


def example_message(shape: dict[str, str]) -> dict[str, Any]:
    """A small message that fits ``shape``: what a smoke request sends."""
    samples: dict[str, Any] = {
        "str": "smoke",
        "int": 1,
        "float": 1.0,
        "bool": True,
        "list": [],
        "dict": {},
        "any": "smoke",
    }
    return {fld: samples.get(type_name, "smoke") for fld, type_name in shape.items()}


def describe_failure(exc: BaseException) -> str:
    """``"ValueError: bad qty (orders.py:14)"``: the exception and the innermost line it came from."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exception_text(exc)}{where}"


def load_component_module(path: Path) -> ModuleType:
    """Import one component file in isolation under a private, unique module name.

    Raises whatever the module raises on import (ImportError for a missing
    dependency, SyntaxError, ...); the caller decides whether that is a failed
    check or a failed start.
    """
    mod_name = f"_switchyard_v1_{next(_module_counter)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and typing need the module registered
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    return module


def declared_methods(module: ModuleType) -> dict[str, dict[str, dict[str, str]]]:
    """The module's ``METHODS`` table; without one, each public method of ``Component`` taking any message."""
    methods = getattr(module, "METHODS", None)
    if methods is None:
        cls = getattr(module, "Component", None)
        return {name: {} for name in public_methods(cls)} if inspect.isclass(cls) else {}
    if not isinstance(methods, dict):
        return {}
    return {m: spec if isinstance(spec, dict) else {} for m, spec in methods.items() if isinstance(m, str)}


def public_methods(cls: type) -> list[str]:
    """Names of the callable, non-underscore attributes of a component class (inherited ones too)."""
    return sorted(
        name
        for name in dir(cls)
        if not name.startswith("_")
        and callable(getattr(cls, name, None))
        and not inspect.isclass(getattr(cls, name, None))
    )


def accepts_of(spec: Any) -> dict[str, str] | None:
    """A ``METHODS`` entry's ``accepts`` shape; None when the module does not declare one."""
    accepts = spec.get("accepts") if isinstance(spec, dict) else None
    if not isinstance(accepts, dict):
        return None
    return {str(k): _type_name(v) for k, v in accepts.items()}


def _type_name(declared: Any) -> str:
    """A declared field type as one of :data:`TYPE_CHECKS`' names: ``"int"`` and ``int`` alike."""
    if isinstance(declared, type) and declared.__name__ in TYPE_CHECKS:
        return declared.__name__
    if declared is Any or declared is object:
        return "any"
    return str(declared)


def read_contract_statically(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]] | None:
    """``(methods, sends)`` of a component file read without running it; None if it cannot be parsed.

    For modules that do not import (a missing dependency): their contract is
    still known from the source. ``METHODS``/``SENDS`` count only when they are
    literals; without a ``METHODS`` literal, the public ``def``s of ``class
    Component`` are the methods.
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    tables: dict[str, Any] = {}
    class_methods: list[str] | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in ("METHODS", "SENDS"):
                    try:
                        value = ast.literal_eval(node.value)
                    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                        value = None
                    tables[target.id] = value if isinstance(value, dict) else None
        elif isinstance(node, ast.ClassDef) and node.name == "Component":
            class_methods = [
                f.name
                for f in node.body
                if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and not f.name.startswith("_")
            ]
    methods = tables.get("METHODS")
    if methods is None:
        methods = {m: {} for m in class_methods or []}
    methods = {m: spec if isinstance(spec, dict) else {} for m, spec in methods.items() if isinstance(m, str)}
    return methods, tables.get("SENDS") or {}


def declared_sends(module: ModuleType) -> dict[str, dict[str, str]]:
    """The module's ``SENDS`` table, or an empty one."""
    sends = getattr(module, "SENDS", {})
    return sends if isinstance(sends, dict) else {}


def v1_entry(blueprint: V1Blueprint) -> str:
    """The component that receives outside requests: the APIGateway, else one nobody calls, else the first."""
    comps = blueprint.system.components
    for comp in comps:
        if comp.type == "APIGateway":
            return comp.name
    called = {ref.split(".")[0] for c in comps for ref in c.calls}
    for comp in comps:
        if comp.name not in called:
            return comp.name
    return comps[0].name


@dataclass
class LoadedComponent:
    """A component module and its live instance."""

    name: str
    module: ModuleType
    instance: Any
    methods: dict[str, dict[str, dict[str, str]]]


@dataclass
class LegacySystem:
    """A v1 system loaded into this process, ready to serve requests.

    ``load_errors`` maps a component name to why it could not be loaded; such
    a component answers every call with ``RpcError("not_loaded")``.
    """

    blueprint: V1Blueprint
    system_dir: Path
    components: dict[str, LoadedComponent] = field(default_factory=dict)
    load_errors: dict[str, str] = field(default_factory=dict)
    _depth: int = 0

    @classmethod
    def load(
        cls,
        system_dir: Path,
        blueprint: V1Blueprint,
        *,
        skip: dict[str, str] | None = None,
        before: Callable[[str], None] | None = None,
        modules: dict[str, ModuleType] | None = None,
    ) -> LegacySystem:
        """Import and instantiate every component; failures are recorded, not raised.

        ``skip`` names components not to load, with the reason each is
        recorded under (one whose import failed or ended a sandboxed check
        process); ``before(name)`` is called before each component is loaded;
        ``modules`` are components already imported (by the validator's
        import check), instantiated without importing them again.
        """
        system = cls(blueprint=blueprint, system_dir=system_dir)
        for comp in blueprint.system.components:
            if skip and comp.name in skip:
                system.load_errors[comp.name] = skip[comp.name]
                continue
            if before is not None:
                before(comp.name)
            path = system_dir / "components" / f"{comp.name}.py"
            try:
                module = (modules or {}).get(comp.name) or load_component_module(path)
                instance = module.Component(comp.name, copy.deepcopy(comp.configuration), system.call)
            except Exception as exc:  # noqa: BLE001 - any failure to load is reported per component
                system.load_errors[comp.name] = f"{type(exc).__name__}: {exception_text(exc)}"
                continue
            system.components[comp.name] = LoadedComponent(
                comp.name, module, instance, declared_methods(module)
            )
        return system

    @property
    def entry(self) -> str:
        """The component that receives outside requests (:func:`v1_entry`)."""
        return v1_entry(self.blueprint)

    def endpoints(self) -> dict[str, dict[str, str]]:
        """Entry methods with the message shape each accepts (empty if the entry failed to load)."""
        loaded = self.components.get(self.entry)
        if loaded is None:
            return {}
        return {m: accepts_of(spec) or {} for m, spec in loaded.methods.items()}

    def call(self, target: str, message: dict[str, Any]) -> dict[str, Any]:
        """Perform one RPC ``<component>.<method>`` with ``message``."""
        comp_name, _, method = target.partition(".")
        if self.blueprint.component(comp_name) is None:
            raise RpcError("unknown_component", target, f"no component '{comp_name}' in the system")
        loaded = self.components.get(comp_name)
        if loaded is None:
            raise RpcError("not_loaded", target, self.load_errors.get(comp_name, "not loaded"))
        spec = loaded.methods.get(method)
        impl = getattr(loaded.instance, method, None)
        if spec is None or not callable(impl):
            raise RpcError("unknown_method", target, f"'{comp_name}' has no method '{method}'")
        problems = shape_problems(accepts_of(spec) or {}, message)
        if problems:
            raise RpcError("bad_message", target, "; ".join(problems))
        if self._depth >= MAX_CALL_DEPTH:
            raise RpcError("call_depth", target, f"more than {MAX_CALL_DEPTH} nested calls")
        self._depth += 1
        try:
            result = impl(message)
        except RpcError:
            raise
        except Exception as exc:  # noqa: BLE001 - a component bug is a failed call, not a crash
            raise RpcError("component_error", target, describe_failure(exc)) from exc
        finally:
            self._depth -= 1
        if not isinstance(result, dict):
            raise RpcError("component_error", target, f"returned {type(result).__name__}, not a mapping")
        return result

    def handle(self, endpoint: str, message: dict[str, Any]) -> dict[str, Any]:
        """Serve one outside request: call ``<entry>.<endpoint>``."""
        return self.call(f"{self.entry}.{endpoint}", message)
