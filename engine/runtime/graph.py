"""A graph of primitives wired by bounded streams: checking it and running it.

The graph is checked before it runs (every port wired exactly once, both
ends exist, schemas compatible, no cycle), so a malformed recipe expansion is
a validation failure with a reason, not a hang.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from engine.runtime.primitives import MessageSchema, Primitive, Receive, Send

DEFAULT_BUFFER = 64


def _type_fits(produced: str, required: str) -> bool:
    """``any`` fits everything, an int is a valid float, otherwise types must be equal."""
    return "any" in (produced, required) or produced == required or (produced, required) == ("int", "float")


def schema_problems(produced: MessageSchema, required: MessageSchema) -> list[str]:
    """Fields the consumer requires that the producer's schema does not provide (or types differently)."""
    problems = []
    for fld, type_name in required.items():
        have = produced.get(fld)
        if have is None:
            problems.append(f"'{fld}' is required but not produced")
        elif not _type_fits(have, type_name):
            problems.append(f"'{fld}' is {have} but {type_name} is required")
    return problems


@dataclass(frozen=True)
class Edge:
    source: str  # "node.port"
    target: str  # "node.port"
    buffer: int = DEFAULT_BUFFER


@dataclass
class Graph:
    """Named primitives and the edges between their ports."""

    nodes: dict[str, Primitive] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, *primitives: Primitive) -> Graph:
        for prim in primitives:
            if prim.name in self.nodes:
                raise ValueError(f"two primitives named '{prim.name}'")
            self.nodes[prim.name] = prim
        return self

    def connect(self, source: str, target: str, buffer: int = DEFAULT_BUFFER) -> Graph:
        self.edges.append(Edge(source, target, buffer))
        return self

    def problems(self) -> list[str]:
        """Everything that would make the graph ill-formed; empty means it can run."""
        found: list[str] = []
        wired_out: dict[str, int] = {}
        wired_in: dict[str, int] = {}
        for edge in self.edges:
            src_node, _, src_port = edge.source.partition(".")
            dst_node, _, dst_port = edge.target.partition(".")
            src, dst = self.nodes.get(src_node), self.nodes.get(dst_node)
            out_spec = src.output(src_port) if src else None
            in_spec = dst.input(dst_port) if dst else None
            if out_spec is None:
                found.append(f"edge {edge.source} -> {edge.target}: no output port {edge.source}")
            if in_spec is None:
                found.append(f"edge {edge.source} -> {edge.target}: no input port {edge.target}")
            if edge.buffer < 1:
                found.append(f"edge {edge.source} -> {edge.target}: buffer must be at least 1")
            if out_spec and in_spec:
                for problem in schema_problems(out_spec.schema, in_spec.schema):
                    found.append(f"edge {edge.source} -> {edge.target}: {problem}")
            wired_out[edge.source] = wired_out.get(edge.source, 0) + 1
            wired_in[edge.target] = wired_in.get(edge.target, 0) + 1
        for prim in self.nodes.values():
            for port in prim.outputs:
                ref = f"{prim.name}.{port.name}"
                if wired_out.get(ref, 0) != 1:
                    found.append(f"output {ref} is wired {wired_out.get(ref, 0)} times, expected once")
            for port in prim.inputs:
                ref = f"{prim.name}.{port.name}"
                if wired_in.get(ref, 0) != 1:
                    found.append(f"input {ref} is wired {wired_in.get(ref, 0)} times, expected once")
        if not found and self._has_cycle():
            found.append("the graph has a cycle")
        return found

    def _has_cycle(self) -> bool:
        succ: dict[str, set[str]] = {n: set() for n in self.nodes}
        for edge in self.edges:
            succ[edge.source.split(".")[0]].add(edge.target.split(".")[0])
        state: dict[str, int] = {}

        def visit(node: str) -> bool:
            state[node] = 1
            for nxt in succ[node]:
                if state.get(nxt) == 1 or (state.get(nxt) is None and visit(nxt)):
                    return True
            state[node] = 2
            return False

        return any(state.get(n) is None and visit(n) for n in self.nodes)

    async def run(self) -> None:
        """Run every primitive until all sources end and the data drains; raises if ill-formed."""
        problems = self.problems()
        if problems:
            raise ValueError("ill-formed graph: " + "; ".join(problems))
        inputs: dict[str, dict[str, Receive]] = {n: {} for n in self.nodes}
        outputs: dict[str, dict[str, Send]] = {n: {} for n in self.nodes}
        for edge in self.edges:
            send, receive = anyio.create_memory_object_stream[dict](edge.buffer)
            src_node, _, src_port = edge.source.partition(".")
            dst_node, _, dst_port = edge.target.partition(".")
            outputs[src_node][src_port] = send
            inputs[dst_node][dst_port] = receive
        async with anyio.create_task_group() as tg:
            for name, prim in self.nodes.items():
                tg.start_soon(prim.run, inputs[name], outputs[name], name=f"primitive:{name}")
