"""Port primitives and graphs: wiring checks, back-pressure, concurrency, batching, shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from engine.runtime.graph import Graph, schema_problems
from engine.runtime.primitives import Merger, Message, PortSpec, Sink, Source, Splitter, Transformer

INT = {"i": "int"}


def numbers(n: int):
    async def produce() -> AsyncIterator[Message]:
        for i in range(n):
            yield {"i": i}

    return produce


def test_pipeline_delivers_every_message_and_shuts_down() -> None:
    got: list[Message] = []
    graph = Graph().add(
        Source("src", numbers(100), PortSpec("out", INT)),
        Transformer(
            "double",
            lambda b: [{"i": m["i"] * 2} for m in b],
            PortSpec("in", INT),
            PortSpec("out", INT),
            concurrency=4,
            batch_size=8,
        ),
        Sink("sink", got.append, PortSpec("in", INT)),
    )
    graph.connect("src.out", "double.in").connect("double.out", "sink.in")

    async def main() -> None:
        with anyio.fail_after(5):
            await graph.run()

    anyio.run(main)
    assert sorted(m["i"] for m in got) == [2 * i for i in range(100)]


def test_splitter_and_merger_route_and_rejoin() -> None:
    got: list[Message] = []
    graph = Graph().add(
        Source("src", numbers(20), PortSpec("out", INT)),
        Splitter(
            "split",
            lambda m: ["even" if m["i"] % 2 == 0 else "odd"],
            PortSpec("in", INT),
            [PortSpec("even", INT), PortSpec("odd", INT)],
        ),
        Merger("merge", [PortSpec("a", INT), PortSpec("b", INT)], PortSpec("out", INT)),
        Sink("sink", got.append, PortSpec("in", INT)),
    )
    graph.connect("src.out", "split.in").connect("split.even", "merge.a").connect("split.odd", "merge.b")
    graph.connect("merge.out", "sink.in")
    anyio.run(graph.run)
    assert sorted(m["i"] for m in got) == list(range(20))


def test_merger_join_combines_one_message_per_input_by_key() -> None:
    got: list[Message] = []
    graph = Graph().add(
        Source("src", numbers(5), PortSpec("out", INT)),
        Splitter("fan", lambda m: ["x", "y"], PortSpec("in", INT), [PortSpec("x", INT), PortSpec("y", INT)]),
        Transformer(
            "tx", lambda b: [{"i": m["i"], "v": 10} for m in b], PortSpec("in", INT), PortSpec("out", INT)
        ),
        Transformer(
            "ty", lambda b: [{"i": m["i"], "v": 1} for m in b], PortSpec("in", INT), PortSpec("out", INT)
        ),
        Merger(
            "join",
            [PortSpec("a", INT), PortSpec("b", INT)],
            PortSpec("out", INT),
            join_key="i",
            combine=lambda parts: {"i": parts[0]["i"], "v": sum(p["v"] for p in parts)},
        ),
        Sink("sink", got.append, PortSpec("in", INT)),
    )
    graph.connect("src.out", "fan.in").connect("fan.x", "tx.in").connect("fan.y", "ty.in")
    graph.connect("tx.out", "join.a").connect("ty.out", "join.b").connect("join.out", "sink.in")
    anyio.run(graph.run)
    assert sorted((m["i"], m["v"]) for m in got) == [(i, 11) for i in range(5)]


def test_bounded_buffers_hold_a_fast_producer_back() -> None:
    """With a stalled consumer the producer can run ahead by at most the buffer sizes."""
    produced = 0
    release = anyio.Event()

    async def produce() -> AsyncIterator[Message]:
        nonlocal produced
        for i in range(1000):
            produced += 1
            yield {"i": i}

    async def slow(message: Message) -> None:
        await release.wait()

    graph = Graph().add(Source("src", produce, PortSpec("out", INT)), Sink("sink", slow, PortSpec("in", INT)))
    graph.connect("src.out", "sink.in", buffer=4)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(graph.run)
            await anyio.sleep(0.2)
            ahead = produced
            release.set()
            assert ahead <= 4 + 2, ahead

    anyio.run(main)
    assert produced == 1000


def test_batches_never_exceed_batch_size() -> None:
    sizes: list[int] = []

    def record(batch: list[Message]) -> list[Message]:
        sizes.append(len(batch))
        return batch

    graph = Graph().add(
        Source("src", numbers(50), PortSpec("out", INT)),
        Transformer("t", record, PortSpec("in", INT), PortSpec("out", INT), batch_size=7),
        Sink("sink", lambda m: None, PortSpec("in", INT)),
    )
    graph.connect("src.out", "t.in").connect("t.out", "sink.in")
    anyio.run(graph.run)
    assert sum(sizes) == 50 and max(sizes) <= 7


def test_problems_found_before_running() -> None:
    graph = Graph().add(
        Source("src", numbers(1), PortSpec("out", {"x": "str"})),
        Sink("sink", lambda m: None, PortSpec("in", INT)),
        Sink("orphan", lambda m: None, PortSpec("in", INT)),
    )
    graph.connect("src.out", "sink.in").connect("src.nope", "sink.in")
    problems = graph.problems()
    assert any("no output port src.nope" in p for p in problems)
    assert any("'i' is required but not produced" in p for p in problems)
    assert any("input orphan.in is wired 0 times" in p for p in problems)
    with pytest.raises(ValueError, match="ill-formed"):
        anyio.run(graph.run)


def test_cycles_are_refused() -> None:
    graph = Graph().add(
        Transformer("a", lambda b: b, PortSpec("in", INT), PortSpec("out", INT)),
        Transformer("b", lambda b: b, PortSpec("in", INT), PortSpec("out", INT)),
    )
    graph.connect("a.out", "b.in").connect("b.out", "a.in")
    assert graph.problems() == ["the graph has a cycle"]


def test_arity_and_worker_settings_are_enforced() -> None:
    with pytest.raises(ValueError, match="Splitter 's' takes 1 or more outputs, got 0"):
        Splitter("s", lambda m: [], PortSpec("in"), [])
    with pytest.raises(ValueError, match="at least 1"):
        Transformer("t", lambda b: b, PortSpec("in"), PortSpec("out"), concurrency=0)


def test_schema_compatibility_rules() -> None:
    assert schema_problems({"a": "int"}, {"a": "float"}) == []
    assert schema_problems({"a": "any"}, {"a": "str"}) == []
    assert schema_problems({"a": "str"}, {"a": "int"}) == ["'a' is str but int is required"]
