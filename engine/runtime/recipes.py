"""The recipes a v2 component can be built from: thirteen driven by config, and ``Hosted``.

A recipe is a config schema (pydantic), a port signature (input ports with
the message schema each accepts, output ports named after the calls its
config makes) and the behaviour, written once here and driven only by
config. Seven recipes come from the seed's mapping (Store, APIEndpoint,
Controller, Router, Aggregator, Filter, Transformer); six more cover the
fleet's other component types (Source, Sink, Queue, Cache, Validator,
Scheduler).

``Hosted`` is different: it runs a v1 component's own code
(``components/<module>.py``, copied beside the v2 blueprint) behind ports,
one input port per method and one output port per declared call, so a
migration changes how components talk and not what they do. It is what the
converter chooses unless a config-driven recipe was shown to answer as the
code does.

An output port is named ``to_<component>_<method>`` after the
``<component>.<method>`` reference in the config it serves; a binding wires
it to the callee's input port. A call on an *optional* port that nothing is
bound to is skipped (e.g. a Controller's ``also`` side call); a *required*
one fails validation.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.models.common import DOTTED_PATTERN
from engine.runtime.legacy import describe_failure, exception_text, load_component_module, shape_problems
from engine.runtime.primitives import Message, MessageSchema

Call = Callable[[str, Message], Awaitable[Message | None]]
"""``call(output_port, message)``: send on a port and await the reply (None if unbound and optional)."""

STORE_PORTS: dict[str, MessageSchema] = {"insert": {"record": "dict"}, "get": {"id": "int"}, "list": {}}


class PortCallError(Exception):
    """A call in the port runtime failed.

    ``kind`` is ``unbound_port``, ``unknown_port`` or ``component_error``; a
    hosted component also answers with the legacy runtime's kinds
    (``not_loaded``, ``unknown_method``, ``bad_message``, ``unknown_component``)
    and words, so an old and a new version that fail alike answer alike.
    """

    def __init__(self, kind: str, target: str, detail: str):
        self.kind, self.target, self.detail = kind, target, detail
        super().__init__(f"{kind} at {target}: {detail}")


SyncCall = Callable[[str, Message], Message]
"""``call_now(output_port, message)``: a call that completes before it returns (what hosted code needs)."""


def out_port(ref: str) -> str:
    """Output port name for a ``<component>.<method>`` reference."""
    return "to_" + ref.replace(".", "_")


@dataclass(frozen=True)
class OutPort:
    name: str
    ref: str
    schema: MessageSchema | None
    """What every message on the port carries; None when the code does not say (hosted, without SENDS)."""
    required: bool = True


class RecipeConfig(BaseModel):
    """Base of recipe configs: unknown keys are kept (and reported by the converter), never an error."""

    model_config = ConfigDict(extra="allow")
    concurrency: int = Field(1, ge=1, le=64, description="Workers processing this component's messages.")
    batch_size: int = Field(1, ge=1, le=1024, description="Messages a worker takes at once.")
    buffer: int = Field(64, ge=1, le=65536, description="Bound of each input stream (back-pressure).")


class Recipe:
    """Base: subclasses set ``name``, ``Config``, ports and ``handle``."""

    name: ClassVar[str]
    Config: ClassVar[type[RecipeConfig]] = RecipeConfig
    aliases: ClassVar[dict[str, str]] = {}
    """Legacy method names that mean one of this recipe's input ports (``fetch_all`` -> ``list``)."""
    passes_through: ClassVar[bool] = False
    """Sends on what it received (plus its own changes), so its output schema is its input's."""

    def __init__(self, config: RecipeConfig):
        self.config = config

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Recipe:
        return cls(cls.Config.model_validate(raw))

    @classmethod
    def used_keys(cls) -> set[str]:
        return set(cls.Config.model_fields)

    def inputs(self) -> dict[str, MessageSchema]:
        raise NotImplementedError

    def outputs(self) -> list[OutPort]:
        return []

    def resolve_input(self, method: str) -> str | None:
        """The input port a legacy method name lands on, or None."""
        if method in self.inputs():
            return method
        return self.aliases.get(method)

    def start(self, name: str, code_dir: Path | None, call_now: SyncCall) -> None:
        """Called once as the system starts, before any message (a hosted component loads its code)."""

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        raise NotImplementedError


# --------------------------------------------------------------------------- the seed's seven


class StoreConfig(RecipeConfig):
    key_field: str = "id"
    capacity: int = Field(1000, ge=1)


class Store(Recipe):
    """Keeps records in memory: insert, get, list."""

    name = "Store"
    Config = StoreConfig
    aliases = {
        "fetch_all": "list",
        "all": "list",
        "scan": "list",
        "put": "insert",
        "add": "insert",
        "save": "insert",
        "fetch": "get",
        "read": "get",
        "find": "get",
    }

    def __init__(self, config: RecipeConfig):
        super().__init__(config)
        self.records: dict[int, dict] = {}
        self.next_id = 1

    def inputs(self) -> dict[str, MessageSchema]:
        return STORE_PORTS

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: StoreConfig = self.config  # type: ignore[assignment]
        if port == "insert":
            if len(self.records) >= cfg.capacity:
                return {"stored": False, "error": "store is full"}
            record = dict(message["record"])
            record[cfg.key_field] = self.next_id
            self.records[self.next_id] = record
            self.next_id += 1
            return {"stored": True, "id": self.next_id - 1, "record": record}
        if port == "get":
            record = self.records.get(message["id"])
            return {"found": record is not None, "record": record or {}}
        return {"records": [self.records[k] for k in sorted(self.records)], "count": len(self.records)}


class APIEndpointConfig(RecipeConfig):
    routes: dict[str, str] = Field(default_factory=dict, description="endpoint -> '<component>.<method>'")


class APIEndpoint(Recipe):
    """The system's public entry: one input port per endpoint, forwarded to its route."""

    name = "APIEndpoint"
    Config = APIEndpointConfig
    endpoint_schemas: dict[str, MessageSchema] | None = None
    """Filled by the converter from the v1 gateway's declared shapes (the public contract)."""

    def inputs(self) -> dict[str, MessageSchema]:
        cfg: APIEndpointConfig = self.config  # type: ignore[assignment]
        shapes = getattr(cfg, "endpoint_schemas", None) or {}
        return {ep: dict(shapes.get(ep, {})) for ep in cfg.routes}

    def outputs(self) -> list[OutPort]:
        cfg: APIEndpointConfig = self.config  # type: ignore[assignment]
        shapes = getattr(cfg, "endpoint_schemas", None) or {}
        seen: dict[str, OutPort] = {}
        for ep, ref in cfg.routes.items():
            seen.setdefault(ref, OutPort(out_port(ref), ref, dict(shapes.get(ep, {}))))
        return list(seen.values())

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: APIEndpointConfig = self.config  # type: ignore[assignment]
        data = await call(out_port(cfg.routes[port]), dict(message))
        return {"status": "ok", "endpoint": port, "data": data}


class Action(BaseModel):
    model_config = ConfigDict(extra="allow")
    call: str
    require: list[str] = Field(default_factory=list)
    wrap: str | None = None
    also: str | None = None


class ControllerConfig(RecipeConfig):
    actions: dict[str, Action] = Field(default_factory=dict)


class Controller(Recipe):
    """Business rules: per action, check required fields, wrap, call on, optionally notify a side port."""

    name = "Controller"
    Config = ControllerConfig

    def inputs(self) -> dict[str, MessageSchema]:
        cfg: ControllerConfig = self.config  # type: ignore[assignment]
        out = {}
        for action, spec in cfg.actions.items():
            out[action] = {f: "str" for f in spec.require}
            if spec.call.endswith((".get", ".fetch", ".read", ".find")):
                out[action] = {"id": "int"}
        return out

    def outputs(self) -> list[OutPort]:
        cfg: ControllerConfig = self.config  # type: ignore[assignment]
        ports: dict[str, OutPort] = {}
        for spec in cfg.actions.values():
            schema = {spec.wrap: "dict"} if spec.wrap else {}
            if spec.call.endswith((".get", ".fetch", ".read", ".find")):
                schema = {"id": "int"}
            ports.setdefault(spec.call, OutPort(out_port(spec.call), spec.call, schema))
            if spec.also:
                ports.setdefault(spec.also, OutPort(out_port(spec.also), spec.also, {"action": "str"}, False))
        return list(ports.values())

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: ControllerConfig = self.config  # type: ignore[assignment]
        spec = cfg.actions[port]
        missing = [f for f in spec.require if message.get(f) in (None, "")]
        if missing:
            return {"ok": False, "action": port, "error": "missing " + ", ".join(missing)}
        payload = {spec.wrap: dict(message)} if spec.wrap else dict(message)
        result = await call(out_port(spec.call), payload)
        if spec.also:
            await call(out_port(spec.also), {"action": port})
        return {"ok": True, "action": port, "result": result}


class RouterConfig(RecipeConfig):
    route_field: str = "kind"
    routes: dict[str, str] = Field(default_factory=dict)
    default: str


class Router(Recipe):
    """Sends each message on by the value of one field."""

    name = "Router"
    Config = RouterConfig
    aliases = {"handle": "route"}

    def inputs(self) -> dict[str, MessageSchema]:
        return {"route": {self.config.route_field: "str"}}  # type: ignore[attr-defined]

    def outputs(self) -> list[OutPort]:
        cfg: RouterConfig = self.config  # type: ignore[assignment]
        refs = dict.fromkeys([*cfg.routes.values(), cfg.default])
        return [OutPort(out_port(r), r, {cfg.route_field: "str"}) for r in refs]

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: RouterConfig = self.config  # type: ignore[assignment]
        target = cfg.routes.get(str(message.get(cfg.route_field)), cfg.default)
        return {"routed_to": target, "result": await call(out_port(target), dict(message))}


class AggregatorConfig(RecipeConfig):
    sources: list[str] = Field(default_factory=list)
    operation: str = Field("count", pattern="^(count|sum|max|min)$")
    field: str | None = None


class Aggregator(Recipe):
    """Fans out to every source and combines their records."""

    name = "Aggregator"
    Config = AggregatorConfig
    aliases = {"handle": "aggregate"}

    def inputs(self) -> dict[str, MessageSchema]:
        return {"aggregate": {}}

    def outputs(self) -> list[OutPort]:
        return [OutPort(out_port(s), s, {}) for s in self.config.sources]  # type: ignore[attr-defined]

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: AggregatorConfig = self.config  # type: ignore[assignment]
        records: list[dict] = []
        for source in cfg.sources:
            records.extend(((await call(out_port(source), {})) or {}).get("records", []))
        numbers = (
            [r[cfg.field] for r in records if isinstance(r.get(cfg.field), (int, float))] if cfg.field else []
        )
        value: float = {
            "count": len(records),
            "sum": sum(numbers),
            "max": max(numbers, default=0),
            "min": min(numbers, default=0),
        }[cfg.operation]
        return {"operation": cfg.operation, "value": value, "sources": len(cfg.sources)}


class FilterConfig(RecipeConfig):
    field: str
    op: str = Field("eq", pattern="^(eq|ne|gt|lt|contains)$")
    value: Any = None
    next: str | None = None


class Filter(Recipe):
    """Passes a message on only when one field satisfies a condition."""

    name = "Filter"
    Config = FilterConfig
    aliases = {"handle": "filter"}
    passes_through = True

    def inputs(self) -> dict[str, MessageSchema]:
        return {"filter": {self.config.field: "any"}}  # type: ignore[attr-defined]

    def outputs(self) -> list[OutPort]:
        nxt = self.config.next  # type: ignore[attr-defined]
        return [OutPort(out_port(nxt), nxt, {}, required=True)] if nxt else []

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: FilterConfig = self.config  # type: ignore[assignment]
        value, limit = message.get(cfg.field), cfg.value
        if cfg.op == "eq":
            keep = value == limit
        elif cfg.op == "ne":
            keep = value != limit
        elif cfg.op in ("gt", "lt"):
            keep = isinstance(value, (int, float)) and (value > limit if cfg.op == "gt" else value < limit)
        else:
            keep = str(limit) in str(value)
        if not keep:
            return {"passed": False, "field": cfg.field}
        if cfg.next:
            return {"passed": True, "result": await call(out_port(cfg.next), dict(message))}
        return {"passed": True, "result": dict(message)}


class TransformerConfig(RecipeConfig):
    field: str | None = None
    operation: str | None = Field(None, pattern="^(upper|lower|reverse|greet|prefix)$")
    prefix: str = ""
    next: str | None = None


class Transformer(Recipe):
    """Rewrites one field, then hands the message on (or back). Also the default recipe."""

    name = "Transformer"
    Config = TransformerConfig
    aliases = {"handle": "process", "transform": "process"}
    passes_through = True

    def inputs(self) -> dict[str, MessageSchema]:
        fld = self.config.field  # type: ignore[attr-defined]
        return {"process": {fld: "str"} if fld else {}}

    def outputs(self) -> list[OutPort]:
        nxt = self.config.next  # type: ignore[attr-defined]
        return [OutPort(out_port(nxt), nxt, {})] if nxt else []

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: TransformerConfig = self.config  # type: ignore[assignment]
        out = dict(message)
        if cfg.field and cfg.operation:
            value = str(message[cfg.field])
            out[cfg.field] = {
                "upper": value.upper(),
                "lower": value.lower(),
                "reverse": value[::-1],
                "greet": "Hello, " + value + "!",
                "prefix": cfg.prefix + value,
            }[cfg.operation]
        if cfg.next:
            return await call(out_port(cfg.next), out) or {}
        return out


# --------------------------------------------------------------------------- six more for the fleet


class SourceConfig(RecipeConfig):
    kinds: list[str] = Field(min_length=1)
    batch: int = Field(10, ge=0)
    step: int = 7
    next: str | None = None


class Source(Recipe):
    """Emits a batch of events on demand and sends each one on."""

    name = "Source"
    Config = SourceConfig
    aliases = {"handle": "poll"}

    def inputs(self) -> dict[str, MessageSchema]:
        return {"poll": {"count": "int"}}

    def outputs(self) -> list[OutPort]:
        nxt = self.config.next  # type: ignore[attr-defined]
        return [OutPort(out_port(nxt), nxt, {"seq": "int", "kind": "str", "value": "int"})] if nxt else []

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: SourceConfig = self.config  # type: ignore[assignment]
        count = max(0, min(message["count"], cfg.batch))
        events = [
            {"seq": i, "kind": cfg.kinds[i % len(cfg.kinds)], "value": (i * cfg.step) % 100}
            for i in range(1, count + 1)
        ]
        results = [await call(out_port(cfg.next), e) for e in events] if cfg.next else []
        return {"emitted": len(events), "results": results}


class SinkConfig(RecipeConfig):
    metric: str = "events"
    field: str = "value"


class Sink(Recipe):
    """Counts and totals what it receives."""

    name = "Sink"
    Config = SinkConfig
    aliases = {"handle": "record", "write": "record"}

    def __init__(self, config: RecipeConfig):
        super().__init__(config)
        self.count = 0
        self.total: float = 0

    def inputs(self) -> dict[str, MessageSchema]:
        return {"record": {}}

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: SinkConfig = self.config  # type: ignore[assignment]
        self.count += 1
        value = message.get(cfg.field, 0)
        self.total += value if isinstance(value, (int, float)) else 0
        return {"metric": cfg.metric, "count": self.count, "total": self.total}


class QueueConfig(RecipeConfig):
    capacity: int = Field(100, ge=1)
    consumer: str | None = None


class Queue(Recipe):
    """Buffers payloads and delivers each to its consumer."""

    name = "Queue"
    Config = QueueConfig
    aliases = {"handle": "publish", "enqueue": "publish"}

    def __init__(self, config: RecipeConfig):
        super().__init__(config)
        self.items: list[dict] = []

    def inputs(self) -> dict[str, MessageSchema]:
        return {"publish": {"payload": "dict"}}

    def outputs(self) -> list[OutPort]:
        consumer = self.config.consumer  # type: ignore[attr-defined]
        return [OutPort(out_port(consumer), consumer, {"record": "dict"})] if consumer else []

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: QueueConfig = self.config  # type: ignore[assignment]
        self.items.append(dict(message["payload"]))
        if len(self.items) > cfg.capacity:
            self.items.pop(0)
        delivered = (
            await call(out_port(cfg.consumer), {"record": dict(message["payload"])}) if cfg.consumer else None
        )
        return {"queued": len(self.items), "delivered": delivered is not None}


class CacheConfig(RecipeConfig):
    backend: str
    max_entries: int = Field(128, ge=1)


class Cache(Recipe):
    """Read-through cache in front of a store's get."""

    name = "Cache"
    Config = CacheConfig
    aliases = {"handle": "get", "fetch": "get", "read": "get"}

    def __init__(self, config: RecipeConfig):
        super().__init__(config)
        self.entries: dict[Any, dict] = {}

    def inputs(self) -> dict[str, MessageSchema]:
        return {"get": {"id": "int"}}

    def outputs(self) -> list[OutPort]:
        backend = self.config.backend  # type: ignore[attr-defined]
        return [OutPort(out_port(backend), backend, {"id": "int"})]

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: CacheConfig = self.config  # type: ignore[assignment]
        key = message["id"]
        if key in self.entries:
            return dict(self.entries[key], cached=True)
        result = await call(out_port(cfg.backend), {"id": key}) or {}
        if len(self.entries) >= cfg.max_entries:
            self.entries.pop(next(iter(self.entries)))
        self.entries[key] = result
        return dict(result, cached=False)


class ValidatorConfig(RecipeConfig):
    required: list[str] = Field(default_factory=list)
    next: str | None = None


class Validator(Recipe):
    """Rejects messages missing required fields; passes the rest on."""

    name = "Validator"
    Config = ValidatorConfig
    aliases = {"handle": "validate", "check": "validate"}
    passes_through = True

    def inputs(self) -> dict[str, MessageSchema]:
        return {"validate": {f: "str" for f in self.config.required}}  # type: ignore[attr-defined]

    def outputs(self) -> list[OutPort]:
        nxt = self.config.next  # type: ignore[attr-defined]
        return [OutPort(out_port(nxt), nxt, {})] if nxt else []

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: ValidatorConfig = self.config  # type: ignore[assignment]
        missing = [f for f in cfg.required if message.get(f) in (None, "")]
        if missing:
            return {"valid": False, "missing": missing}
        if cfg.next:
            return {"valid": True, "result": await call(out_port(cfg.next), dict(message))}
        return {"valid": True, "result": dict(message)}


class SchedulerConfig(RecipeConfig):
    jobs: list[str] = Field(default_factory=list)
    interval_s: float = Field(60, gt=0)


class Scheduler(Recipe):
    """Runs every job on each tick."""

    name = "Scheduler"
    Config = SchedulerConfig
    aliases = {"handle": "tick", "run": "tick"}

    def inputs(self) -> dict[str, MessageSchema]:
        return {"tick": {"tick": "int"}}

    def outputs(self) -> list[OutPort]:
        return [OutPort(out_port(j), j, {}) for j in self.config.jobs]  # type: ignore[attr-defined]

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: SchedulerConfig = self.config  # type: ignore[assignment]
        results = [await call(out_port(job), {}) for job in cfg.jobs]
        return {"tick": message["tick"], "ran": len(results), "results": results}


# --------------------------------------------------------------------------- a component's own code

MODULE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}\.py$"


class HostedConfig(RecipeConfig):
    """Where the code is and what its ports are; written by the converter from the v1 component."""

    module: str = Field(pattern=MODULE_PATTERN, description="The code: components/<module> in the v2 folder.")
    type: str = Field("", description="The v1 component type, for people reading the blueprint.")
    configuration: Any = Field(
        default_factory=dict, description="The v1 configuration as is: what the code is built with."
    )
    methods: dict[str, MessageSchema | None] = Field(
        default_factory=dict, description="Input ports: each method, with the shape it accepts (None: any)."
    )
    calls: dict[str, MessageSchema | None] = Field(
        default_factory=dict,
        description="Output ports: each declared call '<component>.<method>', with the shape the code "
        "says it sends (SENDS; None: not declared).",
    )
    unreachable: dict[str, tuple[str, str]] = Field(
        default_factory=dict,
        description="Declared calls whose target does not exist, with the (kind, detail) the legacy "
        "runtime answered them with: the code meets the same failure in v2.",
    )

    @field_validator("calls", "unreachable")
    @classmethod
    def _dotted(cls, refs: dict[str, Any]) -> dict[str, Any]:
        for ref in refs:
            if not re.fullmatch(DOTTED_PATTERN, ref):
                raise ValueError(f"keys of the form '<component>.<method>', not {ref!r}")
        return refs


class Hosted(Recipe):
    """A v1 component's own code behind ports: an input port per method, an output port per declared call.

    The code is built as ``Component(name, configuration, call)`` exactly as
    the legacy runtime builds it; its ``call("<component>.<method>",
    message)`` sends on the output port bound to that callee and returns the
    answer. The code is synchronous, so the call completes there and then
    (:meth:`PortSystem.call_now`). Failures read as the legacy runtime's do
    (same kinds, same words, ``file.py:line`` of the code), so a version
    that fails like the old one answers like it.
    """

    name = "Hosted"
    Config = HostedConfig

    def __init__(self, config: RecipeConfig):
        super().__init__(config)
        self.component = ""
        self.instance: Any = None
        self.load_error: str | None = "not started"

    def inputs(self) -> dict[str, MessageSchema]:
        return {m: dict(shape or {}) for m, shape in self.config.methods.items()}  # type: ignore[attr-defined]

    def outputs(self) -> list[OutPort]:
        cfg: HostedConfig = self.config  # type: ignore[assignment]
        return [
            OutPort(out_port(ref), ref, None if shape is None else dict(shape))
            for ref, shape in cfg.calls.items()
            if ref not in cfg.unreachable
        ]

    def start(self, name: str, code_dir: Path | None, call_now: SyncCall) -> None:
        """Import the module and build the component; a failure is kept and answered as ``not_loaded``."""
        cfg: HostedConfig = self.config  # type: ignore[assignment]
        self.component = name

        def call(target: str, message: Message) -> Message:
            if target in cfg.unreachable:
                kind, detail = cfg.unreachable[target]
                raise PortCallError(kind, target, detail)
            if target not in cfg.calls:
                raise PortCallError(
                    "undeclared_call",
                    target,
                    f"'{name}' calls '{target}', which its blueprint entry does not list under calls",
                )
            return call_now(out_port(target), message)

        if code_dir is None:
            self.load_error = "no folder to load the code from"
            return
        try:
            module = load_component_module(code_dir / cfg.module)
            self.instance = module.Component(name, copy.deepcopy(cfg.configuration), call)
        except Exception as exc:  # noqa: BLE001 - as the legacy runtime: the component answers not_loaded
            self.load_error = f"{type(exc).__name__}: {exception_text(exc)}"
            return
        self.load_error = None

    async def handle(self, port: str, message: Message, call: Call) -> Message:
        cfg: HostedConfig = self.config  # type: ignore[assignment]
        target = f"{self.component}.{port}"
        if self.load_error is not None:
            raise PortCallError("not_loaded", target, self.load_error)
        impl = getattr(self.instance, port, None)
        if port not in cfg.methods or not callable(impl):
            raise PortCallError("unknown_method", target, f"'{self.component}' has no method '{port}'")
        problems = shape_problems(cfg.methods[port] or {}, message)
        if problems:
            raise PortCallError("bad_message", target, "; ".join(problems))
        try:
            result = impl(message)
        except PortCallError:
            raise
        except Exception as exc:  # noqa: BLE001 - the code's failure is the caller's error, as in v1
            raise PortCallError("component_error", target, describe_failure(exc)) from exc
        if not isinstance(result, dict):
            raise PortCallError("component_error", target, f"returned {type(result).__name__}, not a mapping")
        return result


RECIPES: dict[str, type[Recipe]] = {
    r.name: r
    for r in (
        Store,
        APIEndpoint,
        Controller,
        Router,
        Aggregator,
        Filter,
        Transformer,
        Source,
        Sink,
        Queue,
        Cache,
        Validator,
        Scheduler,
        Hosted,
    )
}
"""Every recipe by name: the seed's seven, the six the fleet's other types need, and Hosted."""
CONFIG_RECIPES = tuple(name for name in RECIPES if name != "Hosted")
"""The thirteen recipes driven by config alone (what the seed's mapping and its extension choose from)."""
