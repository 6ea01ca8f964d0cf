"""The MetricsSource seam: old vs new per time bucket, from wherever the measurements live.

The judge needs, per bucket and version, how many requests were answered,
how many failed, latency quantiles of the ok ones and, for new, how many
mirrored answers were compared and how many differed. Two sources give that
frame (:data:`BUCKET_SCHEMA`):

* :class:`SamplesSource`: the engine's own samples, one row per request
  (the Parquet segments the gateway writes), aggregated by DuckDB;
* :class:`engine.metrics.prometheus.PrometheusSource`: PromQL range queries
  against a Prometheus that scrapes the served versions.

A source that cannot measure something (Prometheus without the gateway's
mirror counters) leaves that column null, and the judge says "not measured"
instead of guessing.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

import polars as pl

from engine.store.samples import query_run
from engine.workspace import Workspace

BUCKET_SCHEMA: dict[str, pl.DataType] = {
    "bucket": pl.Datetime("us"),
    "version": pl.String(),
    "requests": pl.Float64(),
    "errors": pl.Float64(),
    "p50_ms": pl.Float64(),
    "p95_ms": pl.Float64(),
    "p99_ms": pl.Float64(),
    "compared": pl.Float64(),
    "mismatches": pl.Float64(),
}
"""One row per bucket (its start, naive UTC) and version (``old``/``new``).

``requests`` and ``errors`` count requests in the bucket (a Prometheus rate
times the bucket length need not be whole); quantiles are of ok requests'
latency in ms; ``compared``/``mismatches`` are on ``new`` rows only.
"""

QUANTILES = {"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99}


@runtime_checkable
class MetricsSource(Protocol):
    """Anything that can say how old and new behaved between two moments."""

    name: str

    def buckets(self, system: str, start: dt.datetime, end: dt.datetime, bucket_s: float) -> pl.DataFrame:
        """Per bucket of ``bucket_s`` seconds in ``[start, end)`` and version: :data:`BUCKET_SCHEMA`."""
        ...


def empty_buckets() -> pl.DataFrame:
    return pl.DataFrame(schema=BUCKET_SCHEMA)


def naive_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` as a naive UTC timestamp (naive input is taken to be UTC already)."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


class SamplesSource:
    """The samples of one run, as the gateway recorded them (the engine's own measurement)."""

    name = "samples"

    def __init__(self, ws: Workspace, run_id: str):
        self.ws, self.run_id = ws, run_id

    def buckets(self, system: str, start: dt.datetime, end: dt.datetime, bucket_s: float) -> pl.DataFrame:
        frame = query_run(
            self.ws,
            system,
            self.run_id,
            """
            SELECT time_bucket(to_microseconds(CAST(? * 1e6 AS BIGINT)), t, CAST(? AS TIMESTAMP)) AS bucket,
                   version,
                   CAST(count(*) AS DOUBLE) AS requests,
                   CAST(count(*) FILTER (WHERE NOT ok) AS DOUBLE) AS errors,
                   quantile_cont(latency_ms, 0.5) FILTER (WHERE ok) AS p50_ms,
                   quantile_cont(latency_ms, 0.95) FILTER (WHERE ok) AS p95_ms,
                   quantile_cont(latency_ms, 0.99) FILTER (WHERE ok) AS p99_ms,
                   CAST(count(match) AS DOUBLE) AS compared,
                   CAST(count(*) FILTER (WHERE match = false) AS DOUBLE) AS mismatches
            FROM (SELECT CAST(ts AT TIME ZONE 'UTC' AS TIMESTAMP) AS t, * EXCLUDE (ts) FROM s) AS w
            WHERE t >= ? AND t < ?
            GROUP BY ALL ORDER BY bucket, version
            """,
            [bucket_s, naive_utc(start), naive_utc(start), naive_utc(end)],
        )
        if frame is None or frame.is_empty():
            return empty_buckets()
        frame = frame.with_columns(
            pl.when(pl.col("version") == "new").then(pl.col(c)).otherwise(None).alias(c)
            for c in ("compared", "mismatches")
        )
        return frame.select(pl.col(c).cast(t) for c, t in BUCKET_SCHEMA.items())
