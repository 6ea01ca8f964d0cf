"""Optimisation opportunities carry measured figures, or say there are none; never invented numbers."""

from __future__ import annotations

import datetime as dt

import polars as pl

from engine import services
from engine.store import connect
from engine.store import deployments as store
from engine.workspace import Workspace


def write_run(ws: Workspace, system: str, run_id: str) -> None:
    """10 s at 20 requests/s per version: old always 50 ms; new 50 ms except 2 requests a second at 200 ms.

    So new's p50 is 50 ms and p95 200 ms (4x; old 1x), and its mean is 65 ms a second: 20/s x 0.065 s
    = 1.3 requests in flight at most (Little's law).
    """
    with connect(ws.db_path) as con:
        store.create_run(con, run_id, system, "parallel", "tester", duration_s=10, bucket_s=1, rps=20)
    base = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)
    rows = []
    for second in range(10):
        for i in range(20):
            ts = base + dt.timedelta(seconds=second, milliseconds=i * 50)
            rows.append((ts, "old", 50.0))
            rows.append((ts, "new", 200.0 if i < 2 else 50.0))
    folder = ws.samples_dir / f"system={system}" / f"run={run_id}"
    folder.mkdir(parents=True)
    pl.DataFrame(
        {
            "ts": [r[0] for r in rows],
            "version": [r[1] for r in rows],
            "latency_ms": [r[2] for r in rows],
            "ok": [True] * len(rows),
            "primary": [r[1] == "old" for r in rows],
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    ).write_parquet(folder / "part-000001.parquet")


def by_area(ws: Workspace) -> dict:
    return {o.id: o for o in services.optimisations(ws)}


def test_without_runs_every_area_says_no_measurements_yet(sample_ws: Workspace) -> None:
    found = services.optimisations(sample_ws)
    assert [(o.area, o.action, o.impact) for o in found] == [
        ("Buffer Sizes", "Tune based on actual usage patterns", "Memory efficiency"),
        ("Concurrency", "Adjust worker counts per component", "CPU utilization"),
        ("Batch Sizes", "Optimize for throughput vs latency", "Performance"),
        ("Checkpoint Frequency", "Balance durability vs performance", "Recovery time"),
    ]
    assert all(not o.findings and o.note and o.note.startswith("no measurements yet") for o in found)


def test_a_measured_run_gives_figures_per_area(sample_ws: Workspace) -> None:
    services.convert_systems(sample_ws, ["todo_api_system"], actor="tester")
    write_run(sample_ws, "todo_api_system", "r9")
    areas = by_area(sample_ws)

    (buffer,) = areas["buffer_sizes"].findings
    assert buffer.system == "todo_api_system"
    assert buffer.measured == (
        "input buffers hold 64 messages (3 components); at most 1.3 requests in flight on new "
        "(peak 20 req/s, run r9)"
    )
    assert buffer.suggests == "buffers are 49x the peak: about 8 would hold it"

    (workers,) = areas["concurrency"].findings
    assert "new p95 200.0 ms vs p50 50.0 ms (4.0x; old 1.0x)" in workers.measured
    assert workers.suggests.startswith("requests queue behind 1 worker(s)")

    (batch,) = areas["batch_sizes"].findings
    assert batch.measured.startswith("batch_size 1; new served 20 req/s")
    assert batch.suggests == "no verdict yet to weigh throughput against latency"

    assert not areas["checkpoint_frequency"].findings  # nothing was rolled back


def test_a_timed_rollback_is_the_checkpoint_evidence(sample_ws: Workspace) -> None:
    services.convert_systems(sample_ws, ["todo_api_system"], actor="tester")
    with connect(sample_ws.db_path) as con:
        op = store.start_operation(con, "todo_api_system", "rollback", "tester")
        con.execute(
            "UPDATE operations SET ended_at = started_at + INTERVAL 12 SECOND, status = 'completed' "
            "WHERE id = ?",
            [op],
        )
    (finding,) = by_area(sample_ws)["checkpoint_frequency"].findings
    assert finding.system == "todo_api_system"
    assert finding.measured.startswith("1 rollback(s) took 12.0 s at most to restore")
    assert "todo_store (capacity 1000)" in finding.measured
    assert "no checkpoint today" in finding.suggests
