"""The same migration on a Kubernetes cluster: an Argo Rollouts ``Rollout`` and its ``AnalysisTemplate``.

For one system and one policy this writes what a team would ``kubectl apply``
to move the system the way Switchyard moves it locally:

* **canary**: a ``setWeight`` step per policy ``canary_weights`` (as percent),
  each followed by ``pause: {duration: canary_step_s}`` and an ``analysis``
  step; the 100 % step pauses for the monitor window instead, the old
  version still running so an abort is instant;
* **blue_green**: ``activeService``/``previewService``, no automatic
  promotion (a lead promotes), ``prePromotionAnalysis`` on the preview and
  ``postPromotionAnalysis`` after the switch, the old version kept for the
  monitor window and the fast-rollback window (``scaleDownDelaySeconds``).

The ``AnalysisTemplate`` asks Prometheus (the served versions' own metrics,
:mod:`engine.metrics.service`) and encodes the policy in each metric's
conditions. Where the policy has both a rule (what GO needs) and a trigger
(what rolls back), ``successCondition`` is the rule and ``failureCondition``
the trigger, so a measurement between the two is *Inconclusive* and Argo
pauses for a person, as Switchyard's INCONCLUSIVE does. A metric with no
data satisfies neither condition: too little data never passes.

Field names follow the CRDs in argoproj/argo-rollouts
``pkg/apis/rollouts/v1alpha1/types.go`` and ``analysis_types.go``.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from engine.errors import InputError
from engine.judge.policy import Policy
from engine.metrics.service import DURATION, REQUESTS

API_VERSION = "argoproj.io/v1alpha1"
STRATEGIES = ("canary", "blue_green")
Strategy = Literal["canary", "blue_green"]
HASH_LABEL = "rollouts_pod_template_hash"
"""Prometheus's name for the ``rollouts-pod-template-hash`` pod label Argo puts on each version's pods
(the usual kubernetes_sd relabelling copies pod labels this way); it tells canary from stable."""
IN_CLUSTER_PROMETHEUS = "http://prometheus.monitoring.svc.cluster.local:9090"
DEFAULT_IMAGE = "registry.invalid/switchyard/{app}:new"
"""A placeholder that cannot be pulled: the team puts its own image of the converted system here."""
CONTAINER_PORT = 8080
MIN_INTERVAL_S = 30
"""Shortest measurement interval: ``rate()`` needs a few scrapes inside its window."""
ANSWERED, FAILED = ',code=~"2.."', ',code!~"2.."'
"""Extra label matchers: requests answered 2xx, and the others."""
LIVE_BASELINE_OFFSET = "1s"
"""The stable side's offset while it still serves traffic: PromQL refuses ``offset 0s``, and one
second is nothing beside a window of at least :data:`MIN_INTERVAL_S`."""


def k8s_name(system: str) -> str:
    """A DNS-1123 name for ``system`` (``todo_api_system`` -> ``todo-api-system``), at most 50 characters
    so that suffixes such as ``-preview`` and Argo's own hash suffixes still fit in 63."""
    name = re.sub(r"[^a-z0-9-]+", "-", system.lower()).strip("-")
    return name[:50].rstrip("-") or "system"


def _num(value: float) -> str:
    """A threshold as the condition shows it (``0.05``, ``1.1``, ``2``), float noise rounded away."""
    return f"{round(value, 9):g}"


@dataclass(frozen=True)
class MetricSpec:
    """One AnalysisTemplate metric: its query and what passes, what fails and how often it may fail."""

    name: str
    query: str
    success: str
    failure: str
    failure_limit: int
    role: str  # "rule" (what GO needs), "trigger" (what rolls back), "both", or "evidence"


@dataclass(frozen=True)
class Timing:
    """How often the analysis measures and over what window, from the policy."""

    interval_s: int
    count: int
    window: str

    @property
    def span_s(self) -> int:
        """From the start of an analysis to its last measurement (the first waits one window)."""
        return self.interval_s + (self.count - 1) * self.interval_s


def timing(policy: Policy, strategy: Strategy) -> Timing:
    """A measurement every policy bucket (the seed's "a metric every minute"), as many as fit the
    canary step (canary) or the monitor window (blue_green)."""
    interval = max(MIN_INTERVAL_S, math.ceil(policy.parallel_run.bucket_s))
    span = policy.deploy.canary_step_s if strategy == "canary" else policy.deploy.monitor_window_s
    return Timing(interval_s=interval, count=max(1, math.ceil(span / interval)), window=f"{interval}s")


# --------------------------------------------------------------------------- PromQL


def _selector(system: str, side: str, extra: str = "") -> str:
    arg = "canary-hash" if side == "canary" else "stable-hash"
    return f'system="{system}",{HASH_LABEL}="{{{{args.{arg}}}}}"{extra}'


def _offset(side: str) -> str:
    return " offset {{args.baseline-offset}}" if side == "stable" else ""


def _rate(metric: str, system: str, side: str, window: str, extra: str = "") -> str:
    return f"rate({metric}{{{_selector(system, side, extra)}}}[{window}]{_offset(side)})"


def error_rate_query(system: str, side: str, window: str) -> str:
    """Share of the side's requests not answered 2xx (0 when none failed, not "no data")."""
    failed = f"(sum({_rate(REQUESTS, system, side, window, FAILED)}) or vector(0))"
    return f"{failed} / sum({_rate(REQUESTS, system, side, window)})"


def latency_quantile_query(system: str, side: str, window: str, quantile: float) -> str:
    buckets = _rate(f"{DURATION}_bucket", system, side, window, ANSWERED)
    return f"histogram_quantile({_num(quantile)}, sum by (le) ({buckets}))"


def latency_ratio_query(system: str, window: str, quantile: float) -> str:
    """The canary's quantile over the stable's (1.1 = 10 % slower)."""
    return (
        f"{latency_quantile_query(system, 'canary', window, quantile)} / "
        f"{latency_quantile_query(system, 'stable', window, quantile)}"
    )


def throughput_ratio_query(system: str, window: str) -> str:
    """Ok answers per second *per pod*, canary over stable.

    A replica-weighted canary gives each pod an equal share of the traffic,
    so per pod is what compares like with like at every weight (the local
    gateway instead compares per unit of offered traffic).
    """

    def per_pod(side: str) -> str:
        ok = f"sum({_rate(REQUESTS, system, side, window, ANSWERED)})"
        pods = f"count(count by (pod) ({REQUESTS}{{{_selector(system, side)}}}{_offset(side)}))"
        return f"({ok} / {pods})"

    return f"{per_pod('canary')} / {per_pod('stable')}"


def sample_size_query(system: str, window: str) -> str:
    return f"sum(increase({REQUESTS}{{{_selector(system, 'canary')}}}[{window}]))"


# --------------------------------------------------------------------------- conditions


def _cond(op: str, value: float | str) -> str:
    """``result[0] <op> value``, false when the query returned nothing (so no data never passes)."""
    shown = value if isinstance(value, str) else _num(value)
    return f"len(result) > 0 && result[0] {op} {shown}"


def metric_specs(system: str, policy: Policy, strategy: Strategy) -> list[MetricSpec]:
    """The analysis metrics with the policy's thresholds in their conditions."""
    t = timing(policy, strategy)
    w = t.window
    rule, trig, stats = policy.rule, policy.triggers, policy.statistics
    # a rule is statistical: it may miss in (1 - confidence) of the windows by chance; a trigger may not.
    rule_limit = math.floor(t.count * (1 - stats.confidence_level))
    q = stats.latency_quantile
    specs = [
        MetricSpec(
            "error-rate",
            error_rate_query(system, "canary", w),
            _cond("<=", trig.max_error_rate),
            _cond(">", trig.max_error_rate),
            0,
            "trigger",
        ),
        MetricSpec(
            "error-rate-increase",
            f"({error_rate_query(system, 'canary', w)}) - ({error_rate_query(system, 'stable', w)})",
            _cond("<=", stats.max_error_rate_increase),
            _cond(">", stats.max_error_rate_increase),
            rule_limit,
            "rule",
        ),
    ]
    latency_limit = 1 + rule.max_latency_increase
    if round(q, 6) == 0.95:  # the rule's quantile is the trigger's: one metric, rule to pass, trigger to fail
        specs.append(
            MetricSpec(
                "latency-p95-ratio",
                latency_ratio_query(system, w, 0.95),
                _cond("<=", latency_limit),
                _cond(">", trig.max_p95_ratio),
                0,
                "both",
            )
        )
    else:
        specs += [
            MetricSpec(
                f"latency-p{round(q * 100)}-ratio",
                latency_ratio_query(system, w, q),
                _cond("<=", latency_limit),
                _cond(">", latency_limit),
                rule_limit,
                "rule",
            ),
            MetricSpec(
                "latency-p95-ratio",
                latency_ratio_query(system, w, 0.95),
                _cond("<=", trig.max_p95_ratio),
                _cond(">", trig.max_p95_ratio),
                0,
                "trigger",
            ),
        ]
    specs += [
        MetricSpec(
            "throughput-ratio",
            throughput_ratio_query(system, w),
            _cond(">=", 1 + rule.min_throughput_change),
            _cond("<", trig.min_throughput_ratio),
            0,
            "both",
        ),
        MetricSpec(
            "sample-size",
            sample_size_query(system, w),
            _cond(">=", math.ceil(stats.min_samples_per_version / t.count)),
            "false",  # too few requests is never a failure, only not yet a pass (Inconclusive)
            0,
            "evidence",
        ),
    ]
    return specs


# --------------------------------------------------------------------------- manifests


def policy_digest(policy: Policy) -> str:
    return hashlib.sha256(policy.model_dump_json().encode()).hexdigest()[:16]


def analysis_template(
    system: str, policy: Policy, strategy: Strategy, *, prometheus_address: str | None = None
) -> dict[str, Any]:
    """The ``AnalysisTemplate`` (apiVersion argoproj.io/v1alpha1) for ``system`` under ``policy``."""
    app = k8s_name(system)
    t = timing(policy, strategy)
    address = prometheus_address or IN_CLUSTER_PROMETHEUS
    metrics = []
    for spec in metric_specs(system, policy, strategy):
        metric: dict[str, Any] = {
            "name": spec.name,
            "initialDelay": t.window,
            "interval": f"{t.interval_s}s",
            "count": t.count,
            "successCondition": spec.success,
            "failureCondition": spec.failure,
            "failureLimit": spec.failure_limit,
            "provider": {
                "prometheus": {
                    "address": "{{args.prometheus-address}}",
                    "timeout": max(1, round(policy.prometheus.timeout_s)),
                    "query": spec.query,
                }
            },
        }
        metrics.append(metric)
    return {
        "apiVersion": API_VERSION,
        "kind": "AnalysisTemplate",
        "metadata": {
            "name": f"{app}-switchyard",
            "labels": _labels(app, system),
            "annotations": {
                "switchyard.io/strategy": strategy,
                "switchyard.io/policy-sha256": policy_digest(policy),
                "switchyard.io/metric-roles": ",".join(
                    f"{s.name}={s.role}" for s in metric_specs(system, policy, strategy)
                ),
                "switchyard.io/prometheus-labels": (
                    f"{REQUESTS} and {DURATION} from each pod's /metrics, with the pod labels "
                    f"rollouts-pod-template-hash as {HASH_LABEL} and the pod name as pod"
                ),
            },
        },
        "spec": {
            "args": [
                {"name": "canary-hash"},
                {"name": "stable-hash"},
                {"name": "baseline-offset", "value": LIVE_BASELINE_OFFSET},
                {"name": "prometheus-address", "value": address},
            ],
            "metrics": metrics,
        },
    }


def _labels(app: str, system: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/part-of": "switchyard",
        "switchyard.io/system": system,
    }


def _analysis(template: str, offset: str, dry_run: list[str] | None = None) -> dict[str, Any]:
    """A ``RolloutAnalysis``: the template, the two versions' pod hashes and the baseline's offset."""
    analysis: dict[str, Any] = {
        "templates": [{"templateName": template}],
        "args": [
            {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
            {"name": "stable-hash", "valueFrom": {"podTemplateHashValue": "Stable"}},
            {"name": "baseline-offset", "value": offset},
        ],
    }
    if dry_run:
        analysis["dryRun"] = [{"metricName": m} for m in dry_run]
    return analysis


def canary_steps(policy: Policy, template: str) -> list[dict[str, Any]]:
    """setWeight / pause / analysis per canary weight; the full-traffic step watches the monitor window.

    At 100 % the stable version serves nothing, so its baseline is read from
    before the step (``baseline-offset``), as the local monitor window
    compares against the old version's answers.
    """
    t = timing(policy, "canary")
    weights = [round(w * 100) for w in policy.deploy.canary_weights if w < 1.0] + [100]
    steps: list[dict[str, Any]] = []
    for weight in weights:
        full = weight == 100
        pause = round(policy.deploy.monitor_window_s if full else policy.deploy.canary_step_s)
        offset = f"{pause + t.span_s}s" if full else LIVE_BASELINE_OFFSET
        steps += [
            {"setWeight": weight},
            {"pause": {"duration": pause}},
            {"analysis": _analysis(template, offset)},
        ]
    return steps


def rollout(
    system: str,
    policy: Policy,
    strategy: Strategy,
    *,
    image: str | None = None,
    replicas: int = 4,
) -> dict[str, Any]:
    """The ``Rollout`` (apiVersion argoproj.io/v1alpha1) running ``system``'s new version by ``strategy``."""
    app = k8s_name(system)
    template = f"{app}-switchyard"
    t = timing(policy, strategy)
    if strategy == "canary":
        strategy_spec: dict[str, Any] = {
            "canary": {
                "stableService": f"{app}-stable",
                "canaryService": f"{app}-canary",
                "steps": canary_steps(policy, template),
            }
        }
    else:
        strategy_spec = {
            "blueGreen": {
                "activeService": f"{app}-active",
                "previewService": f"{app}-preview",
                "autoPromotionEnabled": False,
                # the old version stays through the monitor window and the fast-rollback window
                "scaleDownDelaySeconds": round(policy.deploy.monitor_window_s + policy.deploy.warm_window_s),
                # the preview has no share of production traffic: its throughput is recorded, not judged
                "prePromotionAnalysis": _analysis(
                    template, LIVE_BASELINE_OFFSET, dry_run=["throughput-ratio"]
                ),
                # after the switch the old version serves nothing: compare with it from before the switch
                "postPromotionAnalysis": _analysis(template, f"{t.span_s}s"),
            }
        }
    labels = _labels(app, system)
    return {
        "apiVersion": API_VERSION,
        "kind": "Rollout",
        "metadata": {
            "name": app,
            "labels": labels,
            "annotations": {"switchyard.io/policy-sha256": policy_digest(policy)},
        },
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(CONTAINER_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "containers": [
                        {
                            "name": app,
                            "image": image or DEFAULT_IMAGE.format(app=app),
                            "ports": [{"name": "http", "containerPort": CONTAINER_PORT}],
                            "readinessProbe": {
                                "httpGet": {"path": "/health", "port": "http"},
                                "periodSeconds": 5,
                                # the seed's trigger: more than N failed health checks
                                "failureThreshold": policy.triggers.max_failed_health_checks + 1,
                            },
                        }
                    ]
                },
            },
            "strategy": strategy_spec,
        },
    }


def services(system: str, strategy: Strategy) -> list[dict[str, Any]]:
    """The two Services the strategy switches between (Argo adds the pod-hash selector itself)."""
    app = k8s_name(system)
    roles = ("stable", "canary") if strategy == "canary" else ("active", "preview")
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{app}-{role}", "labels": _labels(app, system)},
            "spec": {
                "selector": {"app.kubernetes.io/name": app},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        }
        for role in roles
    ]


class _PlainDumper(yaml.SafeDumper):
    """Safe YAML without anchors: a shared dict is written out in full each time, as people write it."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def manifests(
    system: str,
    policy: Policy,
    strategy: str = "canary",
    *,
    image: str | None = None,
    prometheus_address: str | None = None,
    policy_name: str = "policy.toml",
) -> str:
    """AnalysisTemplate, Rollout and Services as one multi-document YAML string."""
    if strategy not in STRATEGIES:
        raise InputError("--strategy", "value", " | ".join(STRATEGIES), repr(strategy))
    chosen: Strategy = "canary" if strategy == "canary" else "blue_green"
    documents = [
        analysis_template(system, policy, chosen, prometheus_address=prometheus_address),
        rollout(system, policy, chosen, image=image),
        *services(system, chosen),
    ]
    header = (
        f"# Switchyard: {system} by {strategy} under {policy_name} (sha256 {policy_digest(policy)}).\n"
        "# Apply with: kubectl apply -f <this file>   (needs the Argo Rollouts controller and Prometheus)\n"
    )
    body = yaml.dump_all(
        documents, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False, width=4096
    )
    return header + body
