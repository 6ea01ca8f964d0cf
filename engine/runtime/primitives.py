"""The five port primitives every recipe is built from.

=============  =======  ========  ==================================================
primitive      inputs   outputs   does
=============  =======  ========  ==================================================
Source         0        1         produces messages (requests, ticks, events)
Sink           1        0         consumes messages (replies, writes)
Transformer    1        1         maps each message (or batch) to zero or more messages
Splitter       1        N         sends each message to one or more of its outputs
Merger         N        1         forwards from all inputs, or joins them by a key
=============  =======  ========  ==================================================

Ports are typed by a *message schema*: ``{field: type}`` with the same type
names as the legacy runtime (``str int float bool list dict any``). Streams
between ports are bounded, so a slow consumer holds its producers back
(back-pressure) instead of letting memory grow. When every input of a
primitive has ended it closes its outputs, so shutting a graph down is just
closing its sources.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

Message = dict[str, Any]
MessageSchema = dict[str, str]
Receive = ObjectReceiveStream[Message]
Send = ObjectSendStream[Message]


@dataclass(frozen=True)
class PortSpec:
    """A named port and the fields every message on it carries."""

    name: str
    schema: MessageSchema = field(default_factory=dict)


class Primitive:
    """Base of the five primitives: a name, typed ports and an async ``run``."""

    kind: ClassVar[str] = "Primitive"
    min_inputs: ClassVar[int] = 0
    max_inputs: ClassVar[float] = 0
    min_outputs: ClassVar[int] = 0
    max_outputs: ClassVar[float] = 0

    def __init__(self, name: str, inputs: Iterable[PortSpec] = (), outputs: Iterable[PortSpec] = ()):
        self.name = name
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        if not self.min_inputs <= len(self.inputs) <= self.max_inputs:
            raise ValueError(f"{self.kind} '{name}' takes {self._arity('input')}, got {len(self.inputs)}")
        if not self.min_outputs <= len(self.outputs) <= self.max_outputs:
            raise ValueError(f"{self.kind} '{name}' takes {self._arity('output')}, got {len(self.outputs)}")

    def _arity(self, what: str) -> str:
        low = getattr(self, f"min_{what}s")
        high = getattr(self, f"max_{what}s")
        return f"{low} {what}(s)" if low == high else f"{low} or more {what}s"

    def input(self, name: str) -> PortSpec | None:
        return next((p for p in self.inputs if p.name == name), None)

    def output(self, name: str) -> PortSpec | None:
        return next((p for p in self.outputs if p.name == name), None)

    async def run(self, inputs: dict[str, Receive], outputs: dict[str, Send]) -> None:
        raise NotImplementedError


class Source(Primitive):
    """0 in / 1 out: emits what ``produce()`` yields, then closes its output."""

    kind = "Source"
    min_outputs = max_outputs = 1

    def __init__(self, name: str, produce: Callable[[], AsyncIterator[Message]], output: PortSpec):
        super().__init__(name, (), (output,))
        self.produce = produce

    async def run(self, inputs: dict[str, Receive], outputs: dict[str, Send]) -> None:
        async with outputs[self.outputs[0].name] as out:
            async for message in self.produce():
                await out.send(message)


class Sink(Primitive):
    """1 in / 0 out: hands every message to ``consume``."""

    kind = "Sink"
    min_inputs = max_inputs = 1

    def __init__(self, name: str, consume: Callable[[Message], Awaitable[None] | None], input: PortSpec):
        super().__init__(name, (input,), ())
        self.consume = consume

    async def run(self, inputs: dict[str, Receive], outputs: dict[str, Send]) -> None:
        async with inputs[self.inputs[0].name] as stream:
            async for message in stream:
                result = self.consume(message)
                if result is not None:
                    await result


class Transformer(Primitive):
    """1 in / 1 out: ``fn(batch) -> messages``, with ``concurrency`` workers and ``batch_size``.

    ``fn`` takes a list of up to ``batch_size`` messages that were already
    waiting (it never waits to fill a batch, so latency does not grow under
    light load) and returns the messages to send on; an empty list drops them.
    ``fn`` may be a coroutine function, for work that waits (calls to other
    components).
    """

    kind = "Transformer"
    min_inputs = max_inputs = 1
    min_outputs = max_outputs = 1

    def __init__(
        self,
        name: str,
        fn: Callable[[list[Message]], list[Message] | Awaitable[list[Message]]],
        input: PortSpec,
        output: PortSpec,
        *,
        concurrency: int = 1,
        batch_size: int = 1,
    ):
        super().__init__(name, (input,), (output,))
        if concurrency < 1 or batch_size < 1:
            raise ValueError(f"Transformer '{name}': concurrency and batch_size must be at least 1")
        self.fn = fn
        self.concurrency = concurrency
        self.batch_size = batch_size

    async def _worker(self, stream: Receive, out: Send) -> None:
        async with stream, out:
            async for first in stream:
                batch = [first]
                while len(batch) < self.batch_size:
                    try:
                        batch.append(stream.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                produced = self.fn(batch)
                if inspect.isawaitable(produced):
                    produced = await produced
                for message in produced:
                    await out.send(message)

    async def run(self, inputs: dict[str, Receive], outputs: dict[str, Send]) -> None:
        stream, out = inputs[self.inputs[0].name], outputs[self.outputs[0].name]
        async with stream, out, anyio.create_task_group() as tg:
            for _ in range(self.concurrency):
                tg.start_soon(self._worker, stream.clone(), out.clone())  # type: ignore[attr-defined]


class Splitter(Primitive):
    """1 in / N out: ``choose(message)`` names the outputs each message goes to (a copy to each)."""

    kind = "Splitter"
    min_inputs = max_inputs = 1
    min_outputs, max_outputs = 1, math.inf

    def __init__(
        self,
        name: str,
        choose: Callable[[Message], Iterable[str]],
        input: PortSpec,
        outputs: Iterable[PortSpec],
    ):
        super().__init__(name, (input,), outputs)
        self.choose = choose

    async def run(self, inputs: dict[str, Receive], outputs: dict[str, Send]) -> None:
        stream = inputs[self.inputs[0].name]
        try:
            async with stream:
                async for message in stream:
                    targets = list(self.choose(message))
                    for target in targets:
                        payload = message if len(targets) == 1 else dict(message)
                        await outputs[target].send(payload)
        finally:
            for out in outputs.values():
                await out.aclose()


class Merger(Primitive):
    """N in / 1 out: forwards from every input; with ``join_key``, waits for one of each and combines.

    In join mode, messages with the same ``message[join_key]`` from every
    input are handed to ``combine`` (in input order) and the result is sent.
    """

    kind = "Merger"
    min_inputs, max_inputs = 1, math.inf
    min_outputs = max_outputs = 1

    def __init__(
        self,
        name: str,
        inputs: Iterable[PortSpec],
        output: PortSpec,
        *,
        join_key: str | None = None,
        combine: Callable[[list[Message]], Message] | None = None,
    ):
        super().__init__(name, inputs, (output,))
        if join_key is not None and combine is None:
            raise ValueError(f"Merger '{name}': join_key needs a combine function")
        self.join_key = join_key
        self.combine = combine
        self._pending: dict[Any, dict[str, Message]] = {}

    async def _pump(self, port: str, stream: Receive, out: Send) -> None:
        async with stream, out:
            async for message in stream:
                if self.join_key is None:
                    await out.send(message)
                    continue
                key = message.get(self.join_key)
                parts = self._pending.setdefault(key, {})
                parts[port] = message
                if len(parts) == len(self.inputs):
                    del self._pending[key]
                    assert self.combine is not None
                    await out.send(self.combine([parts[p.name] for p in self.inputs]))

    async def run(self, inputs: dict[str, Receive], outputs: dict[str, Send]) -> None:
        out = outputs[self.outputs[0].name]
        async with out, anyio.create_task_group() as tg:
            for port in self.inputs:
                tg.start_soon(self._pump, port.name, inputs[port.name], out.clone())  # type: ignore[attr-defined]
