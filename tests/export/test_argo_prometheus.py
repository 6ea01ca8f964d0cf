"""The exported analysis against a real Prometheus: the README's scrape job finds the pods, and every
exported query returns a number for them, so no analysis is inconclusive for want of a label.

Two versions of todo_api_system are served on loopback, standing for a
Rollout's stable and canary pods: each is a file-discovered target carrying
the metadata Kubernetes service discovery gives a pod (its annotations, its
labels with Argo's ``rollouts-pod-template-hash``, namespace and name), and an
``__address__`` on the wrong port, as a pod's first container port may be.
Prometheus runs the exported scrape job with file discovery in place of
Kubernetes discovery (which Debian's build lacks), at a 1 s scrape interval
so that a window is 4 s.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from engine.deploy.supervisor import free_port
from engine.export import argo
from engine.judge.policy import DEFAULT_POLICY, load_policy
from engine.parallel.smoke_requests import request_mix
from engine.workspace import SAMPLE_FLEET_DIR
from tests.metrics.conftest import prometheus, prometheus_query, wait_for  # noqa: F401 - the fixture too

pytestmark = pytest.mark.prometheus
SYSTEM = "todo_api_system"
HASHES = {"stable": "5b7c9d8f6", "canary": "6d4f8b9c7"}
RPS, TRAFFIC_S = 40, 8


@contextlib.contextmanager
def served(port: int) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.runtime.serve", "--system-dir", str(SAMPLE_FLEET_DIR / SYSTEM)]
        + ["--port", str(port)],
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: urllib.request.urlopen(f"{base}/health", timeout=1).status == 200, 30, "the system")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def drive(base: str, stop: threading.Event) -> None:
    """About RPS requests a second of the smoke mix until ``stop``."""
    with urllib.request.urlopen(f"{base}/endpoints", timeout=5) as reply:
        mix = request_mix(json.loads(reply.read())["endpoints"])
    i = 0
    start = time.monotonic()
    while not stop.is_set():
        endpoint, body = mix[i % len(mix)]
        request = urllib.request.Request(
            f"{base}/call/{endpoint}", data=body, headers={"content-type": "application/json"}
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=5).read()
        i += 1
        time.sleep(max(0.0, start + i / RPS - time.monotonic()))


def pod(address_port: int, scrape_port: int, side: str, scrape: str = "true") -> dict:
    """A file_sd target group with the labels Kubernetes pod discovery gives a Rollout's pod."""
    name = f"todo-api-system-{HASHES[side]}-x{side[:3]}"
    return {
        "targets": [f"127.0.0.1:{address_port}"],
        "labels": {
            "__meta_kubernetes_namespace": "shop",
            "__meta_kubernetes_pod_name": name,
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape": scrape,
            "__meta_kubernetes_pod_annotation_prometheus_io_port": str(scrape_port),
            "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
            "__meta_kubernetes_pod_label_app_kubernetes_io_name": "todo-api-system",
            "__meta_kubernetes_pod_label_rollouts_pod_template_hash": HASHES[side],
        },
    }


def test_the_exported_queries_measure_pods_found_by_the_exported_scrape_job(
    prometheus,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    policy_path = tmp_path / "policy.toml"
    policy_path.write_text(
        DEFAULT_POLICY.read_text().replace("scrape_interval_s = 60", "scrape_interval_s = 1")
    )
    policy = load_policy(policy_path)
    ports = {side: free_port() for side in HASHES}
    with served(ports["stable"]) as stable, served(ports["canary"]) as canary:
        targets = tmp_path / "pods.json"
        groups = [pod(1, ports[side], side) for side in HASHES]
        groups.append(pod(2, ports["stable"], "stable", scrape="false"))  # not annotated for scraping
        targets.write_text(json.dumps(groups))
        config = argo.scrape_config(policy)
        job = config["scrape_configs"][0]
        job.pop("kubernetes_sd_configs")
        job["file_sd_configs"] = [{"files": [str(targets)], "refresh_interval": "1s"}]
        url = prometheus(config=config)

        stop = threading.Event()
        drivers = [
            threading.Thread(target=drive, args=(base, stop), daemon=True) for base in (stable, canary)
        ]
        for driver in drivers:
            driver.start()
        try:
            wait_for(
                lambda: len(prometheus_query(url, 'up{job="switchyard-pods"} == 1')) == 2, 30, "both pods"
            )
            time.sleep(TRAFFIC_S)
            results = evaluate(url, policy)
        finally:
            stop.set()
            for driver in drivers:
                driver.join(timeout=10)

    found = prometheus_query(url, 'up{job="switchyard-pods"}')
    assert len(found) == 2  # the pod not annotated for scraping is dropped
    labels = {t["metric"][argo.HASH_LABEL]: t["metric"] for t in found}
    assert set(labels) == set(HASHES.values())
    for side, hash_ in HASHES.items():
        assert labels[hash_]["instance"] == f"127.0.0.1:{ports[side]}"  # the annotated port, not the first
        assert labels[hash_]["pod"].startswith("todo-api-system-") and labels[hash_]["namespace"] == "shop"

    for name, (value, _, _) in results.items():
        assert math.isfinite(value), (name, value)
    assert results["error-rate"][0] == 0 and results["error-rate"][1]
    assert results["error-rate-increase"][0] == 0 and results["error-rate-increase"][1]
    assert results["sample-size"][1], results["sample-size"]  # 40 requests a second fill a 4 s window
    assert 0.5 < results["throughput-ratio"][0] < 2  # one pod each side: the same share of requests
    # two alike versions on two busy cores: a 4 s latency ratio may well miss the rule's 1.1 (CI saw
    # 1.16), but it is a ratio of like with like, not of seconds to milliseconds
    for name in ("latency-p50-ratio", "latency-p95-ratio"):
        assert 0.2 < results[name][0] < 5, (name, results[name])


def evaluate(url: str, policy) -> dict[str, tuple[float, bool, bool]]:
    """Every canary metric's query, args filled in as Argo would: (value, success, failure)."""
    template = yaml.safe_load(argo.to_yaml([argo.analysis_template(SYSTEM, policy, "canary")]))
    args = {
        "{{args.canary-hash}}": HASHES["canary"],
        "{{args.stable-hash}}": HASHES["stable"],
        "{{args.baseline-offset}}": argo.LIVE_BASELINE_OFFSET,
    }
    results = {}
    for metric in template["spec"]["metrics"]:
        query = metric["provider"]["prometheus"]["query"]
        for placeholder, value in args.items():
            query = query.replace(placeholder, value)
        answer = prometheus_query(url, query)
        assert len(answer) == 1, (metric["name"], query, answer)  # one number: no data is never a pass
        value = float(answer[0]["value"][1])
        results[metric["name"]] = (
            value,
            holds(metric["successCondition"], value),
            holds(metric["failureCondition"], value),
        )
    return results


def holds(condition: str, value: float) -> bool:
    """An exported condition (``len(result) > 0 && result[0] <op> x``, or ``false``) for one value."""
    if condition == "false":
        return False
    op, threshold = re.fullmatch(r"len\(result\) > 0 && result\[0\] (<=|>=|<|>) (\S+)", condition).groups()
    return {
        "<=": value <= float(threshold),
        ">=": value >= float(threshold),
        "<": value < float(threshold),
        ">": value > float(threshold),
    }[op]
