"""Against a real Prometheus scraping the served versions: the Prometheus source agrees with the samples.

The system is deployed for real (blue on the RPC runtime, green on the port
runtime, the gateway in front), Prometheus scrapes each version's /metrics
and the gateway's every second, and a parallel run drives traffic. The same
window read through both MetricsSources must tell the same story.
"""

from __future__ import annotations

import polars as pl
import pytest

from engine import services
from engine.judging import run_window
from engine.metrics.config import PrometheusConfig
from engine.metrics.prometheus import PrometheusSource, workspace_targets
from engine.metrics.source import SamplesSource
from engine.store import connect
from engine.store import deployments as store
from tests.metrics.conftest import prometheus_query, wait_for

pytestmark = pytest.mark.prometheus
SYSTEM = "todo_api_system"
BUCKET_S = 5.0


def per_version(frame: pl.DataFrame) -> dict[str, dict[str, float]]:
    totals = frame.group_by("version").agg(
        pl.col("requests").sum(), pl.col("errors").sum(), pl.col("p50_ms").median(), pl.col("p95_ms").median()
    )
    return {r["version"]: r for r in totals.iter_rows(named=True)}


def test_prometheus_source_measures_what_the_samples_measure(ready_ws, prometheus, tmp_path) -> None:
    ws = ready_ws(SYSTEM)
    services.deploy(ws, SYSTEM, "blue_green", actor="lead", reason="prometheus test")
    targets = workspace_targets(ws)
    assert {f"{SYSTEM}-blue", f"{SYSTEM}-green", "gateway"} <= set(targets)
    url = prometheus(targets)
    wait_for(
        lambda: len(prometheus_query(url, 'up{job="switchyard"} == 1')) == len(targets),
        30,
        "every target to be scraped",
    )

    run = services.parallel_run(ws, SYSTEM, actor="lead", duration_s=20, bucket_s=BUCKET_S, rps=40)
    assert run.status == "completed"
    with connect(ws.db_path) as con:
        row = store.get_run(con, run.run_id)
    start, end = run_window(row, None)
    sent = run.summary["sent"]
    counted = f'sum(switchyard_requests_total{{system="{SYSTEM}",version="new"}})'
    wait_for(  # the last requests of the run have been scraped (smoke tests add a few more)
        lambda: float(prometheus_query(url, counted)[0]["value"][1]) >= sent,
        30,
        "the run's requests in Prometheus",
    )

    config = PrometheusConfig(url=url, scrape_interval_s=1, timeout_s=5)
    theirs = per_version(PrometheusSource(config).buckets(SYSTEM, start, end, BUCKET_S))
    ours = per_version(SamplesSource(ws, run.run_id).buckets(SYSTEM, start, end, BUCKET_S))
    for version in ("old", "new"):
        assert theirs[version]["requests"] == pytest.approx(ours[version]["requests"], rel=0.15)
        assert theirs[version]["errors"] == pytest.approx(
            ours[version]["errors"], abs=0.02 * ours[version]["requests"] + 1
        )
        # latency is timed inside the service there and at the gateway here (adding the hop): never more
        assert 0 < theirs[version]["p50_ms"] <= ours[version]["p50_ms"] * 1.15
    # ... and old vs new compare alike: both versions pay the same hop
    ratio_theirs = theirs["new"]["p50_ms"] / theirs["old"]["p50_ms"]
    ratio_ours = ours["new"]["p50_ms"] / ours["old"]["p50_ms"]
    assert ratio_theirs == pytest.approx(ratio_ours, abs=0.35)

    # the judge takes the Prometheus source where the policy configures one, and records it like any verdict
    policy = tmp_path / "policy.toml"
    policy.write_text(
        (services.DEFAULT_POLICY.read_text())
        + f'\n[prometheus]\nurl = "{url}"\nscrape_interval_s = 1\ntimeout_s = 5\n'
    )
    verdict = services.judge_from_source(ws, SYSTEM, actor="lead", source="prometheus", policy_path=policy)
    assert verdict.n_old == pytest.approx(sent, rel=0.15)
    mismatch = next(c for c in verdict.criteria if c.name == "mismatch_rate")
    assert mismatch.n_new > 0  # the gateway's mirror counters, scraped too
    judged = services.list_events(ws, system=SYSTEM, action="state:judged", limit=1).row(0, named=True)
    assert "source: prometheus" in judged["reason"] and judged["actor"] == "lead"
    with connect(ws.db_path) as con:
        stored = store.latest_verdict(con, SYSTEM)
    assert stored["result"]["source"]["name"] == "prometheus" and stored["verdict"] == verdict.verdict

    # the gateway's /metrics tells Prometheus the decision
    wait_for(
        lambda: bool(
            prometheus_query(url, f'switchyard_verdict{{system="{SYSTEM}",verdict="{verdict.verdict}"}} == 1')
        ),
        30,
        "the verdict on the gateway's /metrics",
    )
    states = prometheus_query(url, f'switchyard_state{{system="{SYSTEM}"}} == 1')
    assert [s["metric"]["state"] for s in states] == ["judged"]
