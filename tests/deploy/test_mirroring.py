"""How the gateway mirrors a request: primary first, the caller answered, then the shadow.

In-process: the gateway's handler against two small asyncio backends on loopback
that log when each call starts and ends, so what is checked is the order of
events, or a ratio of two latencies measured side by side, never a time.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import polars as pl

from engine.deploy import gateway as gateway_module
from engine.deploy.gateway import SHADOW_GAP_S, Gateway, service_time
from engine.deploy.http import Request, Response, start_server


class Backends:
    """Two services (``old`` and ``new``) that answer after ``delay_s`` each and log their calls."""

    def __init__(
        self,
        delay_s: dict[str, float],
        timing: dict[str, str] | None = None,
        answers: dict[str, bytes] | None = None,
    ):
        self.delay_s = delay_s
        self.timing = timing or {}  # a Server-Timing header per version, as engine.runtime.serve sends one
        self.answers = answers or {}  # a body per version ({"hello": "world"} where none is given)
        self.times: dict[tuple[str, str, int], float] = {}
        self.log: list[tuple[str, str, int]] = []  # (version, "start" | "end", request number)
        self.servers: list[asyncio.Server] = []
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        for version in ("old", "new"):

            async def handler(request: Request, version: str = version) -> Response:
                number = json.loads(request.body)["i"]
                self.log.append((version, "start", number))
                self.times[version, "start", number] = time.perf_counter()
                await asyncio.sleep(self.delay_s[version])
                self.log.append((version, "end", number))
                self.times[version, "end", number] = time.perf_counter()
                timing = {"server-timing": self.timing[version]} if version in self.timing else {}
                answer = self.answers.get(version, json.dumps({"hello": "world"}).encode())
                return Response(200, answer, headers=timing)

            server = await start_server(handler, "127.0.0.1", 0)
            self.servers.append(server)
            self.ports[version] = server.sockets[0].getsockname()[1]

    def started(self, version: str, number: int) -> bool:
        return (version, "start", number) in self.log

    def close(self) -> None:
        for server in self.servers:
            server.close()


def gateway_for(tmp_path: Path, ports: dict[str, int], mirror: bool = True) -> Gateway:
    slots = {
        "blue": {"port": ports["old"], "version": "old"},
        "green": {"port": ports["new"], "version": "new"},
    }
    route = {"active": "blue", "canary_weight": 0.0, "mirror": mirror, "record_run": "r-1", "slots": slots}
    (tmp_path / "routes.json").write_text(json.dumps({"systems": {"hello": route}}))
    return Gateway(tmp_path / "routes.json", tmp_path / "samples")


def call(number: int) -> Request:
    body = json.dumps({"i": number}).encode()
    return Request("POST", "/s/hello/call/hi", {"content-length": str(len(body))}, body)


def recorded(tmp_path: Path) -> pl.DataFrame:
    return pl.read_parquet(tmp_path / "samples" / "system=hello" / "run=r-1" / "part-*.parquet")


def test_the_shadow_is_called_after_the_primary_has_answered_and_after_the_caller_is(tmp_path: Path) -> None:
    """Sent at once, each version's latency took in part of the other's work (the side sent second
    answered 1.75x slower here). Now a pair never overlaps, and the caller's answer is ready before
    the shadow's request is sent."""
    pairs = 30

    async def scenario() -> tuple[Backends, Gateway, list[bool]]:
        backends = Backends({"old": 0.002, "new": 0.002})
        await backends.start()
        gateway = gateway_for(tmp_path, backends.ports)
        shadow_started_before_answer = []
        try:
            for number in range(pairs):
                response = await gateway.handle(call(number))
                assert response.status == 200
                shadow_started_before_answer.append(backends.started("new", number))
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.1)  # the last shadows end and are recorded
        finally:
            backends.close()
        return backends, gateway, shadow_started_before_answer

    backends, gateway, early = asyncio.run(scenario())
    assert not any(early)
    for number in range(pairs):
        assert backends.log.index(("old", "end", number)) < backends.log.index(("new", "start", number))
    gateway.samples.flush()
    samples = recorded(tmp_path)
    assert samples.height == 2 * pairs
    assert samples.filter(pl.col("called_first"))["version"].unique().to_list() == ["old"]
    # and not at once: called right after the primary, the shadow read ~5 % faster on warm caches
    gaps = [backends.times["new", "start", n] - backends.times["old", "end", n] for n in range(pairs)]
    assert min(gaps) >= SHADOW_GAP_S


def test_each_version_s_own_time_is_recorded_beside_the_round_trip(tmp_path: Path) -> None:
    """The version says in Server-Timing how long it took and how long of that it waited for a CPU;
    the gateway keeps its own round trip in latency_ms and the version's time, wait taken out, in
    service_ms. A version that says nothing has null there (not 0)."""
    timing = {"old": "app;dur=1.5, cpu-wait;dur=0.25", "new": "app;dur=4.0"}

    async def scenario() -> None:
        backends = Backends({"old": 0.002, "new": 0.002}, timing)
        await backends.start()
        gateway = gateway_for(tmp_path, backends.ports)
        try:
            for number in range(3):
                assert (await gateway.handle(call(number))).status == 200
            await asyncio.sleep(0.1)
            gateway.samples.flush()
        finally:
            backends.close()

    asyncio.run(scenario())
    own = (
        recorded(tmp_path)
        .group_by("version")
        .agg(pl.col("service_ms").unique(), pl.col("cpu_wait_ms").unique(), pl.col("latency_ms").min())
    )
    by = {row["version"]: row for row in own.to_dicts()}
    assert by["old"]["service_ms"] == [1.25] and by["old"]["cpu_wait_ms"] == [0.25]
    assert by["new"]["service_ms"] == [4.0] and by["new"]["cpu_wait_ms"] == [0.0]
    assert min(by["old"]["latency_ms"], by["new"]["latency_ms"]) >= 2.0  # the round trip, not the header

    tmp_path.joinpath("plain").mkdir()
    asyncio.run(_plain_call(tmp_path / "plain"))
    assert recorded(tmp_path / "plain")["service_ms"].to_list() == [None]


async def _plain_call(tmp_path: Path) -> None:
    backends = Backends({"old": 0.001, "new": 0.001})
    await backends.start()
    gateway = gateway_for(tmp_path, backends.ports, mirror=False)
    try:
        assert (await gateway.handle(call(0))).status == 200
        gateway.samples.flush()
    finally:
        backends.close()


def test_server_timing_is_read_as_the_version_s_time_less_its_cpu_wait() -> None:
    assert service_time({"server-timing": "app;dur=2.5, cpu-wait;dur=0.5"}) == (2.0, 0.5)
    assert service_time({"server-timing": "cpu-wait;dur=0.5,app;desc=x;dur=3"}) == (2.5, 0.5)
    assert service_time({"server-timing": "app;dur=0.2, cpu-wait;dur=0.9"}) == (0.0, 0.9)
    for absent in ({}, {"server-timing": "db;dur=3"}, {"server-timing": "app;dur=soon"}):
        assert service_time(absent) is None


def caller_latency(tmp_path: Path, delays: dict[str, float], mirror: bool, requests: int = 12) -> float:
    """Median time the caller waits for ``requests`` calls through a mirrored (or plain) route."""

    async def scenario() -> float:
        backends = Backends(delays)
        await backends.start()
        gateway = gateway_for(tmp_path / str(mirror), backends.ports, mirror)
        waits = []
        try:
            for number in range(requests):
                start = time.perf_counter()
                response = await gateway.handle(call(number))
                waits.append(time.perf_counter() - start)
                assert response.status == 200
            await asyncio.sleep(max(delays.values()) + 0.1)  # the shadows end before the loop does
        finally:
            backends.close()
        return statistics.median(waits)

    (tmp_path / str(mirror)).mkdir()
    return asyncio.run(scenario())


def test_a_slow_shadow_costs_the_caller_nothing(tmp_path: Path) -> None:
    """A shadow taking 200 ms against a primary taking 5 ms: waiting for it would be 40x the plain
    route; the caller must see about what the primary alone gives (side by side, as a ratio)."""
    delays = {"old": 0.005, "new": 0.2}
    mirrored = caller_latency(tmp_path, delays, mirror=True)
    plain = caller_latency(tmp_path, delays, mirror=False)
    assert mirrored / plain < 2


def test_a_hung_shadow_costs_the_caller_nothing_and_is_recorded_as_failing(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(gateway_module, "UPSTREAM_TIMEOUT_S", 0.3)

    async def scenario() -> tuple[list[float], Gateway]:
        backends = Backends({"old": 0.005, "new": 3600.0})
        await backends.start()
        gateway = gateway_for(tmp_path, backends.ports)
        waits = []
        try:
            for number in range(4):
                start = time.perf_counter()
                response = await gateway.handle(call(number))
                waits.append(time.perf_counter() - start)
                assert response.status == 200
            await asyncio.sleep(0.6)  # the shadows run out of time, and are recorded
        finally:
            backends.close()
        return waits, gateway

    waits, gateway = asyncio.run(scenario())
    assert max(waits) < 0.3 / 2  # answered long before the shadow's bound ran out (the bound is the ruler)
    gateway.samples.flush()
    new = recorded(tmp_path).filter(pl.col("version") == "new")
    assert new.height == 4 and not new["ok"].any() and (new["status"] == 0).all()


def test_every_column_of_a_recorded_row(tmp_path: Path) -> None:
    """The gateway writes a row as a tuple in SAMPLE_COLUMNS' order: each value lands in its column."""
    timing = {"old": "app;dur=1.5, cpu-wait;dur=0.25", "new": "app;dur=2.0"}
    answers = {"old": b'{"a": 1, "b": 2}', "new": b'{"b": 2, "a": 1}'}  # alike as JSON: a match

    def scenario(name: str, answers: dict[str, bytes], mirror: bool) -> list[dict[str, object]]:
        async def one_call() -> None:
            backends = Backends({"old": 0.001, "new": 0.001}, timing, answers)
            await backends.start()
            gateway = gateway_for(tmp_path / name, backends.ports, mirror)
            try:
                assert (await gateway.handle(call(0))).status == 200
                await asyncio.sleep(0.1)
                gateway.samples.flush()
            finally:
                backends.close()

        (tmp_path / name).mkdir()
        asyncio.run(one_call())
        return recorded(tmp_path / name).sort("called_first", descending=True, nulls_last=True).to_dicts()

    matched = scenario("matched", answers, mirror=True)
    mismatched = scenario("mismatched", {"old": b'{"a": 1}', "new": b'{"a": 2}'}, mirror=True)
    [plain] = scenario("plain", answers, mirror=False)
    for row in [*matched, *mismatched, plain]:
        assert row["ts"] is not None and row["run_id"] == "r-1" and row["endpoint"] == "hi"
        assert row["request_id"] == 1 and row["status"] == 200 and row["ok"] is True
        assert row["latency_ms"] >= 1.0  # type: ignore[operator]
    same = gateway_module.digest(200, answers["old"])
    assert [(r["version"], r["slot"], r["primary"], r["called_first"]) for r in matched] == [
        ("old", "blue", True, True),
        ("new", "green", False, False),
    ]
    assert [(r["digest"], r["match"], r["body"]) for r in matched] == [(same, None, None), (same, True, None)]
    assert [(r["service_ms"], r["cpu_wait_ms"]) for r in matched] == [(1.25, 0.25), (2.0, 0.0)]
    assert [(r["match"], r["body"]) for r in mismatched] == [(None, '{"a": 1}'), (False, '{"a": 2}')]
    assert mismatched[0]["digest"] != mismatched[1]["digest"]
    assert (plain["version"], plain["slot"], plain["primary"]) == ("old", "blue", True)
    assert plain["called_first"] is None
    assert (plain["digest"], plain["match"], plain["body"], plain["service_ms"]) == (same, None, None, 1.25)
