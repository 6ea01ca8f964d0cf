"""The pieces of the Prometheus seam without a Prometheus: text format, the HTTP client against a
stand-in on loopback, the bucket judge, the decisions snapshot and the two /metrics endpoints."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine import services
from engine.deploy.gateway import Gateway
from engine.deploy.http import Request
from engine.judge.aggregate import judge_buckets
from engine.judge.policy import load_policy
from engine.judge.verdict import judge_samples
from engine.metrics.config import DEFAULT_QUERIES, PrometheusConfig, fill
from engine.metrics.decisions import decisions_path, read_and_render, render_decisions, write_decisions
from engine.metrics.exposition import Counter, Histogram, render
from engine.metrics.prometheus import MetricsSourceError, PrometheusSource
from engine.metrics.source import BUCKET_SCHEMA


def test_text_format_counts_cumulative_buckets_and_escapes_labels() -> None:
    requests = Counter("x_total", "Calls.", ("system", "code"))
    requests.inc('we"ird\n', "200")
    requests.inc('we"ird\n', "200", amount=2)
    latency = Histogram("x_seconds", "Time.", ("system",), buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        latency.observe(value, "s")
    text = render([requests, latency])
    assert "# TYPE x_total counter" in text and "# TYPE x_seconds histogram" in text
    assert 'x_total{system="we\\"ird\\n",code="200"} 3' in text
    assert 'x_seconds_bucket{system="s",le="0.1"} 2' in text  # le is "less than or equal"
    assert 'x_seconds_bucket{system="s",le="1"} 3' in text
    assert 'x_seconds_bucket{system="s",le="+Inf"} 4' in text
    assert 'x_seconds_count{system="s"} 4' in text and 'x_seconds_sum{system="s"} 3.65' in text


def test_query_templates_keep_promql_braces_and_systems_override_the_defaults() -> None:
    config = PrometheusConfig(
        url="http://127.0.0.1:9090/",
        systems={"a": {"requests": 'sum(rate(h{app="a",v="{version}"}[{window}]))'}},
    )
    assert config.url == "http://127.0.0.1:9090"
    assert config.queries_for("a")["requests"].startswith("sum(rate(h{")
    assert config.queries_for("b")["requests"] == DEFAULT_QUERIES["requests"]
    filled = fill(DEFAULT_QUERIES["requests"], system="b", version="new", window="60s")
    assert filled == 'sum(rate(switchyard_requests_total{system="b",version="new"}[60s]))'
    with pytest.raises(ValueError):
        PrometheusConfig(url="file:///etc/passwd")


class StandIn(BaseHTTPRequestHandler):
    """Answers query_range like Prometheus: requests 10/s, errors 1/s, latency 2 ms; or stalls."""

    stall = False

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if StandIn.stall:
            time.sleep(3)
        from urllib.parse import parse_qs, urlsplit

        params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        query = params["query"]
        if "bad(" in query:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(json.dumps({"status": "error", "error": "parse error"}).encode())
            return
        start, end, step = float(params["start"]), float(params["end"]), float(params["step"])
        value = "1" if "code!~" in query else ("2" if "histogram_quantile" in query else "10")
        points = [[start + i * step, value] for i in range(int(round((end - start) / step)) + 1)]
        body = {
            "status": "success",
            "data": {"resultType": "matrix", "result": [{"metric": {}, "values": points}]},
        }
        self.send_response(200)
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    StandIn.stall = False
    server.shutdown()
    server.server_close()


def test_prometheus_source_turns_rates_into_bucket_counts(stand_in: str) -> None:
    start = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    frame = PrometheusSource(PrometheusConfig(url=stand_in)).buckets(
        "s", start, start + dt.timedelta(seconds=60), 10
    )
    assert frame.schema == pl.Schema(BUCKET_SCHEMA)
    assert frame.height == 12  # 6 buckets x 2 versions
    assert frame["bucket"].min() == start.replace(tzinfo=None)
    assert set(frame["requests"]) == {100.0} and set(frame["errors"]) == {10.0}
    assert set(frame["p95_ms"]) == {2.0}
    assert frame.filter(pl.col("version") == "new")["compared"].sum() == 600


def test_prometheus_errors_and_timeouts_are_clear(stand_in: str) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    bad = PrometheusConfig(url=stand_in, systems={"s": {"requests": "bad("}})
    with pytest.raises(MetricsSourceError, match="refused 'bad\\(': parse error"):
        PrometheusSource(bad).buckets("s", start, start + dt.timedelta(seconds=60), 10)
    StandIn.stall = True
    began = time.monotonic()
    with pytest.raises(MetricsSourceError, match="did not answer"):
        PrometheusSource(PrometheusConfig(url=stand_in, timeout_s=0.5)).buckets(
            "s", start, start + dt.timedelta(seconds=60), 10
        )
    assert time.monotonic() - began < 2.5
    with pytest.raises(MetricsSourceError, match="did not answer"):
        PrometheusSource(PrometheusConfig(url="http://127.0.0.1:9", timeout_s=1)).check()
    with pytest.raises(MetricsSourceError, match="no Prometheus configured"):
        PrometheusSource(PrometheusConfig())


def synthetic_samples(new_slowdown: float, n: int = 2000, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ts = [dt.datetime(2026, 1, 1) + dt.timedelta(milliseconds=30 * i) for i in range(n)]
    base = rng.lognormal(0.5, 0.2, n)
    return pl.DataFrame(
        {
            "ts": ts * 2,
            "version": ["old"] * n + ["new"] * n,
            "latency_ms": np.concatenate([base, base * new_slowdown * rng.lognormal(0, 0.02, n)]),
            "ok": [True] * (2 * n),
            "endpoint": ["e"] * (2 * n),
            "match": [None] * n + [True] * n,
        }
    )


def to_buckets(samples: pl.DataFrame, bucket_s: float) -> pl.DataFrame:
    return (
        samples.group_by(pl.col("ts").dt.truncate(f"{int(bucket_s)}s").alias("bucket"), "version")
        .agg(
            pl.len().cast(pl.Float64).alias("requests"),
            (~pl.col("ok")).sum().cast(pl.Float64).alias("errors"),
            pl.col("latency_ms").quantile(0.5).alias("p50_ms"),
            pl.col("latency_ms").quantile(0.95).alias("p95_ms"),
            pl.col("latency_ms").quantile(0.99).alias("p99_ms"),
            pl.col("match").count().cast(pl.Float64).alias("compared"),
            (pl.col("match") == False).sum().cast(pl.Float64).alias("mismatches"),  # noqa: E712
        )
        .with_columns(
            pl.when(pl.col("version") == "new").then(pl.col(c)).alias(c) for c in ("compared", "mismatches")
        )
        .select(list(BUCKET_SCHEMA))
    )


@pytest.mark.parametrize(("slowdown", "expected"), [(1.0, "GO"), (1.5, "NO_GO")])
def test_bucket_judge_agrees_with_the_sample_judge(slowdown: float, expected: str) -> None:
    policy = load_policy()
    samples = synthetic_samples(slowdown)
    by_samples = judge_samples(samples, policy, validation_success_rate=0.9, bucket_s=5)
    by_buckets = judge_buckets(to_buckets(samples, 5), policy, validation_success_rate=0.9)
    assert by_samples.verdict == by_buckets.verdict == expected
    assert [c.name for c in by_buckets.criteria] == [c.name for c in by_samples.criteria]
    assert [t.name for t in by_buckets.triggers] == [t.name for t in by_samples.triggers]


def test_bucket_judge_without_mismatch_counts_is_never_go() -> None:
    buckets = to_buckets(synthetic_samples(1.0), 5).with_columns(
        pl.lit(None, pl.Float64).alias("compared"), pl.lit(None, pl.Float64).alias("mismatches")
    )
    verdict = judge_buckets(buckets, load_policy(), validation_success_rate=0.9)
    assert verdict.verdict == "INCONCLUSIVE"
    assert any("not measured by this source" in r for r in verdict.reasons)


def test_decisions_snapshot_from_the_store_and_its_rendering(sample_ws) -> None:
    document = write_decisions(sample_ws)
    assert len(document["systems"]) == 52
    text = read_and_render(decisions_path(sample_ws))
    assert 'switchyard_state{system="todo_api_system",state="inventoried"} 1' in text
    assert 'switchyard_state{system="todo_api_system",state="done"} 0' in text
    rendered = render_decisions(
        {"systems": {"a": {"state": "judged", "verdict": "NO_GO", "triggers": {"error_rate": True}}}}
    )
    assert 'switchyard_verdict{system="a",verdict="NO_GO"} 1' in rendered
    assert 'switchyard_verdict{system="a",verdict="GO"} 0' in rendered
    assert 'switchyard_trigger_fired{system="a",trigger="error_rate"} 1' in rendered
    assert 'switchyard_trigger_fired{system="a",trigger="throughput_ratio"} 0' in rendered
    assert "# TYPE switchyard_state gauge" in read_and_render(Path("/nonexistent/decisions.json"))


def test_every_operator_use_case_refreshes_the_snapshot(sample_ws) -> None:
    """A hold or a conversion changes no route, yet a scrape right after it must show it."""
    write_decisions(sample_ws)
    services.hold(sample_ws, "todo_api_system", actor="lead", reason="data migration cannot be undone")
    text = read_and_render(decisions_path(sample_ws))
    assert 'switchyard_hold{system="todo_api_system"} 1' in text
    assert 'switchyard_hold{system="hello_world_api"} 0' in text
    services.release(sample_ws, "todo_api_system", actor="lead", reason="data verified")
    services.convert_systems(sample_ws, ["todo_api_system"], actor="lead")
    text = read_and_render(decisions_path(sample_ws))
    assert 'switchyard_hold{system="todo_api_system"} 0' in text
    assert 'switchyard_state{system="todo_api_system",state="converted"} 1' in text


def test_the_gateway_renders_the_snapshot_without_loading_the_store() -> None:
    """The gateway sits in front of every request and must never open DuckDB (one writer at a time)."""
    code = "import sys, engine.deploy.gateway; print('duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_gateway_serves_the_snapshot_and_its_own_counters(tmp_path: Path) -> None:
    (tmp_path / "decisions.json").write_text(
        json.dumps({"systems": {"a": {"state": "parallel_run", "verdict": None, "triggers": {}}}})
    )
    gateway = Gateway(tmp_path / "routes.json", tmp_path / "samples")
    gateway.count("a", "blue", True)
    gateway.count("a", "blue", False)
    response = asyncio.run(gateway.handle(Request("GET", "/metrics")))
    text = response.body.decode()
    assert response.status == 200 and response.content_type.startswith("text/plain")
    assert 'switchyard_state{system="a",state="parallel_run"} 1' in text
    assert 'switchyard_gateway_requests_total{system="a",slot="blue"} 2' in text
    assert 'switchyard_gateway_errors_total{system="a",slot="blue"} 1' in text


def asgi_call(app, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request straight into an ASGI app (no server, no client library)."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "root_path": "",
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_a_served_version_counts_its_calls_by_version_and_status(sample_ws) -> None:
    from engine.runtime.serve import legacy_app

    detail = services.system_detail(sample_ws, "hello_world_api")
    app = legacy_app(Path(detail.row["source_path"]))
    endpoint = next(iter(json.loads(asgi_call(app, "GET", "/endpoints")[1])["endpoints"]))
    asgi_call(app, "POST", f"/call/{endpoint}", b"{}")
    assert asgi_call(app, "POST", "/call/no_such_endpoint", b"not json")[0] == 400
    status, body = asgi_call(app, "GET", "/metrics")
    text = body.decode()
    assert status == 200
    assert f'switchyard_requests_total{{system="hello_world_api",version="old",endpoint="{endpoint}"' in text
    assert 'endpoint="other",code="400"} 1' in text  # unknown endpoints do not grow the label set
    assert (
        'switchyard_request_duration_seconds_count{system="hello_world_api",version="old",code="400"} 1'
        in text
    )
