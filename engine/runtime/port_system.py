"""Run a v2 (port-based) system: each component a small graph of primitives, wired by its bindings.

Every component expands to the same three-stage graph::

    Source(inbox) -> Transformer(recipe, concurrency, batch_size) -> Sink(replies)

The inbox is a bounded stream, so a busy component holds its callers back
instead of queueing without limit. A call from one component to another is
a request envelope sent on the caller's output port, which its binding
delivers into the callee's inbox; the reply comes back on the envelope.
Closing the inboxes drains and stops every graph (clean shutdown).

Fast path: a call to a component that has a free worker slot and nothing
queued runs in the caller's task instead of crossing the graph's streams.
The slot comes from the same capacity limiter the graph's workers take, so
the component's configured concurrency holds either way, and order is kept
because the fast path is only taken when nothing is waiting. Crossing the
streams costs several event-loop turns per hop (measured in
``bench/conversion_speed.py``); the fast path is what lets the port runtime
keep up with the synchronous RPC stack.

Hosted code (a v1 component's own module, :class:`~engine.runtime.recipes.Hosted`)
is synchronous: its ``call`` must have the answer before it returns. It runs
in the event loop's thread, as the legacy runtime runs it, and its calls go
through :meth:`PortSystem.call_now`, which takes the fast path to completion
without yielding (:func:`run_now`). Nothing in a system ever waits while
hosted code runs, so the callee is always free unless the call loops back
into a component that is itself waiting, which conversion refuses (a cycle).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream, TaskGroup

from engine.models.blueprint_v2 import V2Blueprint
from engine.runtime.graph import Graph
from engine.runtime.primitives import Message, PortSpec, Sink, Source, Transformer
from engine.runtime.recipes import RECIPES, PortCallError, Recipe

__all__ = ["Envelope", "PortCallError", "PortSystem", "component_graph", "run_now", "serve_envelope"]


@dataclass(eq=False)  # identity, not value: an envelope is a limiter borrower
class Envelope:
    """A request travelling to a component's input port, with the slot its reply lands in."""

    port: str
    body: Message
    done: anyio.Event | None = None  # created only when the envelope queues (the fast path needs none)
    reply: Message | None = None
    error: BaseException | None = None


def component_graph(
    name: str,
    recipe: Recipe,
    inbox: ObjectReceiveStream[Any],
    call: Any,
    limiter: anyio.CapacityLimiter | None = None,
) -> Graph:
    """The primitive graph one component runs: inbox source, recipe transformer, reply sink."""
    cfg = recipe.config
    slots = limiter or anyio.CapacityLimiter(cfg.concurrency)

    async def receive() -> AsyncIterator[Message]:
        async with inbox:
            async for envelope in inbox:
                yield {"envelope": envelope}

    async def work(batch: list[Message]) -> list[Message]:
        for item in batch:
            envelope: Envelope = item["envelope"]
            async with slots:
                await serve_envelope(name, recipe, envelope, call)
        return batch

    def reply(item: Message) -> None:
        done = item["envelope"].done
        if done is not None:
            done.set()

    envelope_port = {"envelope": "any"}
    graph = Graph().add(
        Source(f"{name}__in", receive, PortSpec("out", envelope_port)),
        Transformer(
            f"{name}__recipe",
            work,
            PortSpec("in", envelope_port),
            PortSpec("out", envelope_port),
            concurrency=cfg.concurrency,
            batch_size=cfg.batch_size,
        ),
        Sink(f"{name}__reply", reply, PortSpec("in", envelope_port)),
    )
    graph.connect(f"{name}__in.out", f"{name}__recipe.in", buffer=1)
    graph.connect(f"{name}__recipe.out", f"{name}__reply.in", buffer=max(1, cfg.batch_size))
    return graph


async def serve_envelope(name: str, recipe: Recipe, envelope: Envelope, call: Any) -> None:
    """Run the recipe on one envelope, leaving its reply or error on it."""
    try:
        envelope.reply = await recipe.handle(envelope.port, envelope.body, call)
    except PortCallError as exc:
        envelope.error = exc
    except Exception as exc:  # noqa: BLE001 - a recipe failure is the caller's error, not a crash
        envelope.error = PortCallError(
            "component_error", f"{name}.{envelope.port}", f"{type(exc).__name__}: {exc}"
        )


def run_now(coroutine: Any, target: str) -> Any:
    """Run a coroutine that must finish without waiting; PortCallError if it would have to wait."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise PortCallError(
        "busy", target, "the component is busy with an earlier call (a call that loops back into its caller?)"
    )


class PortSystem:
    """A v2 system loaded in this process; ``async with system.running(): await system.handle(...)``.

    ``code_dir`` is where hosted components' modules are (the v2 folder's
    ``components/``); without it a hosted component answers ``not_loaded``.
    """

    def __init__(
        self,
        blueprint: V2Blueprint,
        code_dir: Path | None = None,
        before_start: Callable[[str], None] | None = None,
    ):
        self.blueprint = blueprint
        self.code_dir = code_dir
        self.before_start = before_start
        """Told each component's name before it starts (loads its code): how a sandbox says who hung."""
        self.recipes: dict[str, Recipe] = {
            c.name: RECIPES[c.recipe].parse(c.config) for c in blueprint.components
        }
        self.routes: dict[tuple[str, str], tuple[str, str]] = {}
        for b in blueprint.bindings:
            src_comp, _, src_port = b.source.partition(".")
            dst_comp, _, dst_port = b.target.partition(".")
            self.routes[(src_comp, src_port)] = (dst_comp, dst_port)
        self.inboxes: dict[str, ObjectSendStream[Envelope]] = {}
        self.limiters: dict[str, anyio.CapacityLimiter] = {}
        self.callers: dict[str, Any] = {}
        self.input_ports = {name: frozenset(recipe.inputs()) for name, recipe in self.recipes.items()}

    @property
    def entry(self) -> str:
        """The blueprint's ``entry``; without one the APIEndpoint, else a Source or Scheduler, else a
        component nothing is bound to."""
        if self.blueprint.entry is not None:
            return self.blueprint.entry
        comps = self.blueprint.components
        for recipe in ("APIEndpoint", "Source", "Scheduler"):
            for comp in comps:
                if comp.recipe == recipe:
                    return comp.name
        targets = {b.target.split(".")[0] for b in self.blueprint.bindings}
        return next((c.name for c in comps if c.name not in targets), comps[0].name)

    def endpoints(self) -> dict[str, dict[str, str]]:
        return self.recipes[self.entry].inputs()

    def _caller(self, name: str) -> Any:
        recipe = self.recipes[name]
        optional = {p.name for p in recipe.outputs() if not p.required}

        async def call(port: str, message: Message) -> Message | None:
            target = self.routes.get((name, port))
            if target is None:
                if port in optional:
                    return None
                raise PortCallError("unbound_port", f"{name}.{port}", "no binding from this output port")
            return await self.send(target[0], target[1], message)

        return call

    async def send(self, component: str, port: str, message: Message) -> Message:
        """Deliver ``message`` to ``component.port`` and wait for its reply."""
        if port not in self.input_ports[component]:
            raise PortCallError(
                "unknown_port", f"{component}.{port}", f"'{component}' has no input port '{port}'"
            )
        envelope = Envelope(port, message)
        inbox, limiter = self.inboxes[component], self.limiters[component]
        if limiter.available_tokens >= 1 and inbox.statistics().current_buffer_used == 0:
            limiter.acquire_on_behalf_of_nowait(envelope)
            try:
                await serve_envelope(component, self.recipes[component], envelope, self.callers[component])
            finally:
                limiter.release_on_behalf_of(envelope)
        else:
            envelope.done = anyio.Event()
            await inbox.send(envelope)
            await envelope.done.wait()
        if envelope.error is not None:
            raise envelope.error
        assert envelope.reply is not None
        return envelope.reply

    async def handle(self, endpoint: str, message: Message) -> Message:
        """Serve one outside request at the entry component."""
        return await self.send(self.entry, endpoint, message)

    def load_errors(self) -> dict[str, str]:
        """Hosted components whose code did not load (once running), with why: as v1's ``load_errors``."""
        return {
            name: error
            for name, recipe in self.recipes.items()
            if (error := getattr(recipe, "load_error", None)) is not None
        }

    def call_now(self, component: str, port: str, message: Message) -> Message:
        """Send on ``component``'s output ``port`` and return the answer before returning (hosted code)."""
        target = self.routes.get((component, port))
        if target is None:
            raise PortCallError("unbound_port", f"{component}.{port}", "no binding from this output port")
        return run_now(self.send(target[0], target[1], message), f"{target[0]}.{target[1]}")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[PortSystem]:
        """Start every component's graph; on exit, close the inboxes and let them drain."""
        async with anyio.create_task_group() as tg:
            self._start(tg)
            try:
                yield self
            finally:
                for inbox in self.inboxes.values():
                    await inbox.aclose()

    def _start(self, tg: TaskGroup) -> None:
        for comp in self.blueprint.components:
            name = comp.name
            if self.before_start is not None:
                self.before_start(name)
            self.recipes[name].start(
                name, self.code_dir, lambda port, msg, name=name: self.call_now(name, port, msg)
            )
        for comp in self.blueprint.components:
            recipe = self.recipes[comp.name]
            send, receive = anyio.create_memory_object_stream[Envelope](recipe.config.buffer)
            self.inboxes[comp.name] = send
            self.limiters[comp.name] = anyio.CapacityLimiter(recipe.config.concurrency)
            self.callers[comp.name] = self._caller(comp.name)
            graph = component_graph(
                comp.name, recipe, receive, self.callers[comp.name], self.limiters[comp.name]
            )
            tg.start_soon(graph.run, name=f"component:{comp.name}")
