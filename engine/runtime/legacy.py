"""Legacy RPC runtime: runs a v1 system's component modules as nested synchronous calls.

The contract a v1 component module (``components/<component>.py``) follows:

``METHODS``
    ``{method: {"accepts": {field: type}, "returns": {field: type}}}`` where a
    type is one of ``str int float bool list dict any``. Every ``accepts``
    field is required.
``SENDS``
    ``{"<component>.<method>": {field: type}}``: the message shape this
    component sends on each of its calls (what the validator compares with the
    callee's ``accepts``).
``Component``
    A class built as ``Component(name, config, call)`` where ``call(target,
    message) -> dict`` performs an RPC to ``"<component>.<method>"``. Each
    method named in ``METHODS`` is a method of the class taking one ``dict``
    and returning a ``dict``.

The runtime plays the part of the old RPC framework: it resolves the target,
checks the message against the callee's declared shape (a mismatch is an
:class:`RpcError`, as a marshalling layer would raise) and invokes the method.
Modules are loaded from their files under a private module name so that two
systems with a component of the same name never share state.
"""

from __future__ import annotations

import importlib.util
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
    """The module's ``METHODS`` table, or an empty one."""
    methods = getattr(module, "METHODS", {})
    return methods if isinstance(methods, dict) else {}


def declared_sends(module: ModuleType) -> dict[str, dict[str, str]]:
    """The module's ``SENDS`` table, or an empty one."""
    sends = getattr(module, "SENDS", {})
    return sends if isinstance(sends, dict) else {}


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
    def load(cls, system_dir: Path, blueprint: V1Blueprint) -> LegacySystem:
        """Import and instantiate every component; failures are recorded, not raised."""
        system = cls(blueprint=blueprint, system_dir=system_dir)
        for comp in blueprint.system.components:
            path = system_dir / "components" / f"{comp.name}.py"
            try:
                module = load_component_module(path)
                instance = module.Component(comp.name, dict(comp.configuration), system.call)
            except Exception as exc:  # noqa: BLE001 - any failure to load is reported per component
                system.load_errors[comp.name] = f"{type(exc).__name__}: {exc}"
                continue
            system.components[comp.name] = LoadedComponent(
                comp.name, module, instance, declared_methods(module)
            )
        return system

    @property
    def entry(self) -> str:
        """The component that receives outside requests: the APIGateway, else one nobody calls."""
        comps = self.blueprint.system.components
        for comp in comps:
            if comp.type == "APIGateway":
                return comp.name
        called = {ref.split(".")[0] for c in comps for ref in c.calls}
        for comp in comps:
            if comp.name not in called:
                return comp.name
        return comps[0].name

    def endpoints(self) -> dict[str, dict[str, str]]:
        """Entry methods with the message shape each accepts (empty if the entry failed to load)."""
        loaded = self.components.get(self.entry)
        if loaded is None:
            return {}
        return {m: dict(spec.get("accepts", {})) for m, spec in loaded.methods.items()}

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
        problems = shape_problems(dict(spec.get("accepts", {})), message)
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
            last = traceback.extract_tb(exc.__traceback__)[-1]
            raise RpcError(
                "component_error",
                target,
                f"{type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})",
            ) from exc
        finally:
            self._depth -= 1
        if not isinstance(result, dict):
            raise RpcError("component_error", target, f"returned {type(result).__name__}, not a mapping")
        return result

    def handle(self, endpoint: str, message: dict[str, Any]) -> dict[str, Any]:
        """Serve one outside request: call ``<entry>.<endpoint>``."""
        return self.call(f"{self.entry}.{endpoint}", message)
