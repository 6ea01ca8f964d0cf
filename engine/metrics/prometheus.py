"""Prometheus as a metrics source: PromQL range queries over the HTTP API, with the stdlib's urllib.

Every call has a timeout (the policy's ``[prometheus] timeout_s``) and a
failure (no answer, an HTTP error, a PromQL error) raises
:class:`MetricsSourceError` naming the URL and the query, so a verdict is
never made from half an answer. :func:`scrape_config` writes the part of a
``prometheus.yml`` that scrapes a workspace's served versions and gateway.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

import polars as pl

from engine.errors import SwitchyardError
from engine.metrics.config import PrometheusConfig, fill
from engine.metrics.source import BUCKET_SCHEMA, QUANTILES, empty_buckets, naive_utc

API_QUERY_RANGE = "/api/v1/query_range"
API_QUERY = "/api/v1/query"
MAX_POINTS = 11_000
"""Prometheus refuses a range query of more than 11,000 points per series."""


class MetricsSourceError(SwitchyardError):
    """A metrics source could not answer (unreachable, refused the query, or not configured)."""


def _seconds(value: float) -> str:
    """A PromQL duration in whole milliseconds (``60s``, ``1500ms``)."""
    ms = max(1, round(value * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


class PrometheusClient:
    """The two read endpoints of the Prometheus HTTP API."""

    def __init__(self, url: str, timeout_s: float):
        self.url, self.timeout_s = url.rstrip("/"), timeout_s

    def _get(self, path: str, params: dict[str, str]) -> Any:
        address = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout_s) as response:  # noqa: S310
                document = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # Prometheus says why in the body (bad_data, ...)
            try:
                detail = json.loads(exc.read()).get("error", exc.reason)
            except (ValueError, OSError):
                detail = exc.reason
            raise MetricsSourceError(
                f"Prometheus at {self.url} refused {params.get('query')!r}: {detail}"
            ) from exc
        except (OSError, ValueError) as exc:  # URLError, timeouts and broken JSON
            raise MetricsSourceError(f"Prometheus at {self.url} did not answer: {exc}") from exc
        if document.get("status") != "success":
            raise MetricsSourceError(f"Prometheus at {self.url}: {document.get('error', document)}")
        return document["data"]

    def query(self, promql: str, at: dt.datetime | None = None) -> list[dict[str, Any]]:
        """An instant query: the result list (``[{"metric": {...}, "value": [ts, "v"]}, ...]``)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        return self._get(API_QUERY, params)["result"]

    def query_range(
        self, promql: str, start: dt.datetime, end: dt.datetime, step_s: float
    ) -> list[dict[str, Any]]:
        """A range query: ``[{"metric": {...}, "values": [[ts, "v"], ...]}, ...]``."""
        data = self._get(
            API_QUERY_RANGE,
            {
                "query": promql,
                "start": f"{start.timestamp():.3f}",
                "end": f"{end.timestamp():.3f}",
                "step": f"{step_s:g}",
            },
        )
        if data.get("resultType") != "matrix":
            raise MetricsSourceError(
                f"Prometheus at {self.url}: a matrix expected, got {data.get('resultType')}"
            )
        return data["result"]


def _series_points(result: list[dict[str, Any]], combine: str) -> dict[float, float]:
    """One value per timestamp: rates of several series are summed, quantiles averaged; NaN dropped."""
    per_ts: dict[float, list[float]] = {}
    for series in result:
        for ts, text in series["values"]:
            value = float(text)
            if math.isfinite(value):
                per_ts.setdefault(float(ts), []).append(value)
    if combine == "sum":
        return {ts: sum(v) for ts, v in per_ts.items()}
    return {ts: sum(v) / len(v) for ts, v in per_ts.items()}


class PrometheusSource:
    """Old vs new per bucket from PromQL range queries (one point per bucket, at the bucket's end)."""

    name = "prometheus"

    def __init__(self, config: PrometheusConfig):
        if not config.url:
            raise MetricsSourceError(
                "no Prometheus configured: set url in the [prometheus] section of the policy file"
            )
        self.config = config
        self.client = PrometheusClient(config.url, config.timeout_s)

    def buckets(self, system: str, start: dt.datetime, end: dt.datetime, bucket_s: float) -> pl.DataFrame:
        start, end = _aware(start), _aware(end)
        count = math.floor((end - start).total_seconds() / bucket_s + 1e-9)
        if count < 1:
            return empty_buckets()
        if count > MAX_POINTS:
            raise MetricsSourceError(
                f"{count} buckets of {bucket_s:g} s is more than Prometheus returns in one query "
                f"({MAX_POINTS}); judge a shorter window or use longer buckets"
            )
        first = start + dt.timedelta(seconds=bucket_s)  # a point at t covers (t - bucket, t]
        last = start + dt.timedelta(seconds=bucket_s * count)
        window = _seconds(self.config.window_s(bucket_s))
        templates = self.config.queries_for(system)
        columns: dict[str, dict[str, dict[float, float]]] = {}
        for version in ("old", "new"):
            got: dict[str, dict[float, float]] = {}

            def ask(template: str, combine: str, _v: str = version, **extra: str) -> dict[float, float]:
                promql = fill(template, system=system, version=_v, window=window, **extra)
                return _series_points(self.client.query_range(promql, first, last, bucket_s), combine)

            got["requests"] = ask(templates["requests"], "sum")
            got["errors"] = ask(templates["errors"], "sum")
            for column, q in QUANTILES.items():
                got[column] = ask(templates["latency_ms"], "mean", quantile=f"{q:g}")
            if version == "new":
                for column in ("compared", "mismatches"):
                    if templates.get(column):
                        got[column] = ask(templates[column], "sum")
            columns[version] = got
        return _frame(columns, bucket_s, [first + dt.timedelta(seconds=bucket_s * i) for i in range(count)])

    def check(self) -> dict[str, Any]:
        """Prometheus's build info: a cheap way to see that the URL answers."""
        return self.client._get("/api/v1/status/buildinfo", {})


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _frame(
    columns: dict[str, dict[str, dict[float, float]]], bucket_s: float, ends: Iterable[dt.datetime]
) -> pl.DataFrame:
    """Rates times the bucket length become counts; a bucket with no requests of a version is left out."""
    rows = []
    for end in ends:
        ts = round(end.timestamp(), 3)
        bucket = naive_utc(end - dt.timedelta(seconds=bucket_s))
        for version, got in columns.items():
            rate = _at(got["requests"], ts)
            if rate is None or rate <= 0:
                continue
            row: dict[str, Any] = {"bucket": bucket, "version": version, "requests": rate * bucket_s}
            row["errors"] = (_at(got["errors"], ts) or 0.0) * bucket_s
            for column in QUANTILES:
                row[column] = _at(got[column], ts)
            for column in ("compared", "mismatches"):
                value = _at(got[column], ts) if column in got else None
                row[column] = None if value is None else value * bucket_s
            if version == "new" and "compared" in got and row["compared"] is None:
                row["compared"] = row["mismatches"] = None
            rows.append(row)
    if not rows:
        return empty_buckets()
    return pl.DataFrame(rows, schema=BUCKET_SCHEMA)


def _at(points: dict[float, float], ts: float) -> float | None:
    for key in (ts, round(ts)):
        if key in points:
            return points[key]
    return next((v for k, v in points.items() if abs(k - ts) < 1e-3), None)


def scrape_config(
    targets: dict[str, int], *, scrape_interval_s: float = 15.0, job: str = "switchyard"
) -> dict[str, Any]:
    """A ``prometheus.yml`` (as a dict) scraping ``/metrics`` of each ``label -> port`` on loopback."""
    return {
        "global": {
            "scrape_interval": _seconds(scrape_interval_s),
            "evaluation_interval": _seconds(scrape_interval_s),
        },
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"target": label}}
                    for label, port in sorted(targets.items())
                ],
            }
        ],
    }


def workspace_targets(ws: Any) -> dict[str, int]:
    """``{"<system>-<slot>": port, "gateway": port}`` for every live process of a workspace."""
    from engine.store import connect
    from engine.store import deployments as store

    with connect(ws.db_path) as con:
        procs = store.live_processes(con)
    return {
        (f"{p['system']}-{p['role']}" if p["system"] else p["role"]): int(p["port"])
        for p in procs.iter_rows(named=True)
    }
