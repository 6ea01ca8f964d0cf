"""The AnalysisTemplates of the Argo Rollouts export (:mod:`engine.export.argo`): what is measured, how
often, and what passes, fails or stays inconclusive.

The traffic ``AnalysisTemplate`` asks Prometheus (the served versions' own
metrics, :mod:`engine.metrics.service`) and encodes the policy in each
metric's conditions. Where the policy has both a rule (what GO needs) and a
trigger (what rolls back), ``successCondition`` is the rule and
``failureCondition`` the trigger, so a measurement between the two is
*Inconclusive*, as is one without data: too little data never passes. A
measurement is a rate over four scrapes of the cluster's Prometheus
(``[kubernetes] scrape_interval_s``, default 60 s as Prometheus's own), one
window after another, at least :data:`MIN_MEASUREMENTS` of them per step, with
one failed window tolerated before the error-rate trigger aborts (``breach_checks - 1``
before the latency and throughput triggers do, as Switchyard's own watch) and one inconclusive window
before the rollout pauses for a person (:class:`Timing`).

The blue/green pre-promotion template is a smoke test instead: a Job that
runs :mod:`engine.parallel.smoke_requests` against the preview Service.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.judge.policy import Policy
from engine.metrics.service import DURATION, REQUESTS
from engine.parallel import smoke_requests

API_VERSION = "argoproj.io/v1alpha1"
Strategy = Literal["canary", "blue_green"]
Traffic = Literal["replicas", "nginx", "smi"]
HASH_LABEL = "rollouts_pod_template_hash"
"""Prometheus's name for the ``rollouts-pod-template-hash`` pod label Argo puts on each version's pods
(:func:`engine.export.argo.scrape_config` maps pod labels this way); it tells canary from stable."""
IN_CLUSTER_PROMETHEUS = "http://prometheus.monitoring.svc.cluster.local:9090"
SMOKE_IMAGE = "python:3.12-slim"
"""The smoke Job's image: any Python 3 runs :mod:`engine.parallel.smoke_requests` (standard library only)."""
WINDOW_SCRAPES = 4
"""A rate window spans four scrapes, so a missed scrape or a restarted pod still leaves a rate."""
MIN_MEASUREMENTS = 3
"""Windows measured per analysis at least: with one failure tolerated, two of three decide."""
TRIGGER_FAILURE_LIMIT = 1
"""Windows over the error-rate trigger tolerated: one may be a blip (a pod restarting); a second aborts.
The latency and throughput triggers tolerate ``breach_checks - 1`` (:func:`confirm_limit`)."""
INCONCLUSIVE_LIMIT = 1
"""Windows without data or between rule and trigger tolerated; a second pauses for a person."""
ANSWERED, FAILED = ',code=~"2.."', ',code!~"2.."'
"""Extra label matchers: requests answered 2xx, and the others."""
LIVE_BASELINE_OFFSET = "1s"
"""The stable side's offset while it still serves traffic: PromQL refuses ``offset 0s``, and one
second is nothing beside a window of four scrapes."""


def k8s_name(system: str) -> str:
    """A DNS-1123 name for ``system`` (``todo_api_system`` -> ``todo-api-system``), at most 50 characters
    so that suffixes such as ``-preview`` and Argo's own hash suffixes still fit in 63."""
    name = re.sub(r"[^a-z0-9-]+", "-", system.lower()).strip("-")
    return name[:50].rstrip("-") or "system"


def _num(value: float) -> str:
    """A threshold as the condition shows it (``0.05``, ``1.1``, ``2``), float noise rounded away."""
    return f"{round(value, 9):g}"


def duration(value: float) -> str:
    return f"{round(value)}s"


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    """How one analysis measures, from the cluster's scrape interval and how long the policy holds a step.

    Each measurement is a rate over ``window_s`` (four scrapes); they follow one
    another every window, so each counts requests no other one counted, and the
    first waits one window and one scrape, so that it sees only traffic sent
    after the analysis began (the step's weight, or the switch).
    """

    scrape_s: int
    window_s: int
    count: int

    @property
    def interval_s(self) -> int:
        return self.window_s

    @property
    def delay_s(self) -> int:
        return self.window_s + self.scrape_s

    @property
    def span_s(self) -> int:
        """From the start of the analysis to its last measurement."""
        return self.delay_s + (self.count - 1) * self.interval_s

    @property
    def baseline_offset_s(self) -> int:
        """How far back the stable version is read once it serves nothing (full weight, or after the
        switch): every measurement's baseline window then ends a scrape before the analysis began."""
        return self.span_s + self.scrape_s

    @property
    def window(self) -> str:
        return duration(self.window_s)


def confirm_limit(policy: Policy) -> int:
    """Windows over the latency or throughput trigger tolerated: as Switchyard's own watch, which fires
    them only when their breach holds on ``[triggers] breach_checks`` checks in a row. Argo counts failed
    windows in all, not in a row, so the export aborts at least as soon as Switchyard would."""
    return policy.triggers.breach_checks - 1


def timing(policy: Policy, strategy: Strategy) -> Timing:
    """Windows of four scrapes, as many as fit the time the policy holds a step (at least three, and
    enough that the latency and throughput triggers' failure limit can still be exceeded with one
    window inconclusive).

    Canary: every step is measured as often as the longest of a weight step and
    the monitor window, so the full-weight step's baseline, read from before it
    began, falls inside the step before it. Blue/green: the monitor window.
    """
    scrape = max(1, math.ceil(policy.kubernetes.scrape_interval_s))
    window = WINDOW_SCRAPES * scrape
    hold = policy.deploy.monitor_window_s
    if strategy == "canary":
        hold = max(hold, policy.deploy.canary_step_s)
    least = max(MIN_MEASUREMENTS, confirm_limit(policy) + INCONCLUSIVE_LIMIT + 1)
    return Timing(scrape_s=scrape, window_s=window, count=max(least, math.ceil(hold / window)))


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


def throughput_ratio_query(system: str, window: str, traffic: Traffic = "replicas") -> str:
    """Ok answers per second per share of the traffic, canary over stable (1 = as many as its share).

    ``replicas`` (and blue/green): every pod gets an equal share, so the share
    is the pod count. A traffic router gives each side its weight instead,
    which the analysis step passes as ``canary-weight`` and ``stable-weight``.
    """

    def per_share(side: str) -> str:
        ok = f"sum({_rate(REQUESTS, system, side, window, ANSWERED)})"
        if traffic == "replicas":
            share = f"count(count by (pod) ({REQUESTS}{{{_selector(system, side)}}}{_offset(side)}))"
        else:
            share = f"{{{{args.{side}-weight}}}}"
        return f"({ok} / {share})"

    return f"{per_share('canary')} / {per_share('stable')}"


def sample_size_query(system: str, window: str) -> str:
    return f"sum(increase({REQUESTS}{{{_selector(system, 'canary')}}}[{window}]))"


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class MetricSpec:
    """One AnalysisTemplate metric: its query, what passes, what fails and how often each may miss."""

    name: str
    query: str
    success: str
    failure: str
    failure_limit: int
    inconclusive_limit: int
    role: str  # "rule" (what GO needs), "trigger" (what rolls back), "both", or "evidence"


def _cond(op: str, value: float | str) -> str:
    """``result[0] <op> value``, false when the query returned nothing (so no data never passes)."""
    shown = value if isinstance(value, str) else _num(value)
    return f"len(result) > 0 && result[0] {op} {shown}"


def sample_threshold(policy: Policy, t: Timing) -> int:
    """Requests per window the canary needs: enough that the windows allowed to pass hold the policy's
    minimum sample between them, even with :data:`INCONCLUSIVE_LIMIT` windows short."""
    return math.ceil(policy.statistics.min_samples_per_version / (t.count - INCONCLUSIVE_LIMIT))


def metric_specs(
    system: str, policy: Policy, strategy: Strategy, traffic: Traffic = "replicas"
) -> list[MetricSpec]:
    """The traffic metrics with the policy's thresholds in their conditions."""
    t = timing(policy, strategy)
    w = t.window
    rule, trig, stats = policy.rule, policy.triggers, policy.statistics
    # a rule is statistical: it may miss in (1 - confidence) of the windows by chance, and in one at least
    rule_limit = max(1, math.floor(t.count * (1 - stats.confidence_level)))
    q = stats.latency_quantile
    latency_limit = 1 + rule.max_latency_increase
    inc = INCONCLUSIVE_LIMIT
    confirmed = confirm_limit(policy)
    specs = [
        MetricSpec(
            "error-rate",
            error_rate_query(system, "canary", w),
            _cond("<=", trig.max_error_rate),
            _cond(">", trig.max_error_rate),
            TRIGGER_FAILURE_LIMIT,
            inc,
            "trigger",
        ),
        MetricSpec(
            "error-rate-increase",
            f"({error_rate_query(system, 'canary', w)}) - ({error_rate_query(system, 'stable', w)})",
            _cond("<=", stats.max_error_rate_increase),
            _cond(">", stats.max_error_rate_increase),
            rule_limit,
            inc,
            "rule",
        ),
    ]
    if round(q, 6) == 0.95:  # the rule's quantile is the trigger's: one metric, rule to pass, trigger to fail
        specs.append(
            MetricSpec(
                "latency-p95-ratio",
                latency_ratio_query(system, w, 0.95),
                _cond("<=", latency_limit),
                _cond(">", trig.max_p95_ratio),
                confirmed,
                inc,
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
                inc,
                "rule",
            ),
            MetricSpec(
                "latency-p95-ratio",
                latency_ratio_query(system, w, 0.95),
                _cond("<=", trig.max_p95_ratio),
                _cond(">", trig.max_p95_ratio),
                confirmed,
                inc,
                "trigger",
            ),
        ]
    specs += [
        MetricSpec(
            "throughput-ratio",
            throughput_ratio_query(system, w, "replicas" if strategy == "blue_green" else traffic),
            _cond(">=", 1 + rule.min_throughput_change),
            _cond("<", trig.min_throughput_ratio),
            confirmed,
            inc,
            "both",
        ),
        MetricSpec(
            "sample-size",
            sample_size_query(system, w),
            _cond(">=", sample_threshold(policy, t)),
            "false",  # too few requests is never a failure, only not yet a pass (Inconclusive)
            TRIGGER_FAILURE_LIMIT,
            inc,
            "evidence",
        ),
    ]
    return specs


# --------------------------------------------------------------------------- templates


def policy_digest(policy: Policy) -> str:
    return hashlib.sha256(policy.model_dump_json().encode()).hexdigest()[:16]


def k8s_labels(app: str, system: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/part-of": "switchyard",
        "switchyard.io/system": system,
    }


def _routed(strategy: Strategy, traffic: Traffic) -> bool:
    return strategy == "canary" and traffic != "replicas"


def analysis_template(
    system: str,
    policy: Policy,
    strategy: Strategy,
    traffic: Traffic = "replicas",
    *,
    prometheus_address: str | None = None,
) -> dict[str, Any]:
    """The traffic ``AnalysisTemplate`` (apiVersion argoproj.io/v1alpha1) for ``system`` under ``policy``."""
    app = k8s_name(system)
    t = timing(policy, strategy)
    specs = metric_specs(system, policy, strategy, traffic)
    metrics = [
        {
            "name": spec.name,
            "initialDelay": duration(t.delay_s),
            "interval": duration(t.interval_s),
            "count": t.count,
            "successCondition": spec.success,
            "failureCondition": spec.failure,
            "failureLimit": spec.failure_limit,
            "inconclusiveLimit": spec.inconclusive_limit,
            "provider": {
                "prometheus": {
                    "address": "{{args.prometheus-address}}",
                    "timeout": max(1, round(policy.prometheus.timeout_s)),
                    "query": spec.query,
                }
            },
        }
        for spec in specs
    ]
    args: list[dict[str, str]] = [
        {"name": "canary-hash"},
        {"name": "stable-hash"},
        {"name": "baseline-offset", "value": LIVE_BASELINE_OFFSET},
        {"name": "prometheus-address", "value": prometheus_address or IN_CLUSTER_PROMETHEUS},
    ]
    if _routed(strategy, traffic):
        args += [{"name": "canary-weight"}, {"name": "stable-weight"}]
    return {
        "apiVersion": API_VERSION,
        "kind": "AnalysisTemplate",
        "metadata": {
            "name": f"{app}-switchyard",
            "labels": k8s_labels(app, system),
            "annotations": {
                "switchyard.io/strategy": strategy,
                "switchyard.io/traffic": traffic if strategy == "canary" else "services",
                "switchyard.io/policy-sha256": policy_digest(policy),
                "switchyard.io/metric-roles": ",".join(f"{s.name}={s.role}" for s in specs),
                "switchyard.io/prometheus-labels": (
                    f"{REQUESTS} and {DURATION} from each pod's /metrics, with the pod labels "
                    f"rollouts-pod-template-hash as {HASH_LABEL} and the pod name as pod"
                ),
            },
        },
        "spec": {"args": args, "metrics": metrics},
    }


def smoke_script() -> str:
    """The pre-promotion Job's program: :mod:`engine.parallel.smoke_requests`, as it is in the repo."""
    return Path(smoke_requests.__file__).read_text(encoding="utf-8")


def smoke_template(system: str, policy: Policy, *, variants: int = 3) -> dict[str, Any]:
    """The blue/green pre-promotion ``AnalysisTemplate``: a Job that smoke-tests the preview Service.

    The preview serves no production traffic, so instead of measuring traffic
    this sends its own: ``/health``, then ``variants`` requests to every entry
    endpoint, each of which must answer 200 with JSON. It is a test, not a
    statistic: one failing run aborts the rollout.
    """
    app = k8s_name(system)
    timeout = max(1, round(policy.prometheus.timeout_s))
    return {
        "apiVersion": API_VERSION,
        "kind": "AnalysisTemplate",
        "metadata": {
            "name": f"{app}-smoke",
            "labels": k8s_labels(app, system),
            "annotations": {"switchyard.io/policy-sha256": policy_digest(policy)},
        },
        "spec": {
            "args": [{"name": "preview-url", "value": f"http://{app}-preview"}],
            "metrics": [
                {
                    "name": "smoke",
                    "failureLimit": 0,
                    "provider": {
                        "job": {
                            "metadata": {"labels": k8s_labels(app, system)},
                            "spec": {
                                "backoffLimit": 0,
                                "activeDeadlineSeconds": 300,
                                "template": {
                                    "metadata": {"labels": {"switchyard.io/smoke": app}},
                                    "spec": {
                                        "restartPolicy": "Never",
                                        "containers": [
                                            {
                                                "name": "smoke",
                                                "image": SMOKE_IMAGE,
                                                "command": ["python3", "-c", smoke_script()],
                                                "args": [
                                                    "{{args.preview-url}}",
                                                    "--variants",
                                                    str(variants),
                                                    "--timeout",
                                                    str(timeout),
                                                ],
                                            }
                                        ],
                                    },
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
