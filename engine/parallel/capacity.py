"""Capacity: the requests per second each version sustains, measured side by side on loopback.

Why a probe of its own: in a mirrored run both versions are offered the same
load, so what each served is what it was sent, and the seed's "+20 %
throughput" cannot be read from it. Capacity is what a version serves when it
is given as much work as it can take: a closed loop (``connections`` clients,
each sending its next request as soon as the last one is answered) straight at
the version's own port, not through the gateway (whose cost would be measured
too). Old and new take turns for ``round_s`` each, in the order old, new, new,
old, old, new, ... so that whatever the machine does meanwhile (other work, a
frequency change) falls on both alike; a short warm-up of each comes first and
is not counted.

The client runs in this process; its CPU share is recorded, since a client that
needs a whole core is measuring itself (measured here: a v1 hello_world_api
serves about 1,200-1,450 req/s to this client at 21-36 % of a core, 1,400-1,750
to ``wrk``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

import duckdb
from pydantic import BaseModel, Field

from engine.deploy.http import HttpError, Upstream
from engine.store.events import latest_after
from engine.units import change

LOOPBACK = "127.0.0.1"
ROUND_S = 2.0
ROUNDS = 3
CONNECTIONS = 8
WARMUP_S = 0.5
REQUEST_TIMEOUT_S = 5.0
MAX_ERROR_SHARE = 0.01
"""A version failing more than this share of the probe's requests has no capacity figure worth the name."""
MEASURED = "capacity:measured"
"""The audit action that records a probe (its ``after`` is a :class:`Capacity`)."""


class Phase(BaseModel):
    """One version's turn: what it served in ``seconds`` of closed-loop load."""

    version: str
    round: int
    ok: int
    errors: int
    seconds: float

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


class Capacity(BaseModel):
    """Each version's sustainable requests per second and the change, new over old."""

    system: str
    measured_at: dt.datetime
    actor: str
    old_rps: float
    new_rps: float
    change: float | None = Field(
        description="new_rps / old_rps - 1 (0.2 = +20 %), the seed's throughput KPI; None: old served none",
    )
    low: float | None = Field(
        description="Smallest per-round change: with ``high``, how steady the rounds were."
    )
    high: float | None
    connections: int
    round_s: float
    phases: list[Phase]
    client_cpu_share: float = Field(description="CPU the probe's client used, as a share of one core.")
    valid: bool = True
    note: str = ""

    def describe(self) -> str:
        text = (
            f"capacity: old {self.old_rps:,.0f} req/s, new {self.new_rps:,.0f} req/s, "
            f"change {change(self.change)} (rounds {change(self.low)} .. {change(self.high)}; "
            f"{self.connections} connections, {len(self.phases) // 2} rounds of {self.round_s:g} s each)"
        )
        return text + (f"; {self.note}" if self.note else "")


async def closed_loop(
    port: int, mix: list[tuple[str, bytes]], connections: int, seconds: float, path_prefix: str = "/call"
) -> tuple[int, int, float]:
    """(ok, errors, elapsed s) of ``connections`` clients sending back to back for ``seconds``.

    Requests in flight at the deadline are finished and counted, and the
    elapsed time runs until the last one, so the rate is never flattered.
    """
    upstream = Upstream(LOOPBACK, port)
    counts = {"ok": 0, "errors": 0}
    start = time.perf_counter()
    deadline = start + seconds

    async def client(k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
            endpoint, body = mix[i % len(mix)]
            i += connections
            try:
                status, _ = await upstream.request(
                    "POST", f"{path_prefix}/{endpoint}", body, timeout=REQUEST_TIMEOUT_S
                )
            except (HttpError, OSError, TimeoutError):
                status = 0
            counts["ok" if status == 200 else "errors"] += 1

    try:
        await asyncio.gather(*(client(k) for k in range(connections)))
    finally:
        upstream.close()
    return counts["ok"], counts["errors"], time.perf_counter() - start


def probe(
    ports: dict[str, int],
    mix: list[tuple[str, bytes]],
    *,
    system: str,
    actor: str,
    rounds: int = ROUNDS,
    round_s: float = ROUND_S,
    connections: int = CONNECTIONS,
    progress: Callable[[int, int, str], None] | None = None,
) -> Capacity:
    """Measure ``ports['old']`` and ``ports['new']`` in alternating turns; see the module doc."""
    if rounds < 1 or round_s <= 0 or connections < 1:
        raise ValueError("rounds, round length and connections must be positive")
    order = ["old", "new"]
    phases: list[Phase] = []
    total = 2 * rounds
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for version in order:  # warm-up, not counted
        asyncio.run(closed_loop(ports[version], mix, connections, WARMUP_S))
    for r in range(rounds):
        for version in order if r % 2 == 0 else order[::-1]:
            if progress:
                progress(len(phases), total, f"round {r + 1}/{rounds}: closed-loop load on {version}")
            ok, errors, seconds = asyncio.run(closed_loop(ports[version], mix, connections, round_s))
            phases.append(Phase(version=version, round=r, ok=ok, errors=errors, seconds=seconds))
    cpu_share = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
    return summarise(
        phases, system=system, actor=actor, connections=connections, round_s=round_s, cpu=cpu_share
    )


def summarise(
    phases: list[Phase], *, system: str, actor: str, connections: int, round_s: float, cpu: float
) -> Capacity:
    """Each version's rate over all its turns, the change, and the spread of the per-round changes."""

    def rate(version: str, of: list[Phase]) -> float:
        mine = [p for p in of if p.version == version]
        seconds = sum(p.seconds for p in mine)
        return sum(p.ok for p in mine) / seconds if seconds > 0 else 0.0

    old, new = rate("old", phases), rate("new", phases)
    per_round = []
    for r in sorted({p.round for p in phases}):
        of = [p for p in phases if p.round == r]
        o, n = rate("old", of), rate("new", of)
        if o > 0:
            per_round.append(n / o - 1)
    notes = []
    for version in ("old", "new"):
        mine = [p for p in phases if p.version == version]
        sent = sum(p.ok + p.errors for p in mine)
        failed = sum(p.errors for p in mine)
        if not sent or failed / sent > MAX_ERROR_SHARE:
            notes.append(f"{version} failed {failed} of {sent} requests")
    if cpu > 0.9:
        notes.append(f"the probe's client used {cpu:.0%} of a core: the figures may be the client's limit")
    ratio = new / old - 1 if old > 0 else None
    return Capacity(
        system=system,
        measured_at=dt.datetime.now(dt.UTC),
        actor=actor,
        old_rps=old,
        new_rps=new,
        change=ratio,
        low=min(per_round, default=None),
        high=max(per_round, default=None),
        connections=connections,
        round_s=round_s,
        phases=phases,
        client_cpu_share=cpu,
        valid=not any("failed" in n for n in notes) and old > 0,
        note="; ".join(notes),
    )


def latest_capacity(con: duckdb.DuckDBPyConnection, system: str) -> Capacity | None:
    """The newest capacity probe of ``system``, or None."""
    after = latest_after(con, system, MEASURED)
    return Capacity.model_validate(after) if after else None
