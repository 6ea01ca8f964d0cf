"""Issue 5's figures: sample ingest rate, gateway overhead, requests lost in a blue/green switch.

Run: python -m bench.deploy_speed

* ingest: a 2 M-row sample frame written the way the gateway writes it (a
  Parquet segment, temp name then rename) vs DuckDB inserting the same frame
  into a table directly; target >= 5 M rows/s.
* gateway overhead: the same closed-loop load (32 concurrent clients) straight
  to a served v1 system and through the gateway; target ratio >= 0.5 and
  added p50 < 1 ms.
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
from engine.deploy.gateway import SAMPLE_COLUMNS, write_segment
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


def ingest(rows: int = 2_000_000) -> None:
    frame = sample_frame(rows)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "part-0.parquet"
        t0 = time.perf_counter()
        write_segment(frame, target)
        segment_s = time.perf_counter() - t0
        with duckdb.connect(str(Path(tmp) / "direct.duckdb")) as con:
            con.execute("CREATE TABLE samples AS SELECT * FROM frame LIMIT 0")
            t0 = time.perf_counter()
            con.execute("INSERT INTO samples SELECT * FROM frame")
            direct_s = time.perf_counter() - t0
    rate = rows / segment_s
    print(
        f"ingest {rows:,} samples: Parquet segment {rate / 1e6:.1f} M rows/s (target >= 5), "
        f"DuckDB insert {rows / direct_s / 1e6:.1f} M rows/s; ratio segment/direct {direct_s / segment_s:.2f}"
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
