"""A workload generator: requests at a set rate and mix, through the gateway, open loop.

Open loop means request *i* is due at ``start + i / rps`` whether or not
earlier ones have answered (up to ``max_in_flight``), so a slow version shows
up as latency and errors instead of quietly lowering the offered load.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.deploy.http import HttpError, Upstream
from engine.parallel.smoke_requests import FIELD_VALUES, request_mix

__all__ = ["FIELD_VALUES", "WorkloadStats", "drive", "request_mix"]

CLIENT_TIMEOUT_S = 15.0
"""Bound on one request of the workload: longer than the gateway's own bound on a slot
(:data:`engine.deploy.gateway.UPSTREAM_TIMEOUT_S`), so a hung version shows up as the gateway's
502 (failed) rather than as a request the client gave up on (lost)."""


@dataclass
class WorkloadStats:
    """What the client saw; ``lost`` counts requests that got no HTTP answer at all."""

    sent: int = 0
    ok: int = 0
    failed: int = 0
    lost: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "ok": self.ok, "failed": self.failed, "lost": self.lost}


async def drive(
    port: int,
    path_prefix: str,
    mix: list[tuple[str, bytes]],
    *,
    rps: float,
    duration_s: float,
    tick_s: float = 1.0,
    on_tick: Callable[[float, WorkloadStats], bool] | None = None,
    max_in_flight: int = 256,
    host: str = "127.0.0.1",
) -> WorkloadStats:
    """Send ``rps`` requests/s for ``duration_s`` to ``host:port{path_prefix}/<endpoint>``.

    ``on_tick(elapsed, stats)`` runs every ``tick_s`` in a worker thread (it
    may read the store or files without holding up the requests); returning
    False stops the workload early (a stop request or a trigger). If it
    raises, the workload stops at once and the error is raised here: traffic
    must not go on unwatched (no triggers checked) until the duration ends.
    In-flight requests are awaited before returning, so every sent request is
    counted.
    """
    upstream = Upstream(host, port)
    stats = WorkloadStats()
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    stop = asyncio.Event()

    async def one(endpoint: str, body: bytes) -> None:
        try:
            status, _ = await upstream.request(
                "POST", f"{path_prefix}/{endpoint}", body, timeout=CLIENT_TIMEOUT_S
            )
        except (HttpError, OSError, TimeoutError):
            stats.lost += 1
            return
        finally:
            slots.release()
        if status == 200:
            stats.ok += 1
        else:
            stats.failed += 1

    async def ticker() -> None:
        tick = 1
        while not stop.is_set():
            await asyncio.sleep(max(0.0, start + tick * tick_s - time.perf_counter()))
            tick += 1
            try:
                elapsed = time.perf_counter() - start
                go_on = on_tick is None or await asyncio.to_thread(on_tick, elapsed, stats)
            except Exception:
                stop.set()  # the sender loop ends; the error is raised from ``await ticks`` below
                raise
            if go_on is False:
                stop.set()

    start = time.perf_counter()
    ticks = asyncio.create_task(ticker())
    i = 0
    try:
        while not stop.is_set():
            elapsed = time.perf_counter() - start
            if elapsed >= duration_s:
                break
            due = i / rps
            if due > elapsed:
                await asyncio.sleep(min(due - elapsed, 0.05))
                continue
            await slots.acquire()
            endpoint, body = mix[i % len(mix)]
            task = asyncio.create_task(one(endpoint, body))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            stats.sent += 1
            i += 1
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        stop.set()
        ticks.cancel()
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await ticks  # raises what on_tick raised
        finally:
            upstream.close()
    return stats
