"""How the gateway mirrors a request: the two versions are called in turn, in random order.

In-process: the gateway's handler against two small asyncio backends on loopback
that note how many calls of either are in flight when each one starts, so what
is checked is the order of events, never a time.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import polars as pl

from engine.deploy import gateway as gateway_module
from engine.deploy.gateway import Gateway
from engine.deploy.http import Request, Response, start_server


class Backends:
    """Two services (``old`` and ``new``) that answer after ``delay_s`` each and count overlaps."""

    def __init__(self, delay_s: dict[str, float]):
        self.delay_s = delay_s
        self.in_flight = 0
        self.most_in_flight = 0
        self.finished: list[str] = []
        self.servers: list[asyncio.Server] = []
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        for version in ("old", "new"):

            async def handler(request: Request, version: str = version) -> Response:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                try:
                    await asyncio.sleep(self.delay_s[version])
                finally:
                    self.in_flight -= 1
                self.finished.append(version)
                return Response(200, json.dumps({"hello": "world"}).encode())

            server = await start_server(handler, "127.0.0.1", 0)
            self.servers.append(server)
            self.ports[version] = server.sockets[0].getsockname()[1]

    def close(self) -> None:
        for server in self.servers:
            server.close()


def mirrored_gateway(tmp_path: Path, ports: dict[str, int]) -> Gateway:
    routes = {
        "systems": {
            "hello": {
                "active": "blue",
                "canary_weight": 0.0,
                "mirror": True,
                "record_run": "r-1",
                "slots": {
                    "blue": {"port": ports["old"], "version": "old"},
                    "green": {"port": ports["new"], "version": "new"},
                },
            }
        }
    }
    (tmp_path / "routes.json").write_text(json.dumps(routes))
    return Gateway(tmp_path / "routes.json", tmp_path / "samples")


def call(gateway: Gateway) -> Request:
    return Request("POST", "/s/hello/call/hi", {"content-length": "2"}, b"{}")


def test_the_two_versions_of_a_pair_are_called_one_after_the_other_in_random_order(tmp_path: Path) -> None:
    """Sent at once, each version's latency took in part of the other's work (the side sent second
    answered 1.75x slower here); called in turn, no two calls ever overlap, and ``called_first``
    records the order, which is old first about as often as new first."""
    pairs = 60

    async def scenario() -> tuple[Backends, Gateway]:
        backends = Backends({"old": 0.003, "new": 0.003})
        await backends.start()
        gateway = mirrored_gateway(tmp_path, backends.ports)
        try:
            for _ in range(pairs):
                response = await gateway.handle(call(gateway))
                assert response.status == 200
                await asyncio.sleep(0)  # the shadow's outcome is recorded from its done callback
        finally:
            backends.close()
        return backends, gateway

    backends, gateway = asyncio.run(scenario())
    assert backends.most_in_flight == 1
    gateway.samples.flush()
    samples = pl.read_parquet(tmp_path / "samples" / "system=hello" / "run=r-1" / "*.parquet")
    assert samples.height == 2 * pairs
    firsts = samples.group_by("request_id").agg(pl.col("called_first").sum().alias("n"))
    assert (firsts["n"] == 1).all()  # exactly one side of each pair went first
    old_first = samples.filter((pl.col("version") == "old") & pl.col("called_first")).height
    assert 10 <= old_first <= pairs - 10  # random order (binomial(60, 1/2) outside this: p < 1e-6)


def test_a_slow_shadow_holds_the_caller_up_for_at_most_the_shadow_wait(tmp_path: Path, monkeypatch) -> None:
    """A new version that hangs must not hang the callers: past ``SHADOW_WAIT_S`` the primary's
    answer goes back while the shadow's call goes on, and its outcome is still recorded."""
    monkeypatch.setattr(gateway_module, "SHADOW_WAIT_S", 0.05)

    async def scenario() -> tuple[Backends, Gateway, list[str]]:
        backends = Backends({"old": 0.0, "new": 1.0})
        await backends.start()
        gateway = mirrored_gateway(tmp_path, backends.ports)
        seen_at_answer = []
        try:
            for _ in range(4):
                response = await gateway.handle(call(gateway))
                assert response.status == 200
                seen_at_answer.append(",".join(backends.finished))
            await asyncio.sleep(1.5)  # the shadows finish, and are recorded
        finally:
            backends.close()
        return backends, gateway, seen_at_answer

    backends, gateway, seen_at_answer = asyncio.run(scenario())
    assert all("new" not in seen for seen in seen_at_answer)  # answered before any shadow was done
    assert backends.finished.count("new") == 4
    gateway.samples.flush()
    samples = pl.read_parquet(tmp_path / "samples" / "system=hello" / "run=r-1" / "*.parquet")
    assert samples.filter(pl.col("version") == "new").height == 4
