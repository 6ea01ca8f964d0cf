"""Issue 5's figures: sample ingest rate, gateway overhead, requests lost in a blue/green switch.

Run: python -m bench.deploy_speed

* ingest, the real path: mirrored requests recorded as the gateway records
  them, each pair through ``Gateway._record_pair`` (both answers digested, two
  ``SampleBuffer.add`` calls) and the buffer flushed as a Parquet segment every
  ~1 s worth of pairs, as ``flush_forever`` does; rows/s over the whole of it,
  and the recording's share of one request's time in microseconds. Beside it,
  as a bound nothing in the gateway reaches, a frame built in numpy written as
  one segment, and DuckDB inserting that frame into a table; target >= 5 M
  rows/s was set for the bound.
* gateway overhead: the same closed-loop load (32 concurrent clients, this
  module's Python client, which is itself the bottleneck here) straight to a
  served v1 system and through the gateway, mirroring and recording off; target
  ratio >= 0.5 and added p50 < 1 ms. :mod:`bench.gateway_vs_nginx` measures
  the gateway with ``wrk`` beside nginx, mirroring and recording on and off.
* switch: load through the gateway while the route flips blue -> green and
  back 20 times; target 0 requests lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from engine.deploy import supervisor
from engine.deploy.gateway import SAMPLE_COLUMNS, Gateway, write_segment
from engine.deploy.http import Upstream
from engine.workspace import Workspace


def sample_frame(rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(5)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return pl.DataFrame(
        {
            "ts": pl.datetime_range(start, start + dt.timedelta(microseconds=rows - 1), "1us", eager=True),
            "run_id": ["parallel-bench"] * rows,
            "request_id": np.arange(rows),
            "endpoint": rng.choice(["list", "create", "get"], rows),
            "version": rng.choice(["old", "new"], rows),
            "slot": rng.choice(["blue", "green"], rows),
            "primary": rng.random(rows) < 0.5,
            "status": np.full(rows, 200, dtype=np.int32),
            "ok": rng.random(rows) > 0.01,
            "latency_ms": rng.lognormal(0, 0.3, rows),
            "digest": ["0123456789abcdef"] * rows,
            "match": rng.random(rows) > 0.001,
            "body": [None] * rows,
            "called_first": rng.random(rows) < 0.5,
            "service_ms": [None] * rows,
            "cpu_wait_ms": [None] * rows,
        },
        schema=SAMPLE_COLUMNS,
    )


def bound(rows: int = 2_000_000) -> tuple[float, float]:
    """(rows/s, rows/s): a prebuilt frame written as one segment, and DuckDB inserting it into a table."""
    frame = sample_frame(rows)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "part-0.parquet"
        t0 = time.perf_counter()
        write_segment(frame, target)
        segment_s = time.perf_counter() - t0
        with duckdb.connect(str(Path(tmp) / "direct.duckdb")) as con:
            con.execute("SET enable_progress_bar = false")
            con.execute("CREATE TABLE samples AS SELECT * FROM frame LIMIT 0")
            t0 = time.perf_counter()
            con.execute("INSERT INTO samples SELECT * FROM frame")
            direct_s = time.perf_counter() - t0
    return rows / segment_s, rows / direct_s


ANSWER = json.dumps({"message": "Hello, bench!", "greeting_count": 12}).encode()
"""A v1 hello_world_api answer, as the gateway digests it."""


def gateway_path(pairs: int = 300_000, flush_every: int = 50_000) -> tuple[float, float, int]:
    """(rows/s, microseconds per mirrored request, segments): recording as the gateway records.

    Every pair goes through the gateway's own ``_record_pair`` (digests, the
    comparison, two buffer rows); every ``flush_every`` pairs the buffer is
    written, as the gateway's flusher writes what a second brought (a parallel
    run at 50,000 mirrored req/s, more than the gateway serves).
    """
    with tempfile.TemporaryDirectory() as tmp:
        gateway = Gateway(Path(tmp) / "routes.json", Path(tmp) / "samples")
        slots = {"blue": {"port": 1, "version": "old"}, "green": {"port": 2, "version": "new"}}
        route = {"active": "blue", "mirror": True, "record_run": "parallel-bench", "slots": slots}
        rng = np.random.default_rng(5)
        latencies = rng.lognormal(0, 0.3, (pairs, 2)).tolist()
        endpoints = rng.choice(["list", "create", "get"], pairs).tolist()
        timing = "app;dur={:.4f}, cpu-wait;dur=0.0100"  # Server-Timing, as a served version sends it
        t0 = time.perf_counter()
        for i in range(pairs):
            ts = time.time_ns() // 1000  # as the gateway reads a recorded request's time
            old, new = latencies[i]
            gateway._record_pair(  # noqa: SLF001 - the gateway's own recording step is what is measured
                "bench",
                "parallel-bench",
                endpoints[i],
                ts,
                route,
                ("blue", "green"),
                (200, ANSWER, old, timing.format(old * 0.8)),
                (200, ANSWER, new, timing.format(new * 0.8)),
            )
            if (i + 1) % flush_every == 0:
                gateway.samples.flush()
        gateway.samples.flush()
        elapsed = time.perf_counter() - t0
        segments = sum(1 for _ in (Path(tmp) / "samples").rglob("part-*.parquet"))
    return 2 * pairs / elapsed, elapsed / pairs * 1e6, segments


def ingest() -> None:
    rate, per_request_us, segments = gateway_path()
    segment_rate, direct_rate = bound()
    print(
        f"ingest, the gateway's path (_record_pair per mirrored request, flushed as {segments} segments): "
        f"{rate / 1e6:.2f} M rows/s, {per_request_us:.1f} us of each mirrored request\n"
        f"  bound: a prebuilt frame as one segment {segment_rate / 1e6:.1f} M rows/s "
        f"(DuckDB insert {direct_rate / 1e6:.1f} M rows/s); real path / bound {rate / segment_rate:.3f}"
    )


async def closed_loop(port: int, path: str, seconds: float, clients: int = 32) -> tuple[float, float]:
    """(requests/s, p50 ms) with ``clients`` concurrent keep-alive clients."""
    body = json.dumps({"name": "bench"}).encode()
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def client() -> None:
        up = Upstream("127.0.0.1", port)
        while time.perf_counter() < stop:
            t = time.perf_counter()
            await up.request("POST", path, body)
            latencies.append((time.perf_counter() - t) * 1000)
        up.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(latencies) / (time.perf_counter() - t0), float(np.median(latencies))


def gateway_and_switch(ws: Workspace) -> None:
    from engine import services

    services.init_workspace(ws, actor="bench")
    name = "hello_world_api"
    services.convert_systems(ws, [name], actor="bench")
    services.validate_systems_v2(ws, [name], actor="bench")
    services.checklist(ws, name, actor="bench", ack="team_notified")
    out = services.deploy(ws, name, actor="bench", reason="bench")
    try:
        direct_rps, direct_p50 = asyncio.run(closed_loop(out.blue_port, "/call/hello", 5))
        gw_rps, gw_p50 = asyncio.run(closed_loop(out.gateway_port, f"/s/{name}/call/hello", 5))
        one_direct = asyncio.run(closed_loop(out.blue_port, "/call/hello", 3, clients=1))[1]
        one_gw = asyncio.run(closed_loop(out.gateway_port, f"/s/{name}/call/hello", 3, clients=1))[1]
        print(
            f"added p50 with one client: {one_gw - one_direct:.2f} ms (direct {one_direct:.2f}; target < 1)"
        )
        print(
            f"gateway overhead: direct {direct_rps:.0f} req/s p50 {direct_p50:.2f} ms, through gateway "
            f"{gw_rps:.0f} req/s p50 {gw_p50:.2f} ms; ratio {gw_rps / direct_rps:.2f} (target >= 0.5), "
            f"added p50 at saturation {gw_p50 - direct_p50:.2f} ms"
        )
        from engine.store import connect, transaction
        from engine.store import deployments as store

        async def load_while_switching() -> tuple[int, int, int]:
            up = Upstream("127.0.0.1", out.gateway_port)
            sent = lost = failed = 0
            stop = asyncio.Event()

            async def client() -> None:
                nonlocal sent, lost, failed
                while not stop.is_set():
                    sent += 1
                    try:
                        status, _ = await up.request("POST", f"/s/{name}/call/hello", b'{"name": "x"}')
                        failed += status != 200
                    except OSError:
                        lost += 1

            tasks = [asyncio.create_task(client()) for _ in range(16)]
            for i in range(20):
                slot = "green" if i % 2 == 0 else "blue"
                await asyncio.to_thread(_switch, slot)
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.gather(*tasks)
            up.close()
            return sent, lost, failed

        def _switch(slot: str) -> None:
            with connect(ws.db_path) as con, transaction(con):
                store.put_route(con, name, strategy="blue_green", active_slot=slot)
            supervisor.publish_routes(ws, "bench")

        sent, lost, failed = asyncio.run(load_while_switching())
        print(f"blue/green switch x20 under load: {sent} requests, {lost} lost, {failed} non-200 (target 0)")
    finally:
        services.down(ws, actor="bench")


def main() -> None:
    ingest()
    with tempfile.TemporaryDirectory() as tmp:
        gateway_and_switch(Workspace(Path(tmp) / "ws"))


if __name__ == "__main__":
    main()
