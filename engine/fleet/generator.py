"""The sample fleet: 52 v1 systems shaped like the seed's inventory, generated deterministically.

``python -m engine.fleet.generator [OUT_DIR]`` (default ``data/generated_systems``)
writes, for every system, ``blueprint.yaml`` and ``components/<name>.py``.
Running it twice gives byte-identical output: a fixed random seed, fixed
orders, no timestamps.

Like the seed's fleet, most systems carry real defects of the kinds the seed
names, which the v1 validator then *finds* by running them: a component that
imports a module that does not exist, a call to a component or method that
does not exist, and a caller whose message does not match what the callee
accepts. The three pilot systems are clean.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.fleet.templates import render_component
from engine.models.common import dump_yaml
from engine.workspace import SAMPLE_FLEET_DIR

SEED = 278  # a fixed seed (after the seed document's 27.8 %) keeps the fleet byte-identical
FIRST_DAY = dt.date(2025, 7, 22)
LAST_DAY = dt.date(2025, 8, 6)

NAMES: dict[str, list[str]] = {
    "todo": [
        "todo_api_system",
        "todo_list_manager",
        "todo_task_tracker",
        "todo_kanban_board",
        "todo_reminder_service",
        "todo_shared_lists",
        "todo_priority_queue",
        "todo_tagging_api",
        "todo_sync_engine",
        "todo_archive_service",
        "todo_recurring_tasks",
        "todo_team_board",
        "todo_mobile_backend",
        "todo_voice_assistant",
        "todo_calendar_bridge",
    ],
    "api": [
        "hello_world_api",
        "simple_rest_api",
        "user_service_api",
        "inventory_rest_api",
        "payment_gateway_api",
        "notification_api",
        "search_service_api",
        "auth_token_api",
        "product_catalog_api",
        "order_tracking_api",
        "file_upload_api",
        "weather_proxy_api",
    ],
    "data_processing": [
        "data_processing_etl_pipeline",
        "data_processing_log_parser",
        "data_processing_csv_importer",
        "data_processing_event_stream",
        "data_processing_batch_scorer",
        "data_processing_dedup_job",
        "data_processing_metrics_rollup",
        "data_processing_geo_enricher",
    ],
    "monitoring": [
        "monitoring_uptime_checker",
        "monitoring_alert_router",
        "monitoring_latency_tracker",
        "monitoring_log_watcher",
        "monitoring_capacity_planner",
    ],
    "experimental": [
        "experimental_ai_agent",
        "experimental_graph_store",
        "experimental_chat_bot",
        "experimental_rule_engine",
        "experimental_stream_joiner",
        "experimental_feature_flags",
        "experimental_cache_layer",
        "experimental_queue_bridge",
        "experimental_wasm_runner",
        "experimental_schema_registry",
        "experimental_auto_scaler",
        "experimental_self_healing",
    ],
}
PILOT = ("todo_api_system", "hello_world_api", "simple_rest_api")
DEFECTIVE_PER_CATEGORY = {"todo": 8, "api": 7, "data_processing": 6, "monitoring": 5, "experimental": 11}
"""How many systems of each category get planted defects (pilot systems never do)."""

MISSING_MODULES = (
    "from todo_helpers import normalize_title",
    "import ast_self_healing",
    "from legacy_rpc.codec import encode_frame",
    "from utils.validation import check_schema",
    "import rpc_metrics_client",
)

STORE_METHODS = {
    "insert": {"accepts": {"record": "dict"}, "returns": {"stored": "bool", "id": "int", "record": "dict"}},
    "get": {"accepts": {"id": "int"}, "returns": {"found": "bool", "record": "dict"}},
    "list": {"accepts": {}, "returns": {"records": "list", "count": "int"}},
}


@dataclass
class Comp:
    """A component being generated: blueprint fields plus its declared method and send shapes."""

    name: str
    type: str
    description: str
    config: dict[str, Any]
    methods: dict[str, dict[str, dict[str, str]]]
    sends: dict[str, dict[str, str]] = field(default_factory=dict)
    extra_import: str | None = None

    @property
    def calls(self) -> list[str]:
        return list(self.sends)


@dataclass
class Build:
    """One system under construction."""

    name: str
    category: str
    description: str
    comps: list[Comp] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def add(self, comp: Comp) -> Comp:
        self.comps.append(comp)
        return comp

    def get(self, name: str) -> Comp:
        return next(c for c in self.comps if c.name == name)


# ----------------------------------------------------------------------------- building blocks


def store(name: str, capacity: int = 1000) -> Comp:
    return Comp(
        name, "DataStore", "keeps records in memory", {"key_field": "id", "capacity": capacity}, STORE_METHODS
    )


def gateway(name: str, routes: dict[str, tuple[str, dict[str, str]]]) -> Comp:
    """Routes map an endpoint to (target, shape the target accepts)."""
    return Comp(
        name,
        "APIGateway",
        "public entry point",
        {"routes": {ep: target for ep, (target, _) in routes.items()}},
        {
            ep: {"accepts": shape, "returns": {"status": "str", "data": "dict"}}
            for ep, (_, shape) in routes.items()
        },
        {target: shape for target, shape in routes.values()},
    )


def controller(name: str, store_name: str, noun: str, cache: str | None = None) -> Comp:
    actions = {
        f"create_{noun}": {"call": f"{store_name}.insert", "require": ["title"], "wrap": "record"},
        f"list_{noun}s": {"call": f"{store_name}.list"},
        f"get_{noun}": {"call": f"{cache}.get" if cache else f"{store_name}.get"},
    }
    accepts = {f"create_{noun}": {"title": "str"}, f"list_{noun}s": {}, f"get_{noun}": {"id": "int"}}
    sends = {
        f"{store_name}.insert": {"record": "dict"},
        f"{store_name}.list": {},
        (f"{cache}.get" if cache else f"{store_name}.get"): {"id": "int"},
    }
    return Comp(
        name,
        "Controller",
        f"business rules for {noun}s",
        {"actions": actions},
        {a: {"accepts": accepts[a], "returns": {"ok": "bool", "result": "dict"}} for a in actions},
        sends,
    )


def controller_routes(ctrl: Comp) -> dict[str, tuple[str, dict[str, str]]]:
    return {a: (f"{ctrl.name}.{a}", spec["accepts"]) for a, spec in ctrl.methods.items()}


def processor(
    name: str, fld: str, operation: str, nxt: str | None = None, nxt_shape: dict | None = None
) -> Comp:
    config: dict[str, Any] = {"field": fld, "operation": operation}
    sends = {}
    if nxt:
        config["next"] = nxt
        sends[nxt] = nxt_shape or {fld: "str"}
    return Comp(
        name,
        "Processor",
        f"applies '{operation}' to {fld}",
        config,
        {"process": {"accepts": {fld: "str"}, "returns": {fld: "str"}}},
        sends,
    )


# ----------------------------------------------------------------------------- archetypes


def build_todo(b: Build, rng: random.Random, size: int) -> None:
    noun = "todo"
    use_cache = size >= 5
    use_validator = size >= 4
    ctrl = controller("todos", "todo_store", noun, cache="todo_cache" if use_cache else None)
    routes = controller_routes(ctrl)
    if use_validator:
        routes[f"create_{noun}"] = ("input_check.validate", {"title": "str"})
    b.add(gateway("gateway", routes))
    if use_validator:
        b.add(
            Comp(
                "input_check",
                "Validator",
                "rejects todos without a title",
                {"required": ["title"], "next": f"todos.create_{noun}"},
                {"validate": {"accepts": {"title": "str"}, "returns": {"valid": "bool"}}},
                {f"todos.create_{noun}": {"title": "str"}},
            )
        )
    b.add(ctrl)
    b.add(store("todo_store"))
    if use_cache:
        b.add(
            Comp(
                "todo_cache",
                "Cache",
                "read-through cache of todos",
                {"backend": "todo_store.get", "max_entries": rng.choice([64, 128, 256]), "ttl_s": 30},
                {"get": {"accepts": {"id": "int"}, "returns": {"found": "bool", "cached": "bool"}}},
                {"todo_store.get": {"id": "int"}},
            )
        )
    if size >= 6:
        b.add(
            Comp(
                "activity",
                "MetricsSink",
                "counts todo actions",
                {"metric": "todo_actions", "field": "value"},
                {"record": {"accepts": {}, "returns": {"count": "int"}}},
            )
        )
        ctrl.config["actions"][f"create_{noun}"]["also"] = "activity.record"
        ctrl.sends["activity.record"] = {}


def build_hello(b: Build) -> None:
    b.add(gateway("gateway", {"hello": ("greeter.process", {"name": "str"})}))
    b.add(processor("greeter", "name", "greet"))


def build_rest(b: Build, rng: random.Random, size: int, noun: str = "item") -> None:
    ctrl = controller("items", "item_store", noun)
    routes = controller_routes(ctrl)
    if size >= 5:
        routes["transform"] = ("auth.authenticate", {"token": "str", "kind": "str"})
    b.add(gateway("gateway", routes))
    b.add(ctrl)
    b.add(store("item_store", capacity=rng.choice([500, 1000, 5000])))
    if size >= 5:
        b.add(
            Comp(
                "auth",
                "Authenticator",
                "checks the caller's token",
                {"token_field": "token", "next": "router.route"},
                {"authenticate": {"accepts": {"token": "str"}, "returns": {"authenticated": "bool"}}},
                {"router.route": {"kind": "str"}},
            )
        )
        b.add(
            Comp(
                "router",
                "Router",
                "sends each request to the formatter for its kind",
                {
                    "route_field": "kind",
                    "routes": {"upper": "shout.process", "lower": "calm.process"},
                    "default": "calm.process",
                },
                {"route": {"accepts": {"kind": "str"}, "returns": {"routed_to": "str"}}},
                {"shout.process": {"kind": "str"}, "calm.process": {"kind": "str"}},
            )
        )
        b.add(processor("shout", "kind", "upper"))
        b.add(processor("calm", "kind", "lower"))


def build_pipeline(b: Build, rng: random.Random, size: int) -> None:
    event = {"seq": "int", "kind": "str", "value": "int"}
    b.add(
        Comp(
            "ingest",
            "EventSource",
            "reads a batch of events",
            {
                "kinds": rng.sample(["click", "view", "order", "error", "login"], 3),
                "batch": 10,
                "step": rng.choice([7, 11, 13]),
                "next": "cleaner.filter",
            },
            {"poll": {"accepts": {"count": "int"}, "returns": {"emitted": "int"}}},
            {"cleaner.filter": event},
        )
    )
    nxt = "normalizer.process"
    b.add(
        Comp(
            "cleaner",
            "Filter",
            "drops small values",
            {"field": "value", "op": "gt", "value": 20, "next": nxt},
            {"filter": {"accepts": {"value": "int"}, "returns": {"passed": "bool"}}},
            {nxt: event},
        )
    )
    sink_ref = "metrics.record"
    b.add(processor("normalizer", "kind", rng.choice(["upper", "lower", "reverse"]), sink_ref, event))
    b.add(
        Comp(
            "metrics",
            "MetricsSink",
            "totals event values",
            {"metric": "event_value", "field": "value"},
            {"record": {"accepts": {}, "returns": {"count": "int", "total": "int"}}},
        )
    )
    if size >= 5:
        b.add(store("archive"))
        b.add(
            Comp(
                "report",
                "Aggregator",
                "sums archived values",
                {"sources": ["archive.list"], "operation": "sum", "field": "value"},
                {"aggregate": {"accepts": {}, "returns": {"value": "int"}}},
                {"archive.list": {}},
            )
        )


def build_monitoring(b: Build, rng: random.Random, size: int) -> None:
    b.add(
        gateway(
            "dashboard",
            {"status": ("collector.aggregate", {}), "alert": ("alerter.notify", {"message": "str"})},
        )
    )
    b.add(
        Comp(
            "scheduler",
            "Scheduler",
            "runs the collectors every interval",
            {"jobs": ["collector.aggregate"], "interval_s": rng.choice([30, 60, 300])},
            {"tick": {"accepts": {"tick": "int"}, "returns": {"ran": "int"}}},
            {"collector.aggregate": {}},
        )
    )
    b.add(
        Comp(
            "collector",
            "Aggregator",
            "counts samples across stores",
            {"sources": ["samples.list", "incidents.list"], "operation": "count"},
            {"aggregate": {"accepts": {}, "returns": {"value": "int"}}},
            {"samples.list": {}, "incidents.list": {}},
        )
    )
    b.add(store("samples"))
    b.add(store("incidents"))
    b.add(
        Comp(
            "alerter",
            "Notifier",
            "sends alerts",
            {"channel": rng.choice(["email", "slack", "pager"]), "template": "[ALERT] {message}"},
            {"notify": {"accepts": {"message": "str"}, "returns": {"sent": "bool"}}},
        )
    )
    if size >= 7:
        b.add(
            Comp(
                "incident_queue",
                "MessageQueue",
                "buffers incidents",
                {"capacity": 100, "consumer": "incidents.insert"},
                {"publish": {"accepts": {"payload": "dict"}, "returns": {"queued": "int"}}},
                {"incidents.insert": {"record": "dict"}},
            )
        )
        b.get("dashboard").config["routes"]["report_incident"] = "incident_queue.publish"
        b.get("dashboard").methods["report_incident"] = {"accepts": {"payload": "dict"}, "returns": {}}
        b.get("dashboard").sends["incident_queue.publish"] = {"payload": "dict"}


def build_experimental(b: Build, rng: random.Random, size: int) -> None:
    kind = rng.choice(["queue", "cache", "rest"])
    if kind == "rest":
        build_rest(b, rng, size, noun="entry")
        return
    routes: dict[str, tuple[str, dict[str, str]]] = {"lookup": ("lookup_cache.get", {"id": "int"})}
    if kind == "queue":
        routes["submit"] = ("inbox.publish", {"payload": "dict"})
    b.add(gateway("gateway", routes))
    b.add(store("state"))
    b.add(
        Comp(
            "lookup_cache",
            "Cache",
            "caches lookups",
            {"backend": "state.get", "max_entries": 32, "ttl_s": 5},
            {"get": {"accepts": {"id": "int"}, "returns": {"found": "bool"}}},
            {"state.get": {"id": "int"}},
        )
    )
    if kind == "queue":
        b.add(
            Comp(
                "inbox",
                "MessageQueue",
                "accepts work items",
                {"capacity": 50, "consumer": "state.insert"},
                {"publish": {"accepts": {"payload": "dict"}, "returns": {"queued": "int"}}},
                {"state.insert": {"record": "dict"}},
            )
        )


# ----------------------------------------------------------------------------- defects


def plant_defect(b: Build, kind: str, rng: random.Random) -> None:
    """Break the system in one of the seed's ways, in code and blueprint alike."""
    if kind == "import":
        comp = rng.choice([c for c in b.comps if c.type not in ("APIGateway",)] or b.comps)
        comp.extra_import = rng.choice(MISSING_MODULES)
    elif kind == "missing_component":
        caller = _a_controller_or_gateway(b)
        if caller.type == "Controller":
            action = next(iter(caller.config["actions"]))
            caller.config["actions"][action]["also"] = "audit_log.record"
            caller.sends["audit_log.record"] = {}
        else:
            endpoint = next(iter(caller.config["routes"]))
            caller.config["routes"][endpoint] = "legacy_bridge.forward"
            caller.sends["legacy_bridge.forward"] = caller.methods[endpoint]["accepts"]
    elif kind == "missing_method":
        caller = _a_controller_or_gateway(b)
        if caller.type == "Controller":
            action = [a for a in caller.config["actions"] if a.startswith("list_")][0]
            old = caller.config["actions"][action]["call"]
            new = old.replace(".list", ".fetch_all")
            caller.config["actions"][action]["call"] = new
            caller.sends[new] = caller.sends.pop(old)
        else:
            endpoint, target = next(iter(caller.config["routes"].items()))
            new = target.split(".")[0] + ".handle"
            caller.config["routes"][endpoint] = new
            caller.sends[new] = caller.sends.pop(target)
    elif kind == "shape":
        ctrl = next((c for c in b.comps if c.type == "Controller"), None)
        if ctrl is not None:
            action = next(a for a, s in ctrl.config["actions"].items() if s.get("wrap"))
            ctrl.config["actions"][action]["wrap"] = "item"
            ctrl.sends[ctrl.config["actions"][action]["call"]] = {"item": "dict"}
        elif any(c.type == "Processor" for c in b.comps):
            proc = next(c for c in b.comps if c.type == "Processor")
            proc.config["field"] = "category"
            proc.methods = {"process": {"accepts": {"category": "str"}, "returns": {"category": "str"}}}
        else:
            gw = next(c for c in b.comps if c.type == "APIGateway")
            endpoint, target = next(iter(gw.config["routes"].items()))
            gw.methods[endpoint]["accepts"] = {"key": "str"}
            gw.sends[target] = {"key": "str"}
    b.defects.append(kind)


DEFECT_WEIGHTS = {"import": 4, "missing_method": 2, "missing_component": 2, "shape": 1}
"""Import errors first, as the seed lists them first among the fleet's common failures."""


def pick_defects(b: Build, count: int, rng: random.Random) -> list[str]:
    """``count`` different defect kinds that fit the system, drawn by weight."""
    kinds = dict(DEFECT_WEIGHTS)
    if not any(c.type in ("Controller", "APIGateway") for c in b.comps):
        kinds = {"import": kinds["import"], "shape": kinds["shape"]}
    chosen: list[str] = []
    while len(chosen) < min(count, len(kinds)):
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
        if kind not in chosen:
            chosen.append(kind)
    return chosen


def _a_controller_or_gateway(b: Build) -> Comp:
    return next((c for c in b.comps if c.type == "Controller"), None) or next(
        c for c in b.comps if c.type == "APIGateway"
    )


# ----------------------------------------------------------------------------- fleet


def plan_fleet() -> list[Build]:
    """Every system of the sample fleet, built and (where chosen) broken, in a fixed order."""
    rng = random.Random(SEED)
    builds: list[Build] = []
    for category, names in NAMES.items():
        candidates = [n for n in names if n not in PILOT]
        defective = set(rng.sample(candidates, DEFECTIVE_PER_CATEGORY[category]))
        for name in names:
            b = Build(name, category, _description(name, category))
            size = rng.randint(3, 7)
            if name == "hello_world_api":
                build_hello(b)
            elif name == "simple_rest_api":
                build_rest(b, rng, 3)
            elif name == "todo_api_system":
                build_todo(b, rng, 3)
            elif category == "todo":
                build_todo(b, rng, size)
            elif category == "api":
                build_rest(b, rng, size)
            elif category == "data_processing":
                build_pipeline(b, rng, size)
            elif category == "monitoring":
                build_monitoring(b, rng, rng.randint(6, 7))
            else:
                build_experimental(b, rng, size)
            if name in defective:
                count = 2 if category in ("experimental", "monitoring") and rng.random() < 0.5 else 1
                for kind in pick_defects(b, count, rng):
                    plant_defect(b, kind, rng)
            builds.append(b)
    return builds


def _description(name: str, category: str) -> str:
    words = name.replace("_", " ")
    return {
        "todo": f"Todo management variation: {words}",
        "api": f"REST API system: {words}",
        "data_processing": f"ETL and processing pipeline: {words}",
        "monitoring": f"Monitoring and alerting: {words}",
        "experimental": f"Test and experimental system: {words}",
    }[category]


def blueprint_document(b: Build, created: dt.date) -> dict[str, Any]:
    return {
        "system": {
            "name": b.name,
            "description": b.description,
            "version": "1.0.0",
            "created": created.isoformat(),
            "category": b.category,
            "components": [
                {
                    "name": c.name,
                    "type": c.type,
                    "description": c.description,
                    "configuration": c.config,
                    "calls": c.calls,
                }
                for c in b.comps
            ],
        }
    }


def generate_fleet(out_dir: Path = SAMPLE_FLEET_DIR) -> list[str]:
    """Write the sample fleet under ``out_dir`` (replacing folders it wrote before); returns the names."""
    builds = plan_fleet()
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {b.name for b in builds}
    for stale in out_dir.iterdir():
        if stale.is_dir() and (stale / "blueprint.yaml").is_file():
            shutil.rmtree(stale)
    span = (LAST_DAY - FIRST_DAY).days
    order = sorted(names)
    for b in builds:
        created = FIRST_DAY + dt.timedelta(days=round(order.index(b.name) * span / (len(order) - 1)))
        folder = out_dir / b.name
        (folder / "components").mkdir(parents=True)
        (folder / "blueprint.yaml").write_text(dump_yaml(blueprint_document(b, created)), encoding="utf-8")
        for c in b.comps:
            text = render_component(
                system=b.name,
                name=c.name,
                type_=c.type,
                description=c.description,
                config=c.config,
                methods=c.methods,
                sends=c.sends,
                extra_import=c.extra_import,
            )
            (folder / "components" / f"{c.name}.py").write_text(text, encoding="utf-8")
    return [b.name for b in builds]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE_FLEET_DIR
    written = generate_fleet(target)
    print(f"wrote {len(written)} systems to {target}")
