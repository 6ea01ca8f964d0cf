"""Old vs new from a run's samples, shaped for the Go/No-Go page: per bucket, distributions, mismatches.

Computed by DuckDB straight from the run's Parquet segments (an in-memory
connection, so reading never competes for the control store's lock). Each
function reads one view; :func:`evidence` reads all four on one connection
(the page's path), opening the run's segments once instead of four times.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from engine.store.samples import RunIds, run_queries
from engine.workspace import Workspace

LATENCY_SAMPLE = 20000
MISMATCH_LIMIT = 20

SUMMARY = """
    SELECT version, requests, error_rate, q[1] AS p50, q[2] AS p95, q[3] AS p99, mismatch_rate FROM (
        SELECT version, count(*) AS requests, avg(CASE WHEN ok THEN 0 ELSE 1 END) AS error_rate,
               quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FILTER (WHERE ok) AS q,
               avg(CASE WHEN match THEN 0 ELSE 1 END) FILTER (WHERE match IS NOT NULL) AS mismatch_rate
        FROM s GROUP BY version
    ) ORDER BY version DESC
"""
"""Three quantiles from one sort per version (a list of quantiles), not three."""
BUCKETS = """
    SELECT bucket, version, requests, errors, error_rate, throughput_rps,
           q[1] AS p50, q[2] AS p95, q[3] AS p99,
           bucket >= min(first_ts) OVER ()
               AND bucket + to_microseconds(CAST(? * 1e6 AS BIGINT)) <= max(last_ts) OVER () AS complete
    FROM (
        SELECT time_bucket(to_microseconds(CAST(? * 1e6 AS BIGINT)), ts) AS bucket, version,
               count(*) AS requests, count(*) FILTER (WHERE NOT ok) AS errors,
               avg(CASE WHEN ok THEN 0 ELSE 1 END) AS error_rate,
               count(*) FILTER (WHERE ok) / ? AS throughput_rps,
               quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FILTER (WHERE ok) AS q,
               min(ts) AS first_ts, max(ts) AS last_ts
        FROM s GROUP BY ALL
    ) ORDER BY bucket, version
"""
"""Aggregated per bucket first; the run's first and last sample (``complete``) over buckets, not rows."""
LATENCIES = """
    SELECT version, unnest(min_by(latency_ms, hash(request_id), ?)) AS latency_ms
    FROM s WHERE ok GROUP BY version ORDER BY version
"""
"""The ``limit`` ok latencies of smallest request hash per version: a top-N aggregate, one pass, no sort."""
MISMATCHES = """
    SELECT n.ts, n.endpoint, o.status AS old_status, n.status AS new_status,
           o.body AS old_body, n.body AS new_body
    FROM (
        SELECT run_id, request_id, ts, endpoint, status, body FROM s
        WHERE version = 'new' AND NOT match ORDER BY (body IS NULL), ts LIMIT ?
    ) n JOIN s o ON o.request_id = n.request_id AND o.run_id = n.run_id AND o.version = 'old'
    ORDER BY (n.body IS NULL), n.ts
"""
"""The first mismatched new rows, then only their old rows: the join's build side is ``limit`` rows.
A request is named by run and id together: runs read as one (a run that continues another) may come
from gateways whose counters both started at 1."""


def _query(ws: Workspace, system: str, run_id: str, sql: str, params: list | None = None) -> pl.DataFrame:
    with run_queries(ws, system, run_id) as query:
        return query(sql, params) if query is not None else pl.DataFrame()


@dataclass(frozen=True)
class RunFrames:
    """What the Go/No-Go page draws from one run's samples (empty frames when it has none yet)."""

    summary: pl.DataFrame
    buckets: pl.DataFrame
    latencies: pl.DataFrame
    mismatches: pl.DataFrame


def evidence(ws: Workspace, system: str, run_id: RunIds, bucket_s: float) -> RunFrames:
    """:func:`summary`, :func:`bucket_stats`, :func:`latency_sample` and :func:`mismatch_examples` at once."""
    with run_queries(ws, system, run_id) as query:
        if query is None:
            return RunFrames(pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), pl.DataFrame())
        return RunFrames(
            summary=query(SUMMARY, None),
            buckets=query(BUCKETS, [bucket_s] * 3),
            latencies=query(LATENCIES, [LATENCY_SAMPLE]),
            mismatches=query(MISMATCHES, [MISMATCH_LIMIT]),
        )


def bucket_stats(ws: Workspace, system: str, run_id: str, bucket_s: float) -> pl.DataFrame:
    """Per bucket and version: requests, errors, error rate, throughput (ok/s), p50/p95/p99 latency.

    Buckets sit on the clock, so a run's first and last bucket are usually cut
    short and their throughput would read as a dip; ``complete`` says whether
    the run covered the whole bucket (the page draws throughput from complete
    buckets only).
    """
    return _query(ws, system, run_id, BUCKETS, [bucket_s] * 3)


def latency_sample(ws: Workspace, system: str, run_id: str, limit: int = LATENCY_SAMPLE) -> pl.DataFrame:
    """Latencies of ok requests, up to ``limit`` per version (a fixed pseudo-random pick by request)."""
    return _query(ws, system, run_id, LATENCIES, [limit])


def mismatch_examples(ws: Workspace, system: str, run_id: str, limit: int = MISMATCH_LIMIT) -> pl.DataFrame:
    """Requests whose new answer differed from old, with both bodies where the gateway kept them."""
    return _query(ws, system, run_id, MISMATCHES, [limit])


def summary(ws: Workspace, system: str, run_id: str) -> pl.DataFrame:
    """Per version: requests, error rate, p50/p95/p99 over the whole run, mismatch rate (new)."""
    return _query(ws, system, run_id, SUMMARY)
