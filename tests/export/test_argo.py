"""Argo Rollouts export: thresholds round-trip from the policy, steps and weights, the service, CLI and page.

What makes the files work on a cluster (the CRD schemas, promtool, traffic
routing, the smoke Job, windows that fit the scrape interval) is in
test_argo_runtime.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from engine import access, cli, services
from engine.errors import InputError, NotFoundError
from engine.export.argo import manifests
from engine.judge.policy import DEFAULT_POLICY, load_policy
from tests.app.conftest import open_page

SYSTEM = "todo_api_system"

# Field names (json tags) of the CRD types in argoproj/argo-rollouts pkg/apis/rollouts/v1alpha1.
METRIC_FIELDS = {
    "name", "interval", "initialDelay", "count", "successCondition", "failureCondition", "failureLimit",
    "inconclusiveLimit", "consecutiveErrorLimit", "provider", "consecutiveSuccessLimit",
}  # fmt: skip
PROMETHEUS_FIELDS = {"address", "query", "authentication", "timeout", "insecure", "headers", "rangeQuery"}
ROLLOUT_ANALYSIS_FIELDS = {"templates", "args", "dryRun", "measurementRetention", "analysisRunMetadata"}
CANARY_STEP_FIELDS = {
    "setWeight", "pause", "experiment", "analysis", "setCanaryScale", "setHeaderRoute", "setMirrorRoute",
    "plugin",
}  # fmt: skip
BLUE_GREEN_FIELDS = {
    "activeService", "previewService", "previewReplicaCount", "autoPromotionEnabled", "autoPromotionSeconds",
    "maxUnavailable", "scaleDownDelaySeconds", "scaleDownDelayRevisionLimit", "prePromotionAnalysis",
    "antiAffinity", "postPromotionAnalysis", "previewMetadata", "activeMetadata",
    "abortScaleDownDelaySeconds",
}  # fmt: skip
CONDITION = re.compile(r"^len\(result\) > 0 && result\[0\] (<=|>=|<|>) (-?[0-9.e+-]+)$")


def documents(text: str) -> dict[str, dict]:
    """The Rollout and the traffic AnalysisTemplate of an export, checking the documents' order."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    kinds = [d["kind"] for d in docs]
    rollout_at = kinds.index("Rollout")
    assert set(kinds[:rollout_at]) == {"AnalysisTemplate"} and set(kinds[rollout_at + 1 :]) <= {
        "Service",
        "Ingress",
    }
    templates = [d for d in docs if d["kind"] == "AnalysisTemplate"]
    traffic = next(t for t in templates if t["metadata"]["name"].endswith("-switchyard"))
    return {"AnalysisTemplate": traffic, "Rollout": docs[rollout_at]}


def threshold(condition: str) -> tuple[str, float]:
    match = CONDITION.match(condition)
    assert match, condition
    return match[1], float(match[2])


def metrics_by_name(template: dict) -> dict[str, dict]:
    return {m["name"]: m for m in template["spec"]["metrics"]}


def check_analysis(analysis: dict, template_name: str) -> None:
    assert set(analysis) <= ROLLOUT_ANALYSIS_FIELDS
    assert analysis["templates"] == [{"templateName": template_name}]
    args = {a["name"]: a for a in analysis["args"]}
    assert args["canary-hash"]["valueFrom"] == {"podTemplateHashValue": "Latest"}
    assert args["stable-hash"]["valueFrom"] == {"podTemplateHashValue": "Stable"}


def test_canary_rollout_has_a_step_per_policy_weight_each_followed_by_its_analysis() -> None:
    policy = load_policy()
    docs = documents(manifests(SYSTEM, policy, "canary"))
    rollout, template = docs["Rollout"], docs["AnalysisTemplate"]
    assert rollout["apiVersion"] == template["apiVersion"] == "argoproj.io/v1alpha1"
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    for step in steps:
        assert len(step) == 1 and set(step) <= CANARY_STEP_FIELDS
    assert [list(s)[0] for s in steps] == ["setWeight", "analysis"] * len(policy.deploy.canary_weights)
    weights = [s["setWeight"] for s in steps if "setWeight" in s]
    assert weights == [round(w * 100) for w in policy.deploy.canary_weights]  # [5, 25, 50, 100]
    for analysis in (s["analysis"] for s in steps if "analysis" in s):
        check_analysis(analysis, template["metadata"]["name"])


def test_blue_green_rollout_waits_for_a_person_and_keeps_old_for_the_monitor_window() -> None:
    policy = load_policy()
    docs = documents(manifests(SYSTEM, policy, "blue_green"))
    blue_green = docs["Rollout"]["spec"]["strategy"]["blueGreen"]
    assert set(blue_green) <= BLUE_GREEN_FIELDS
    assert blue_green["autoPromotionEnabled"] is False
    assert blue_green["activeService"] == "todo-api-system-active"
    assert blue_green["previewService"] == "todo-api-system-preview"
    assert blue_green["scaleDownDelaySeconds"] >= policy.deploy.monitor_window_s + policy.deploy.warm_window_s
    check_analysis(blue_green["postPromotionAnalysis"], docs["AnalysisTemplate"]["metadata"]["name"])
    assert blue_green["prePromotionAnalysis"]["templates"] == [{"templateName": "todo-api-system-smoke"}]


def test_analysis_template_metrics_use_the_prometheus_provider_and_the_seed_thresholds() -> None:
    template = documents(manifests(SYSTEM, load_policy(), "canary"))["AnalysisTemplate"]
    metrics = metrics_by_name(template)
    assert set(metrics) == {
        "error-rate",
        "error-rate-increase",
        "latency-p50-ratio",
        "latency-p95-ratio",
        "throughput-ratio",
        "sample-size",
    }
    for metric in metrics.values():
        assert set(metric) <= METRIC_FIELDS
        prometheus = metric["provider"]["prometheus"]
        assert set(prometheus) <= PROMETHEUS_FIELDS
        assert f'system="{SYSTEM}"' in prometheus["query"]
        assert metric["interval"] == "240s" and metric["count"] >= 3 and metric["failureLimit"] >= 1
    # the seed: rule latency <= +10 %, throughput >= -5 %; triggers error > 5 %, p95 > 2x, throughput < 0.5x
    assert threshold(metrics["latency-p50-ratio"]["successCondition"]) == ("<=", 1.1)
    assert threshold(metrics["throughput-ratio"]["successCondition"]) == (">=", 0.95)
    assert threshold(metrics["throughput-ratio"]["failureCondition"]) == ("<", 0.5)
    assert threshold(metrics["error-rate"]["failureCondition"]) == (">", 0.05)
    assert threshold(metrics["latency-p95-ratio"]["failureCondition"]) == (">", 2.0)
    assert metrics["error-rate"]["failureLimit"] == 1  # a trigger aborts on its second window over it
    assert "histogram_quantile(0.95" in metrics["latency-p95-ratio"]["provider"]["prometheus"]["query"]
    assert "{{args.stable-hash}}" in metrics["latency-p50-ratio"]["provider"]["prometheus"]["query"]
    assert (
        metrics["sample-size"]["failureCondition"] == "false"
    )  # too few requests is Inconclusive, never Failed


def test_thresholds_round_trip_from_an_edited_policy(tmp_path: Path) -> None:
    text = DEFAULT_POLICY.read_text()
    edits = {
        "max_latency_increase = 0.10": "max_latency_increase = 0.25",
        "min_throughput_change = -0.05": "min_throughput_change = -0.2",
        "max_error_rate = 0.05": "max_error_rate = 0.07",
        "max_p95_ratio = 2.0": "max_p95_ratio = 3.5",
        "min_throughput_ratio = 0.5": "min_throughput_ratio = 0.3",
        "canary_weights = [0.05, 0.25, 0.5, 1.0]": "canary_weights = [0.1, 0.3, 1.0]",
        "canary_step_s = 60": "canary_step_s = 120",
        "max_failed_health_checks = 3": "max_failed_health_checks = 5",
    }
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "policy.toml"
    path.write_text(text)
    docs = documents(manifests(SYSTEM, load_policy(path), "canary"))
    metrics = metrics_by_name(docs["AnalysisTemplate"])
    assert threshold(metrics["latency-p50-ratio"]["successCondition"]) == ("<=", 1.25)
    assert threshold(metrics["throughput-ratio"]["successCondition"]) == (">=", 0.8)
    assert threshold(metrics["throughput-ratio"]["failureCondition"]) == ("<", 0.3)
    assert threshold(metrics["error-rate"]["failureCondition"]) == (">", 0.07)
    assert threshold(metrics["latency-p95-ratio"]["failureCondition"]) == (">", 3.5)
    spec = docs["Rollout"]["spec"]
    steps = spec["strategy"]["canary"]["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == [10, 30, 100]
    assert spec["template"]["spec"]["containers"][0]["readinessProbe"]["failureThreshold"] == 6


def test_rule_quantile_p95_becomes_one_metric_with_rule_and_trigger(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY.read_text().replace("latency_quantile = 0.5", "latency_quantile = 0.95"))
    metrics = metrics_by_name(documents(manifests(SYSTEM, load_policy(path), "canary"))["AnalysisTemplate"])
    assert "latency-p50-ratio" not in metrics
    p95 = metrics["latency-p95-ratio"]
    assert threshold(p95["successCondition"]) == ("<=", 1.1) and threshold(p95["failureCondition"]) == (
        ">",
        2.0,
    )


def test_unknown_strategy_traffic_or_replicas_is_bad_input() -> None:
    with pytest.raises(InputError, match="--strategy"):
        manifests(SYSTEM, load_policy(), "rolling")
    with pytest.raises(InputError, match="--traffic"):
        manifests(SYSTEM, load_policy(), "canary", traffic="istio")
    with pytest.raises(InputError, match="--replicas"):
        manifests(SYSTEM, load_policy(), "canary", replicas=0)


def test_service_is_a_read_viewers_may_call_and_records_nothing(sample_ws) -> None:
    access.write_roles(sample_ws, access.Roles(operators=["lead"], viewers=["visitor"]))
    before = services.list_events(sample_ws, limit=10_000).height
    text = services.argo_manifests(sample_ws, SYSTEM, "blue_green")
    assert "blueGreen" in text and text.startswith("# Switchyard: todo_api_system by blue_green")
    assert services.list_events(sample_ws, limit=10_000).height == before
    with pytest.raises(NotFoundError):
        services.argo_manifests(sample_ws, "no_such_system")
    with pytest.raises(InputError):
        services.argo_manifests(sample_ws, "../etc")


def test_cli_prints_writes_and_reports_json(sample_ws, tmp_path: Path, capsys) -> None:
    out = tmp_path / "todo.yaml"
    ws = ["--workspace", str(sample_ws.root)]
    assert cli.main([*ws, "export-argo", SYSTEM, "--strategy", "blue_green", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    documents(out.read_text())
    assert cli.main([*ws, "--json", "export-argo", SYSTEM, "--traffic", "nginx"]) == 0
    payload = yaml.safe_load(capsys.readouterr().out)  # JSON is YAML
    assert payload["strategy"] == "canary" and payload["traffic"] == "nginx" and "nginx:" in payload["yaml"]
    with pytest.raises(SystemExit) as refused:  # argparse's own choices: usage and exit status 2
        cli.main([*ws, "export-argo", SYSTEM, "--traffic", "istio"])
    assert refused.value.code == 2
    assert cli.main([*ws, "export-argo", "nope"]) == 2


def test_an_export_is_recorded_with_who_which_policy_and_where(sample_ws, tmp_path: Path) -> None:
    """The preview records nothing (above); the export (CLI, the page's download) is in the audit log,
    also for a viewer, whom it gives no power: it changes no state."""
    access.write_roles(sample_ws, access.Roles(operators=["lead"], viewers=["visitor"]))
    out = tmp_path / "todo.yaml"
    ws = ["--workspace", str(sample_ws.root)]
    assert cli.main([*ws, "export-argo", SYSTEM, "--actor", "visitor", "--out", str(out)]) == 0
    event = services.list_events(sample_ws, system=SYSTEM, action="export:argo").row(0, named=True)
    after = json.loads(event["after"])
    assert event["actor"] == "visitor" and after["strategy"] == "canary" and after["file"] == str(out)
    assert after["traffic"] == "replicas" and after["replicas"] == 4
    assert after["policy"] == "policy.toml" and f"sha256 {after['policy_sha256']}" in out.read_text()
    assert services.status(sample_ws, SYSTEM).state == "inventoried"


def test_go_no_go_page_shows_and_offers_the_manifests(sample_ws, monkeypatch) -> None:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    at = open_page("go_no_go.py", system=SYSTEM)
    assert "Run this on Kubernetes (Argo Rollouts)" in [e.label for e in at.expander]
    assert "setWeight: 5" in at.code[0].value
    assert "trafficRouting" not in at.code[0].value  # one Service over both versions by default
    at.radio(key="argo-traffic").set_value("smi").run()
    assert "rootService: todo-api-system" in at.code[0].value
    at.radio(key="argo-strategy").set_value("blue_green").run()
    assert not at.exception, at.exception
    assert "blueGreen:" in at.code[0].value and "trafficRouting" not in at.code[0].value
    assert at.radio(key="argo-traffic").disabled
    assert at.get("download_button")
