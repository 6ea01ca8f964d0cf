"""Old vs new from a run's samples, shaped for the Go/No-Go page: per bucket, distributions, mismatches.

Computed by DuckDB straight from the run's Parquet segments (an in-memory
connection, so reading never competes for the control store's lock).
"""

from __future__ import annotations

import polars as pl

from engine.store.samples import query_run
from engine.workspace import Workspace


def _query(ws: Workspace, system: str, run_id: str, sql: str, params: list | None = None) -> pl.DataFrame:
    frame = query_run(ws, system, run_id, sql, params)
    return frame if frame is not None else pl.DataFrame()


def bucket_stats(ws: Workspace, system: str, run_id: str, bucket_s: float) -> pl.DataFrame:
    """Per bucket and version: requests, errors, error rate, throughput (ok/s), p50/p95/p99 latency.

    Buckets sit on the clock, so a run's first and last bucket are usually cut
    short and their throughput would read as a dip; ``complete`` says whether
    the run covered the whole bucket (the page draws throughput from complete
    buckets only).
    """
    return _query(
        ws,
        system,
        run_id,
        """
        SELECT bucket, version,
               count(*) AS requests, count(*) FILTER (WHERE NOT ok) AS errors,
               avg(CASE WHEN ok THEN 0 ELSE 1 END) AS error_rate,
               count(*) FILTER (WHERE ok) / ? AS throughput_rps,
               quantile_cont(latency_ms, 0.5) FILTER (WHERE ok) AS p50,
               quantile_cont(latency_ms, 0.95) FILTER (WHERE ok) AS p95,
               quantile_cont(latency_ms, 0.99) FILTER (WHERE ok) AS p99,
               bool_and(bucket >= first_ts AND bucket + to_microseconds(CAST(? * 1e6 AS BIGINT)) <= last_ts)
                   AS complete
        FROM (SELECT *, min(ts) OVER () AS first_ts, max(ts) OVER () AS last_ts,
                     time_bucket(to_microseconds(CAST(? * 1e6 AS BIGINT)), ts) AS bucket FROM s)
        GROUP BY bucket, version ORDER BY bucket, version
        """,
        [bucket_s, bucket_s, bucket_s],
    )


def latency_sample(ws: Workspace, system: str, run_id: str, limit: int = 20000) -> pl.DataFrame:
    """Latencies of ok requests, up to ``limit`` per version (a fixed pseudo-random pick by request)."""
    return _query(
        ws,
        system,
        run_id,
        "SELECT version, latency_ms FROM s WHERE ok "
        "QUALIFY row_number() OVER (PARTITION BY version ORDER BY hash(request_id)) <= ?",
        [limit],
    )


def mismatch_examples(ws: Workspace, system: str, run_id: str, limit: int = 20) -> pl.DataFrame:
    """Requests whose new answer differed from old, with both bodies where the gateway kept them."""
    return _query(
        ws,
        system,
        run_id,
        """
        SELECT n.ts, n.endpoint, o.status AS old_status, n.status AS new_status,
               o.body AS old_body, n.body AS new_body
        FROM s n JOIN s o ON o.request_id = n.request_id AND o.version = 'old'
        WHERE n.version = 'new' AND NOT n.match
        ORDER BY (n.body IS NULL), n.ts LIMIT ?
        """,
        [limit],
    )


def summary(ws: Workspace, system: str, run_id: str) -> pl.DataFrame:
    """Per version: requests, error rate, p50/p95/p99 over the whole run, mismatch rate (new)."""
    return _query(
        ws,
        system,
        run_id,
        """
        SELECT version, count(*) AS requests, avg(CASE WHEN ok THEN 0 ELSE 1 END) AS error_rate,
               quantile_cont(latency_ms, 0.5) FILTER (WHERE ok) AS p50,
               quantile_cont(latency_ms, 0.95) FILTER (WHERE ok) AS p95,
               quantile_cont(latency_ms, 0.99) FILTER (WHERE ok) AS p99,
               avg(CASE WHEN match THEN 0 ELSE 1 END) FILTER (WHERE match IS NOT NULL) AS mismatch_rate
        FROM s GROUP BY version ORDER BY version DESC
        """,
    )
