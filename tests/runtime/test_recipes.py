"""Every recipe: config, port signature, expansion into primitives, behaviour on a smoke message."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from engine.runtime.legacy import example_message
from engine.runtime.port_system import component_graph
from engine.runtime.recipes import CONFIG_RECIPES, RECIPES, Recipe

CONFIGS: dict[str, dict[str, Any]] = {
    "Store": {},
    "APIEndpoint": {"routes": {"go": "x.y"}},
    "Controller": {"actions": {"make": {"call": "db.insert", "require": ["title"], "wrap": "record"}}},
    "Router": {"route_field": "kind", "routes": {"a": "x.p"}, "default": "y.p"},
    "Aggregator": {"sources": ["a.list", "b.list"], "operation": "sum", "field": "v"},
    "Filter": {"field": "v", "op": "gt", "value": 0, "next": "x.p"},
    "Transformer": {"field": "name", "operation": "greet"},
    "Source": {"kinds": ["a", "b"], "batch": 3, "next": "x.p"},
    "Sink": {"field": "value"},
    "Queue": {"consumer": "db.insert"},
    "Cache": {"backend": "db.get"},
    "Validator": {"required": ["title"], "next": "x.p"},
    "Scheduler": {"jobs": ["a.run", "b.run"]},
}


def test_thirteen_config_recipes_with_seed_seven_and_hosted_code() -> None:
    assert len(CONFIG_RECIPES) == 13 and set(RECIPES) == {*CONFIG_RECIPES, "Hosted"}
    assert {"Store", "APIEndpoint", "Controller", "Router", "Aggregator", "Filter", "Transformer"} <= set(
        CONFIG_RECIPES
    )


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_recipe_expands_and_answers_a_smoke_message(name: str) -> None:
    recipe: Recipe = RECIPES[name].parse(CONFIGS[name])
    assert recipe.inputs(), "every recipe has at least one input port"
    for port in recipe.outputs():
        assert port.name.startswith("to_") and "." in port.ref
    send, receive = anyio.create_memory_object_stream[object](1)
    assert component_graph("c", recipe, receive, None).problems() == []
    send.close()
    receive.close()
    calls: list[str] = []

    async def stub(port: str, message: dict) -> dict:
        calls.append(port)
        return {"records": [{"v": 2}, {"v": 3}]} if port.endswith("_list") else {"ok": True}

    async def run() -> list[dict]:
        return [await recipe.handle(p, example_message(s), stub) for p, s in sorted(recipe.inputs().items())]

    replies = anyio.run(run)
    assert all(isinstance(r, dict) for r in replies)


def test_store_keeps_records_and_aggregator_sums_them() -> None:
    store = RECIPES["Store"].parse({})
    agg = RECIPES["Aggregator"].parse(CONFIGS["Aggregator"])

    async def run() -> dict:
        await store.handle("insert", {"record": {"v": 5}}, None)  # type: ignore[arg-type]
        await store.handle("insert", {"record": {"v": 7}}, None)  # type: ignore[arg-type]

        async def call(port: str, message: dict) -> dict:
            return await store.handle("list", message, None)  # type: ignore[arg-type]

        return await agg.handle("aggregate", {}, call)

    assert anyio.run(run) == {"operation": "sum", "value": 24, "sources": 2}


def test_optional_side_call_is_marked_optional() -> None:
    ctl = RECIPES["Controller"].parse({"actions": {"a": {"call": "db.list", "also": "audit.record"}}})
    required = {p.ref: p.required for p in ctl.outputs()}
    assert required == {"db.list": True, "audit.record": False}


def test_legacy_aliases_land_on_real_ports() -> None:
    store = RECIPES["Store"].parse({})
    assert store.resolve_input("fetch_all") == "list"
    assert store.resolve_input("teleport") is None
