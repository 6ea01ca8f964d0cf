"""The Argo Rollouts export works on a cluster, not only on paper (issue 18 point 3).

* every exported Rollout and AnalysisTemplate is valid against Argo's own CRD
  schemas (v1.9.1, vendored in tests/data/argo_rollouts), strictly: an unknown
  field is an error, as ``kubectl apply`` with field validation reports it;
  and the metric rules Argo's controller adds (utils/analysis/factory.go) hold;
* every PromQL query parses in ``promtool`` with its args filled in, and the
  scrape job the README gives passes ``promtool check config``;
* a canary gets its share of real traffic: one Service over both versions' pods
  (and the file says what share each weight really is), or Argo's nginx or SMI
  traffic routing, never a stable and a canary Service alone;
* blue/green smoke-tests the preview with a Job that sends its own requests
  (run here for real against a served system), and measures traffic after the
  switch, the old version kept until that analysis is done;
* windows and counts fit the scrape interval, with failure and inconclusive
  limits above 0, and the sample-size check still adds up to the policy's minimum.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from engine.export import argo
from engine.judge.policy import DEFAULT_POLICY, Policy, load_policy
from tests.runtime.test_serve import served  # noqa: F401 - a fixture: todo_api_system served on loopback

SYSTEM = "todo_api_system"
APP = "todo-api-system"
ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "tests" / "data" / "argo_rollouts"
EXPORTS = [("canary", "replicas"), ("canary", "nginx"), ("canary", "smi"), ("blue_green", "replicas")]
ARGS = {  # what Argo fills in at run time, for promtool
    "{{args.canary-hash}}": "6d4f8b9c7",
    "{{args.stable-hash}}": "5b7c9d8f6",
    "{{args.baseline-offset}}": "600s",
    "{{args.canary-weight}}": "25",
    "{{args.stable-weight}}": "75",
}


def policy_with(tmp_path: Path, **edits: str) -> Policy:
    text = DEFAULT_POLICY.read_text()
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return load_policy(path)


def export(strategy: str, traffic: str = "replicas", policy: Policy | None = None, **kw: Any) -> list[dict]:
    text = argo.manifests(SYSTEM, policy or load_policy(), strategy, traffic=traffic, **kw)
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[dict], name: str, kind: str) -> dict:
    return next(d for d in by_kind(docs, kind) if d["metadata"]["name"] == name)


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match[1])


# --------------------------------------------------------------------------- CRD schemas


def strict(schema: Any) -> Any:
    """The CRD schema, with unknown fields refused wherever it lists the known ones.

    The API server prunes unknown fields from a custom resource, and kubectl's
    field validation reports them; JSON Schema allows them unless told not to.
    """
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


@cache
def validators() -> dict[str, tuple[str, jsonschema.Draft202012Validator]]:
    """kind -> (apiVersion, validator), from the vendored CRDs."""
    found = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 0.6 s a file instead of 3.5 s
    for path in sorted(CRDS.glob("*-crd.yaml")):
        crd = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
        (version,) = crd["spec"]["versions"]
        schema = strict(version["schema"]["openAPIV3Schema"])
        api = f"{crd['spec']['group']}/{version['name']}"
        found[crd["spec"]["names"]["kind"]] = (api, jsonschema.Draft202012Validator(schema))
    assert set(found) == {"Rollout", "AnalysisTemplate"}
    return found


def schema_errors(document: dict) -> list[str]:
    api, validator = validators()[document["kind"]]
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]
    if document["apiVersion"] != api:
        errors.append(f"apiVersion {document['apiVersion']} is not the CRD's {api}")
    return errors


def test_the_vendored_crds_are_the_ones_the_readme_names() -> None:
    readme = (CRDS / "README.md").read_text(encoding="utf-8")
    for path in CRDS.glob("*-crd.yaml"):
        digest = __import__("hashlib").sha256(path.read_bytes()).hexdigest()
        assert path.name in readme and digest in readme, path.name
    assert "v1.9.1" in readme


def test_the_strict_schemas_refuse_what_the_api_server_would() -> None:
    """The check can fail: a misspelt field, a wrong type and a wrong apiVersion are each an error."""
    template = export("canary")[0]
    metric = template["spec"]["metrics"][0]
    assert not schema_errors(template)
    metric["failurelimit"] = 1  # misspelt
    assert any("failurelimit" in e for e in schema_errors(template))
    del metric["failurelimit"]
    metric["provider"]["prometheus"]["timeout"] = "ten"
    assert any("provider/prometheus/timeout" in e for e in schema_errors(template))
    metric["provider"]["prometheus"]["timeout"] = 10
    template["apiVersion"] = "argoproj.io/v1"
    assert schema_errors(template) == ["apiVersion argoproj.io/v1 is not the CRD's argoproj.io/v1alpha1"]


@pytest.mark.parametrize(("strategy", "traffic"), EXPORTS)
def test_every_exported_custom_resource_passes_the_crd_schema(strategy: str, traffic: str) -> None:
    docs = export(strategy, traffic)
    checked = [d for d in docs if d["kind"] in validators()]
    assert {d["kind"] for d in checked} == {"Rollout", "AnalysisTemplate"}
    for document in checked:
        assert not schema_errors(document), (document["kind"], schema_errors(document))


def argo_metric_problems(metric: dict) -> list[str]:
    """The rules of Argo's ValidateMetric (utils/analysis/factory.go, v1.9.1) that a schema cannot say."""
    count = int(metric.get("count", 0))
    failure_limit = int(metric.get("failureLimit", 0))
    inconclusive_limit = int(metric.get("inconclusiveLimit", 0))
    problems = []
    if failure_limit < -1 or inconclusive_limit < 0:
        problems.append("negative limit")
    if count > 0 and (count < failure_limit or count < inconclusive_limit):
        problems.append("count below a limit")
    if count > 1 and not metric.get("interval"):
        problems.append("interval must be specified when count > 1")
    if len(metric["provider"]) != 1:
        problems.append("exactly one provider")
    return problems


@pytest.mark.parametrize(("strategy", "traffic"), EXPORTS)
def test_every_metric_passes_argos_own_checks(strategy: str, traffic: str) -> None:
    for template in by_kind(export(strategy, traffic), "AnalysisTemplate"):
        for metric in template["spec"]["metrics"]:
            assert not argo_metric_problems(metric), (metric["name"], argo_metric_problems(metric))


# --------------------------------------------------------------------------- promtool


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:  # not skipped: .ci/run (the README's test command) installs it
        pytest.fail("promtool is missing: apt-get install -y prometheus (.ci/run does)")
    return found


def test_every_query_parses_in_promtool_once_the_args_are_filled_in(tmp_path: Path) -> None:
    rules = []
    for strategy, traffic in EXPORTS:
        for template in by_kind(export(strategy, traffic), "AnalysisTemplate"):
            for metric in template["spec"]["metrics"]:
                if "prometheus" not in metric["provider"]:
                    continue
                query = metric["provider"]["prometheus"]["query"]
                for placeholder, value in ARGS.items():
                    query = query.replace(placeholder, value)
                assert "{{" not in query, query  # every arg a query uses is one Argo fills in
                name = f"switchyard:{metric['name'].replace('-', '_')}:{strategy}_{traffic}"
                rules.append({"record": name, "expr": query})
    assert len(rules) >= 4 * 6
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "switchyard", "rules": rules}]}))
    checked = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_scrape_job_the_readme_gives_passes_promtool(tmp_path: Path) -> None:
    """Debian's Prometheus is built without Kubernetes service discovery, so promtool checks the job with
    a static target in its place (the relabelling, interval and names); test_argo_prometheus.py runs it."""
    config = {"global": {"scrape_interval": "1m"}} | argo.scrape_config(load_policy())
    job = config["scrape_configs"][0]
    assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
    job["static_configs"] = [{"targets": ["10.0.0.7:8080"]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    checked = subprocess.run(
        [promtool(), "check", "config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"```yaml\n(scrape_configs:.+?)```", readme, re.S)
    assert shown, "the README's On Kubernetes section shows the scrape job"
    assert yaml.safe_load(shown[1]) == argo.scrape_config(load_policy())
    assert {"regex": "__meta_kubernetes_pod_label_(.+)", "action": "labelmap"} in job["relabel_configs"]
    assert argo.HASH_LABEL == "rollouts-pod-template-hash".replace("-", "_")  # what that labelmap makes of it


# --------------------------------------------------------------------------- canary traffic


def test_canary_without_a_router_puts_one_service_over_both_versions() -> None:
    docs = export("canary", "replicas")
    canary = by_kind(docs, "Rollout")[0]["spec"]["strategy"]["canary"]
    # stable and canary Services without trafficRouting would each see one version only
    assert not {"canaryService", "stableService", "trafficRouting"} & set(canary)
    (service,) = by_kind(docs, "Service")
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": APP}  # every pod of both versions
    pods = by_kind(docs, "Rollout")[0]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pods.items()


# Argo's own expectations for its basic canary (utils/replicaset/canary_test.go, v1.9.1,
# TestApproximateWeightedNewStableReplicaCounts): replicas, weight, max surge -> canary pods, stable pods
ARGO_SHARES = [
    (1, 0, 0, 0, 1), (1, 1, 0, 0, 1), (1, 49, 0, 0, 1), (1, 50, 0, 1, 0), (1, 99, 0, 1, 0), (1, 100, 0, 1, 0),
    (1, 0, 1, 0, 1), (1, 1, 1, 1, 1), (1, 49, 1, 1, 1), (1, 50, 1, 1, 1), (1, 99, 1, 1, 1), (1, 100, 1, 1, 0),
    (2, 0, 0, 0, 2), (2, 1, 0, 1, 1), (2, 50, 0, 1, 1), (2, 99, 0, 1, 1), (2, 100, 0, 2, 0),
    (2, 0, 1, 0, 2), (2, 1, 1, 1, 2), (2, 50, 1, 1, 1), (2, 99, 1, 2, 1), (2, 100, 1, 2, 0),
    (3, 10, 0, 1, 2), (3, 25, 0, 1, 2), (3, 33, 0, 1, 2), (3, 34, 0, 1, 2), (3, 49, 0, 1, 2),
    (3, 50, 0, 2, 1), (3, 10, 1, 1, 3), (3, 25, 1, 1, 3), (3, 33, 1, 1, 2), (3, 34, 1, 1, 2),
    (3, 49, 1, 2, 2), (3, 50, 1, 2, 2),
    (10, 0, 1, 0, 10), (10, 1, 0, 1, 9), (10, 14, 0, 1, 9), (10, 15, 0, 2, 8), (10, 16, 0, 2, 8),
    (10, 99, 0, 9, 1), (10, 100, 1, 10, 0), (10, 1, 1, 1, 10), (10, 18, 1, 2, 9), (10, 19, 1, 2, 9),
    (10, 20, 1, 2, 8), (10, 23, 1, 2, 8), (10, 24, 1, 3, 8), (10, 25, 1, 3, 8), (10, 99, 1, 10, 1),
]  # fmt: skip


@pytest.mark.parametrize(("replicas", "weight", "surge", "canary", "stable"), ARGO_SHARES)
def test_pod_shares_are_what_argo_runs(
    replicas: int, weight: int, surge: int, canary: int, stable: int
) -> None:
    assert argo.canary_share(replicas, weight, surge) == (canary, canary + stable)


def test_the_file_says_what_share_each_weight_really_gets() -> None:
    text = argo.manifests(SYSTEM, load_policy(), "canary")
    header = " ".join(line[1:].strip() for line in text.splitlines() if line.startswith("#"))
    assert "over the pods of both versions, so a weight is a pod count" in header
    assert max(len(line) for line in text.splitlines() if line.startswith("#")) <= 100  # readable as is
    # 4 replicas, 25 % surge (1 pod): 5 % is 1 new pod of 5, the closest Argo can get
    assert "#   setWeight 5: 1 of 5 pods run the new version, about 20 % of requests" in text
    assert "#   setWeight 50: 2 of 4 pods run the new version, about 50 % of requests" in text
    rollout = by_kind(export("canary"), "Rollout")[0]
    assert rollout["spec"]["strategy"]["canary"]["maxSurge"] == argo.MAX_SURGE  # what the shares assume
    text = argo.manifests(SYSTEM, load_policy(), "canary", replicas=20)
    assert "#   setWeight 5: 1 of 20 pods run the new version, about 5 % of requests" in text


def test_canary_with_nginx_routes_through_the_exported_ingress() -> None:
    docs = export("canary", "nginx")
    canary = by_kind(docs, "Rollout")[0]["spec"]["strategy"]["canary"]
    ingress = named(docs, canary["trafficRouting"]["nginx"]["stableIngress"], "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    backends = [p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
    assert backends == [canary["stableService"]]  # Argo checks the stable Ingress points at stableService
    for service in (canary["stableService"], canary["canaryService"]):
        assert named(docs, service, "Service")["spec"]["selector"] == {"app.kubernetes.io/name": APP}


def test_canary_with_smi_splits_behind_a_root_service_over_both_versions() -> None:
    docs = export("canary", "smi")
    canary = by_kind(docs, "Rollout")[0]["spec"]["strategy"]["canary"]
    root = named(docs, canary["trafficRouting"]["smi"]["rootService"], "Service")
    assert root["spec"]["selector"] == {"app.kubernetes.io/name": APP}  # Argo leaves the root's selector be
    for service in (canary["stableService"], canary["canaryService"]):
        assert named(docs, service, "Service")
    assert len({root["metadata"]["name"], canary["stableService"], canary["canaryService"]}) == 3


@pytest.mark.parametrize("traffic", ["nginx", "smi"])
def test_behind_a_router_each_analysis_knows_both_sides_weights(traffic: str) -> None:
    policy = load_policy()
    steps = by_kind(export("canary", traffic), "Rollout")[0]["spec"]["strategy"]["canary"]["steps"]
    weights = [s["setWeight"] for s in steps if "setWeight" in s]
    analyses = [{a["name"]: a.get("value") for a in s["analysis"]["args"]} for s in steps if "analysis" in s]
    for weight, args, before in zip(weights, analyses, [0, *weights], strict=False):
        assert int(args["canary-weight"]) == weight
        if weight < 100:  # stable serves the rest now
            assert int(args["stable-weight"]) == 100 - weight and args["baseline-offset"] == "1s"
        else:  # stable serves nothing: read it from the step before, when it had the rest of that step's
            assert int(args["stable-weight"]) == 100 - before and before == round(
                policy.deploy.canary_weights[-2] * 100
            )
    template = by_kind(export("canary", traffic), "AnalysisTemplate")[0]
    throughput = next(m for m in template["spec"]["metrics"] if m["name"] == "throughput-ratio")
    query = throughput["provider"]["prometheus"]["query"]
    assert (
        "{{args.canary-weight}}" in query
        and "{{args.stable-weight}}" in query
        and "count by (pod)" not in query
    )


# --------------------------------------------------------------------------- blue/green


def test_blue_green_smoke_tests_the_preview_before_and_measures_the_active_after() -> None:
    docs = export("blue_green")
    blue_green = by_kind(docs, "Rollout")[0]["spec"]["strategy"]["blueGreen"]
    pre = named(docs, blue_green["prePromotionAnalysis"]["templates"][0]["templateName"], "AnalysisTemplate")
    post = named(
        docs, blue_green["postPromotionAnalysis"]["templates"][0]["templateName"], "AnalysisTemplate"
    )
    # before: no Prometheus metric (the preview has no production traffic), a Job sending requests
    assert [list(m["provider"]) for m in pre["spec"]["metrics"]] == [["job"]]
    args = {a["name"]: a["value"] for a in blue_green["prePromotionAnalysis"]["args"]}
    assert args["preview-url"] == f"http://{blue_green['previewService']}"
    job = pre["spec"]["metrics"][0]["provider"]["job"]["spec"]
    (container,) = job["template"]["spec"]["containers"]
    assert container["args"][0] == "{{args.preview-url}}" and job["backoffLimit"] == 0
    shipped = (ROOT / "engine" / "parallel" / "smoke_requests.py").read_text(encoding="utf-8")
    assert container["command"] == ["python3", "-c", shipped]  # the file itself, as a readable block:
    assert "- |\n" in argo.manifests(SYSTEM, load_policy(), "blue_green")
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    # after: the traffic metrics, new (Latest, now active) against old (still Stable) from before the switch
    assert {"prometheus"} == {p for m in post["spec"]["metrics"] for p in m["provider"]}
    t = argo.timing(load_policy(), "blue_green")
    offset = {a["name"]: a.get("value") for a in blue_green["postPromotionAnalysis"]["args"]}[
        "baseline-offset"
    ]
    assert seconds(offset) >= t.span_s + t.scrape_s  # every baseline window ends before the switch
    # Argo cancels a post-promotion analysis when it scales the old version down: not before it is done
    assert blue_green["scaleDownDelaySeconds"] > t.span_s


def job_command(docs: list[dict], url: str) -> list[str]:
    pre = next(d for d in by_kind(docs, "AnalysisTemplate") if d["metadata"]["name"].endswith("-smoke"))
    (container,) = pre["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["python3", "-c"]
    return [
        sys.executable,
        "-I",
        *container["command"][1:],
        *[a.replace("{{args.preview-url}}", url) for a in container["args"]],
    ]


def test_the_smoke_job_passes_a_served_system_and_fails_a_broken_one(served) -> None:  # noqa: F811
    """The Job's very command, run here in an isolated interpreter (-I: no engine on the path)."""
    base, _ = served
    command = job_command(export("blue_green"), base)
    ok = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    good = int(re.search(r": (\d+) requests answered with 200 and JSON, 0 problems", ok.stdout)[1])
    assert good >= 3  # three variants of each entry endpoint
    # a version whose endpoints answer errors, and one that does not answer at all
    broken = subprocess.run(
        job_command(export("blue_green"), f"{base}/nowhere"), capture_output=True, text=True, timeout=120
    )
    assert broken.returncode == 1 and "problem:" in broken.stderr
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    down = subprocess.run(
        job_command(export("blue_green"), closed), capture_output=True, text=True, timeout=120
    )
    assert down.returncode == 1 and "no usable answer" in down.stderr


# --------------------------------------------------------------------------- windows, counts, limits


@pytest.mark.parametrize("scrape_s", [15, 60, 120])
@pytest.mark.parametrize(("strategy", "traffic"), EXPORTS)
def test_windows_counts_and_limits_fit_the_scrape_interval(
    tmp_path: Path, scrape_s: int, strategy: str, traffic: str
) -> None:
    policy = policy_with(tmp_path, **{"scrape_interval_s = 60": f"scrape_interval_s = {scrape_s}"})
    docs = export(strategy, traffic, policy)
    template = next(
        d for d in by_kind(docs, "AnalysisTemplate") if d["metadata"]["name"].endswith("-switchyard")
    )
    for metric in template["spec"]["metrics"]:
        window = seconds(re.search(r"\[(\d+s)\]", metric["provider"]["prometheus"]["query"])[1])
        assert window >= 4 * scrape_s  # a rate over at least four scrapes
        assert seconds(metric["interval"]) >= window  # windows do not overlap: each measures new requests
        assert seconds(metric["initialDelay"]) >= window + scrape_s  # the first sees only this step's traffic
        assert metric["count"] >= 3
        assert 1 <= metric["failureLimit"] < metric["count"]  # one blip tolerated, and failing stays possible
        assert 1 <= metric["inconclusiveLimit"] < metric["count"]
        assert metric["failureLimit"] + metric["inconclusiveLimit"] < metric["count"]
        assert metric["consecutiveErrorLimit"] if "consecutiveErrorLimit" in metric else True
    # the analysis covers the time the policy holds a step (a canary weight, or the monitor window)
    hold = policy.deploy.monitor_window_s
    if strategy == "canary":
        hold = max(hold, policy.deploy.canary_step_s)
    metric = template["spec"]["metrics"][0]
    assert (metric["count"] - 1) * seconds(metric["interval"]) + seconds(metric["initialDelay"]) >= hold


def test_the_default_scrape_interval_is_prometheus_own_one_minute() -> None:
    assert Policy().kubernetes.scrape_interval_s == load_policy().kubernetes.scrape_interval_s == 60
    template = export("canary")[0]
    assert {m["interval"] for m in template["spec"]["metrics"]} == {"240s"}


@pytest.mark.parametrize("min_samples", [200, 1000, 7])
def test_the_sample_size_check_still_adds_up_to_the_policys_minimum(tmp_path: Path, min_samples: int) -> None:
    policy = policy_with(
        tmp_path, **{"min_samples_per_version = 200": f"min_samples_per_version = {min_samples}"}
    )
    for strategy, traffic in EXPORTS:
        template = export(strategy, traffic, policy)[0]
        metric = next(m for m in template["spec"]["metrics"] if m["name"] == "sample-size")
        per_window = float(
            re.fullmatch(r"len\(result\) > 0 && result\[0\] >= (\d+)", metric["successCondition"])[1]
        )
        passing = metric["count"] - metric["inconclusiveLimit"]  # fewest windows that can pass the analysis
        assert per_window * passing >= min_samples
        assert metric["failureCondition"] == "false"  # too few is never a failure, only not yet a pass
        assert "increase(switchyard_requests_total" in metric["provider"]["prometheus"]["query"]


def test_at_full_weight_the_baseline_is_read_from_the_step_before() -> None:
    """The stable version serves nothing at 100 %: each measurement's baseline window must end before
    the step began and lie inside the step before it (every step is measured alike for that)."""
    t = argo.timing(load_policy(), "canary")
    steps = by_kind(export("canary"), "Rollout")[0]["spec"]["strategy"]["canary"]["steps"]
    last = [s["analysis"] for s in steps if "analysis" in s][-1]
    offset = seconds({a["name"]: a.get("value") for a in last["args"]}["baseline-offset"])
    for k in range(t.count):  # the k-th measurement, at delay + k windows into the step
        end = t.delay_s + k * t.interval_s - offset  # its baseline window's end, relative to the step's start
        assert end <= -t.scrape_s
        assert end - t.window_s >= -t.span_s  # no earlier than the previous step's first window
    assert math.isclose(offset, t.span_s + t.scrape_s)
