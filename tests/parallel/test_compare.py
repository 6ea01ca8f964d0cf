"""Per-bucket comparisons of a run: the cut-short first and last buckets are flagged, not read as dips."""

from __future__ import annotations

import datetime as dt

import polars as pl

from engine.deploy.gateway import SAMPLE_COLUMNS
from engine.parallel.compare import bucket_stats
from engine.workspace import Workspace

T0 = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.UTC)


def test_partial_edge_buckets_are_marked_incomplete(tmp_path) -> None:
    ws = Workspace(tmp_path / "ws")
    folder = ws.samples_dir / "system=s" / "run=r"
    folder.mkdir(parents=True)
    # 100 requests per second from 12:00:00.5 to 12:00:03.49: buckets :00 and :03 are half covered
    ts = [T0 + dt.timedelta(seconds=0.5 + i / 100) for i in range(300)]
    rows = (
        pl.DataFrame(
            {
                "ts": ts * 2,
                "run_id": "r",
                "request_id": list(range(300)) * 2,
                "endpoint": "e",
                "version": ["old"] * 300 + ["new"] * 300,
                "slot": ["blue"] * 300 + ["green"] * 300,
                "primary": [True] * 300 + [False] * 300,
                "status": 200,
                "ok": True,
                "latency_ms": 1.0,
                "digest": "d",
                "match": [None] * 300 + [True] * 300,
                "body": None,
                "called_first": [True] * 300 + [False] * 300,
                "service_ms": None,
                "cpu_wait_ms": None,
            }
        )
        .select(list(SAMPLE_COLUMNS))
        .cast(SAMPLE_COLUMNS)
    )
    rows.write_parquet(folder / "part-000001.parquet")
    stats = bucket_stats(ws, "s", "r", 1.0).filter(pl.col("version") == "old").sort("bucket")
    assert stats["requests"].to_list() == [50, 100, 100, 50]
    assert stats["complete"].to_list() == [False, True, True, False]
    assert stats.filter(pl.col("complete"))["throughput_rps"].to_list() == [100.0, 100.0]
