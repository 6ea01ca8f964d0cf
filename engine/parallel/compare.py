"""Old vs new from a run's samples, shaped for the Go/No-Go page: per bucket, distributions, mismatches.

Read from the run's aggregates (:mod:`engine.store.aggregates`): each sample
file's share of the figures, stored when the file was written for good, merged
here; files with no stored share yet (a running run's newest segments) are
aggregated from their raw rows on the fly. So a page reads a few thousand rows
of shares, never the run's millions of samples. The figures are the same as
the SQL over the raw rows (tests/store/test_sample_aggregates.py checks it): counts
and rates exactly, quantiles exactly for a finished run (one file), within
0.5 % (a version's) or as an ok-weighted mean of parts (a bucket a chunk
boundary cuts) while a run is still going or when several runs are read as one.

A run that continues earlier ones is read with them: functions take one run id
or several.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.store.aggregates import LATENCY_SAMPLE, MISMATCH_LIMIT, SKETCH_FLOOR_MS, SKETCH_GAMMA, run_parts
from engine.store.samples import RunIds
from engine.workspace import Workspace

QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def _ids(run_ids: RunIds) -> list[str]:
    return [run_ids] if isinstance(run_ids, str) else list(run_ids)


@dataclass(frozen=True)
class RunFrames:
    """What the Go/No-Go page draws from one run's samples (empty frames when it has none yet)."""

    summary: pl.DataFrame
    buckets: pl.DataFrame
    latencies: pl.DataFrame
    mismatches: pl.DataFrame


def evidence(ws: Workspace, system: str, run_ids: RunIds, bucket_s: float) -> RunFrames:
    """The run's four views from one read of its shares: per version (:func:`merge_summary`), per
    bucket (:func:`bucket_stats`), a latency sample (:func:`merge_latencies`) and mismatches
    (:func:`mismatch_examples`)."""
    parts = run_parts(ws, system, _ids(run_ids), bucket_s)
    if parts is None:
        return RunFrames(pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), pl.DataFrame())
    return RunFrames(
        summary=merge_summary(parts["versions"]),
        buckets=merge_buckets(parts["buckets"], bucket_s),
        latencies=merge_latencies(parts["latencies"]),
        mismatches=merge_mismatches(parts["mismatches"]),
    )


def bucket_stats(ws: Workspace, system: str, run_ids: RunIds, bucket_s: float) -> pl.DataFrame:
    """Per bucket and version: requests, errors, error rate, throughput (ok/s), p50/p95/p99 latency.

    Buckets sit on the clock, so a run's first and last bucket are usually cut
    short and their throughput would read as a dip; ``complete`` says whether
    the run covered the whole bucket (the page draws throughput from complete
    buckets only).
    """
    parts = run_parts(ws, system, _ids(run_ids), bucket_s, ("buckets",))
    return pl.DataFrame() if parts is None else merge_buckets(parts["buckets"], bucket_s)


def mismatch_examples(
    ws: Workspace, system: str, run_ids: RunIds, limit: int = MISMATCH_LIMIT
) -> pl.DataFrame:
    """Requests whose new answer differed from old, with both bodies where the gateway kept them."""
    parts = run_parts(ws, system, _ids(run_ids), None, ("mismatches",))
    return pl.DataFrame() if parts is None else merge_mismatches(parts["mismatches"], limit)


# --------------------------------------------------------------------------- merging shares


def _quantile(name: str) -> pl.Expr:
    """A bucket's quantile: its one part's, or the ok-weighted mean of its parts' (split by a chunk)."""
    value, weight = pl.col(name), pl.col("ok").filter(pl.col(name).is_not_null())
    mean = (value * pl.col("ok")).sum() / weight.sum()
    return pl.when(pl.len() == 1).then(value.first()).when(weight.sum() > 0).then(mean).alias(name)


def merge_buckets(parts: pl.DataFrame, bucket_s: float) -> pl.DataFrame:
    """Per bucket and version, from the files' shares (see :func:`bucket_stats`)."""
    width = dt.timedelta(microseconds=round(bucket_s * 1e6))
    counts = ("requests", "errors", "not_ok", "ok")
    merged = parts.group_by("bucket", "version").agg(
        *(pl.col(c).sum() for c in counts),
        *(_quantile(q) for q in QUANTILES),
        pl.col("first_ts").min(),
        pl.col("last_ts").max(),
    )
    return merged.select(
        "bucket",
        "version",
        "requests",
        "errors",
        (pl.col("not_ok") / pl.col("requests")).alias("error_rate"),
        (pl.col("ok") / bucket_s).alias("throughput_rps"),
        *QUANTILES,
        (
            (pl.col("bucket") >= pl.col("first_ts").min())
            & (pl.col("bucket") + width <= pl.col("last_ts").max())
        ).alias("complete"),
    ).sort("bucket", "version")


def merge_summary(parts: pl.DataFrame) -> pl.DataFrame:
    """Per version over the whole run: requests, error rate, p50/p95/p99 of ok latency, mismatch rate."""
    rows = []
    for (version,), group in parts.group_by("version"):
        if group.height == 1:  # one file: its exact quantiles
            quantiles = {q: group[q][0] for q in QUANTILES}
        else:
            quantiles = sketch_quantiles(group["sketch_bins"], group["sketch_counts"], QUANTILES)
        compared = int(group["compared"].sum())
        requests = int(group["requests"].sum())
        rows.append(
            {
                "version": version,
                "requests": requests,
                "error_rate": int(group["not_ok"].sum()) / requests if requests else None,
                **quantiles,
                "mismatch_rate": int(group["mismatches"].sum()) / compared if compared else None,
            }
        )
    schema = {"version": pl.String, "requests": pl.Int64, "error_rate": pl.Float64}
    schema |= {q: pl.Float64 for q in QUANTILES} | {"mismatch_rate": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort("version", descending=True)


def sketch_quantiles(
    bins: pl.Series, counts: pl.Series, quantiles: dict[str, float]
) -> dict[str, float | None]:
    """Quantiles of merged log-bucketed histograms, interpolated as ``quantile_cont`` interpolates.

    A bin ``i`` holds latencies in floor * (gamma^(i-1), gamma^i] and stands for
    floor * 2 gamma^i / (gamma + 1): every latency in it is within
    (gamma-1)/(gamma+1) = 0.5 % of that value (DDSketch's bound, as the run
    watcher's :class:`engine.judge.running.LatencySketch`), so each order
    statistic is too.
    """
    frame = (
        pl.DataFrame({"bin": bins, "n": counts})
        .explode("bin", "n")
        .drop_nulls()
        .group_by("bin")
        .agg(pl.col("n").sum())
        .sort("bin")
    )
    total = int(frame["n"].sum()) if frame.height else 0
    if total == 0:
        return dict.fromkeys(quantiles)
    ends = np.cumsum(frame["n"].to_numpy())  # rank (0-based) of each bin's last value is ends - 1
    values = SKETCH_FLOOR_MS * 2 * SKETCH_GAMMA ** frame["bin"].to_numpy().astype(float) / (SKETCH_GAMMA + 1)

    def order_statistic(rank: int) -> float:
        return float(values[np.searchsorted(ends, rank, side="right")])

    out: dict[str, float | None] = {}
    for name, q in quantiles.items():
        position = q * (total - 1)
        low, high = int(np.floor(position)), int(np.ceil(position))
        a, b = order_statistic(low), order_statistic(high)
        out[name] = a + (position - low) * (b - a)
    return out


def merge_latencies(parts: pl.DataFrame, limit: int = LATENCY_SAMPLE) -> pl.DataFrame:
    """The ``limit`` ok latencies of smallest request hash per version, over all the files."""
    return (
        parts.sort("version", "h")
        .group_by("version", maintain_order=True)
        .head(min(limit, LATENCY_SAMPLE))
        .select("version", "latency_ms")
    )


def merge_mismatches(parts: pl.DataFrame, limit: int = MISMATCH_LIMIT) -> pl.DataFrame:
    """The run's first ``limit`` mismatched requests (those with bodies first), with old's answer beside."""
    return (
        parts.sort("no_body", "ts")
        .head(min(limit, MISMATCH_LIMIT))
        .filter(pl.col("joined"))
        .select("ts", "endpoint", "old_status", "new_status", "old_body", "new_body")
    )
