"""The same migration on a Kubernetes cluster: an Argo Rollouts ``Rollout``, its ``AnalysisTemplate``\\s
and the Services (and Ingress) it routes through, following Argo's documented patterns.

For one system and one policy this writes what a team would ``kubectl apply``
to move the system the way Switchyard moves it locally:

* **canary**: a ``setWeight`` step per policy ``canary_weights`` (as percent),
  each followed by an ``analysis`` step that measures that weight's traffic.
  How the canary gets its share of real traffic is the ``traffic`` choice:

  - ``replicas`` (default, Argo's basic canary): one Service over every pod
    of both versions, so each pod gets an equal share and a weight is a pod
    count; the file says which share each step really gets (:func:`canary_share`);
  - ``nginx``: Argo's nginx traffic routing (a canary Ingress beside the
    exported stable Ingress, weighted by annotation);
  - ``smi``: an SMI ``TrafficSplit`` between the stable and canary Services
    behind a root Service the clients call (a mesh such as Linkerd splits it).

  Never the stable and canary Services alone: without ``trafficRouting`` Argo
  points each at one version, clients of the stable one never reach the canary,
  and its metrics stay empty.
* **blue_green**: ``activeService``/``previewService``, no automatic promotion
  (a lead promotes), a pre-promotion analysis that sends its own smoke requests
  to the preview Service (a Job running :mod:`engine.parallel.smoke_requests`:
  the preview has no production traffic to measure), and the traffic metrics as
  post-promotion analysis on the active Service, the old version kept until they
  are done (``scaleDownDelaySeconds``) so an abort switches straight back.

The AnalysisTemplates and how they measure are in :mod:`engine.export.argo_analysis`.

Field names follow the CRDs in argoproj/argo-rollouts (checked against the
v1.9.1 schemas vendored in tests/data/argo_rollouts).
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import yaml

from engine.errors import InputError
from engine.export.argo_analysis import (
    API_VERSION,
    HASH_LABEL,
    INCONCLUSIVE_LIMIT,
    LIVE_BASELINE_OFFSET,
    SMOKE_IMAGE,
    TRIGGER_FAILURE_LIMIT,
    WINDOW_SCRAPES,
    Strategy,
    Timing,
    Traffic,
    analysis_template,
    confirm_limit,
    duration,
    k8s_labels,
    k8s_name,
    metric_specs,
    policy_digest,
    smoke_template,
    timing,
)
from engine.judge.policy import Policy

__all__ = [
    "HASH_LABEL",
    "Timing",
    "analysis_template",
    "canary_share",
    "manifests",
    "metric_specs",
    "policy_digest",
    "rollout",
    "scrape_config",
    "services",
    "smoke_template",
    "timing",
]

STRATEGIES = ("canary", "blue_green")
TRAFFIC = ("replicas", "nginx", "smi")
DEFAULT_IMAGE = "registry.invalid/switchyard/{app}:new"
"""A placeholder that cannot be pulled: the team puts its own image of the converted system here."""
DEFAULT_HOST = "{app}.example.com"
"""The nginx Ingress's host, a placeholder for the team's own."""
CONTAINER_PORT = 8080
DEFAULT_REPLICAS = 4
MAX_SURGE = "25%"
"""Argo's default, written out: the canary's pod counts below are computed with it."""


def _analysis(template: str, offset: str, weights: tuple[int, int] | None = None) -> dict[str, Any]:
    """A ``RolloutAnalysis``: the template, the two versions' pod hashes, the baseline's offset and,
    behind a traffic router, the two sides' weights."""
    args: list[dict[str, Any]] = [
        {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}},
        {"name": "stable-hash", "valueFrom": {"podTemplateHashValue": "Stable"}},
        {"name": "baseline-offset", "value": offset},
    ]
    if weights is not None:
        args += [
            {"name": "canary-weight", "value": str(weights[0])},
            {"name": "stable-weight", "value": str(weights[1])},
        ]
    return {"templates": [{"templateName": template}], "args": args}


def step_weights(policy: Policy) -> list[int]:
    """The canary's weights in percent, ending at 100."""
    return [round(w * 100) for w in policy.deploy.canary_weights if w < 1.0] + [100]


def canary_steps(policy: Policy, template: str, traffic: Traffic = "replicas") -> list[dict[str, Any]]:
    """``setWeight`` then an ``analysis`` of that weight's traffic, per weight.

    At 100 % the stable version serves nothing, so its baseline is read from
    before the step (:attr:`Timing.baseline_offset_s`), as the local monitor
    window compares against the old version; behind a router its weight then
    was what the step before gave it.
    """
    t = timing(policy, "canary")
    steps: list[dict[str, Any]] = []
    before = 0
    for weight in step_weights(policy):
        full = weight == 100
        offset = duration(t.baseline_offset_s) if full else LIVE_BASELINE_OFFSET
        weights = None if traffic == "replicas" else (weight, 100 - (before if full else weight))
        steps += [{"setWeight": weight}, {"analysis": _analysis(template, offset, weights)}]
        before = weight
    return steps


def canary_share(replicas: int, weight: int, max_surge: int) -> tuple[int, int]:
    """(new pods, all pods) Argo runs for ``weight`` % without a traffic router.

    A port of ``approximateWeightedCanaryStableReplicaCounts`` (argo-rollouts
    utils/replicaset/canary.go): the closest share of pods to the weight, the
    canary never zero for a weight above 0, one extra pod allowed by the surge.
    """
    if weight >= 100:
        return replicas, replicas
    exact = replicas * weight / 100
    ceil, floor = math.ceil(exact), math.floor(exact)

    def tied(total: int) -> bool:
        return math.modf(total * weight / 100)[0] == 0.5

    zero_allowed = weight == 0 or (replicas == 1 and max_surge == 0)
    options = []
    if ceil < replicas or zero_allowed:
        options.append((ceil, replicas))
    if not tied(replicas) and (floor != 0 or zero_allowed):
        options.append((floor, replicas))
    if max_surge > 0:
        options.append((ceil, replicas + 1))
        if not tied(replicas + 1) and (floor != 0 or zero_allowed):
            options.append((floor, replicas + 1))
    if not options:
        return 0, replicas
    best = options[0]
    for option in options[1:]:  # the first of equally close options wins, as in Argo
        if abs(option[0] * 100 / option[1] - weight) < abs(best[0] * 100 / best[1] - weight):
            best = option
    return best


def _surge(replicas: int) -> int:
    return math.ceil(replicas * int(MAX_SURGE.rstrip("%")) / 100)


def rollout(
    system: str,
    policy: Policy,
    strategy: Strategy,
    traffic: Traffic = "replicas",
    *,
    image: str | None = None,
    replicas: int = DEFAULT_REPLICAS,
) -> dict[str, Any]:
    """The ``Rollout`` (apiVersion argoproj.io/v1alpha1) running ``system``'s new version by ``strategy``."""
    app = k8s_name(system)
    template = f"{app}-switchyard"
    t = timing(policy, strategy)
    if strategy == "canary":
        canary: dict[str, Any] = {}
        if traffic == "replicas":
            # one Service over both versions (services()); keep every old pod until its replacement is up
            canary |= {"maxSurge": MAX_SURGE, "maxUnavailable": 0}
        else:
            canary |= {"canaryService": f"{app}-canary", "stableService": f"{app}-stable"}
            if traffic == "nginx":
                canary["trafficRouting"] = {"nginx": {"stableIngress": app}}
            else:
                canary["trafficRouting"] = {"smi": {"rootService": app, "trafficSplitName": app}}
        canary["steps"] = canary_steps(policy, template, traffic)
        strategy_spec: dict[str, Any] = {"canary": canary}
    else:
        # the old version stays until the post-promotion analysis is done (Argo cancels it when the old
        # one is scaled down), and through the monitor and fast-rollback windows
        keep = max(policy.deploy.monitor_window_s + policy.deploy.warm_window_s, t.span_s + t.window_s)
        strategy_spec = {
            "blueGreen": {
                "activeService": f"{app}-active",
                "previewService": f"{app}-preview",
                "autoPromotionEnabled": False,
                "scaleDownDelaySeconds": round(keep),
                "prePromotionAnalysis": {  # the preview gets no production traffic: it is sent its own
                    "templates": [{"templateName": f"{app}-smoke"}],
                    "args": [{"name": "preview-url", "value": f"http://{app}-preview"}],
                },
                "postPromotionAnalysis": _analysis(template, duration(t.baseline_offset_s)),
            }
        }
    labels = k8s_labels(app, system)
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


def _service(app: str, system: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": k8s_labels(app, system)},
        "spec": {
            "selector": {"app.kubernetes.io/name": app},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def services(
    system: str, strategy: Strategy, traffic: Traffic = "replicas", *, host: str | None = None
) -> list[dict[str, Any]]:
    """The Services (and, for nginx, the stable Ingress) the strategy routes through.

    Argo adds a pod-hash selector to the stable/canary and active/preview
    Services itself; the one Service of ``replicas`` and SMI's root Service
    keep selecting every pod of both versions.
    """
    app = k8s_name(system)
    if strategy == "blue_green":
        names = [f"{app}-active", f"{app}-preview"]
    elif traffic == "replicas":
        names = [app]
    elif traffic == "smi":
        names = [app, f"{app}-stable", f"{app}-canary"]
    else:
        names = [f"{app}-stable", f"{app}-canary"]
    documents = [_service(app, system, name) for name in names]
    if strategy == "canary" and traffic == "nginx":
        documents.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": app, "labels": k8s_labels(app, system)},
                "spec": {
                    "ingressClassName": "nginx",
                    "rules": [
                        {
                            "host": host or DEFAULT_HOST.format(app=app),
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {"name": f"{app}-stable", "port": {"name": "http"}}
                                        },
                                    }
                                ]
                            },
                        }
                    ],
                },
            }
        )
    return documents


def scrape_config(policy: Policy) -> dict[str, Any]:
    """The scrape job the cluster's Prometheus needs for the analyses (README: On Kubernetes).

    Pods annotated ``prometheus.io/scrape`` (the Rollout's are) are scraped on
    their annotated port and path every ``[kubernetes] scrape_interval_s``; their
    labels become Prometheus labels (``rollouts-pod-template-hash`` ->
    :data:`HASH_LABEL`), and the pod's name becomes ``pod``.
    """
    scrape = f"{max(1, math.ceil(policy.kubernetes.scrape_interval_s))}s"
    return {
        "scrape_configs": [
            {
                "job_name": "switchyard-pods",
                "scrape_interval": scrape,
                "kubernetes_sd_configs": [{"role": "pod"}],
                "relabel_configs": [
                    {
                        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                        "regex": "true",
                        "action": "keep",
                    },
                    {
                        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
                        "regex": "(.+)",
                        "target_label": "__metrics_path__",
                    },
                    {
                        "source_labels": [
                            "__address__",
                            "__meta_kubernetes_pod_annotation_prometheus_io_port",
                        ],
                        "regex": "([^:]+)(?::\\d+)?;(\\d+)",
                        "replacement": "$1:$2",
                        "target_label": "__address__",
                    },
                    {"regex": "__meta_kubernetes_pod_label_(.+)", "action": "labelmap"},
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                ],
            }
        ]
    }


class _PlainDumper(yaml.SafeDumper):
    """Safe YAML without anchors: a shared dict is written out in full each time, as people write it;
    a text of several lines (the smoke Job's script) as a literal block, readable as the file it is."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_PlainDumper.add_representer(str, _text)


def to_yaml(documents: list[dict[str, Any]]) -> str:
    return yaml.dump_all(
        documents, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False, width=4096
    )


def _header(
    system: str, policy: Policy, strategy: Strategy, traffic: Traffic, replicas: int, policy_name: str
) -> str:
    app = k8s_name(system)
    t = timing(policy, strategy)
    lines = [
        f"Switchyard: {system} by {strategy} under {policy_name} (sha256 {policy_digest(policy)}).",
        "Needs the Argo Rollouts controller (CRDs as of v1.9) and a Prometheus scraping the pods"
        " (README: On Kubernetes).",
        f"Apply with: kubectl apply -f <this file>, with your current image as {app}'s first;",
        f"then start the migration: kubectl argo rollouts set image {app} {app}=<image of the converted"
        " system>.",
        f"Each analysis measures every {t.window_s} s over {WINDOW_SCRAPES} scrapes of {t.scrape_s} s,"
        f" {t.count} times (the first after {t.delay_s} s).",
        f"The error-rate trigger aborts once more than {TRIGGER_FAILURE_LIMIT} window is over it, the"
        f" latency and throughput triggers once more than {confirm_limit(policy)} are (policy [triggers]"
        f" breach_checks = {policy.triggers.breach_checks}); more than {INCONCLUSIVE_LIMIT} window without"
        " data or between rule and trigger pauses for a person.",
    ]
    if strategy == "blue_green":
        lines += [
            f"Before promotion a Job smoke-tests {app}-preview ({SMOKE_IMAGE}); promote with:"
            f" kubectl argo rollouts promote {app}.",
            f"After it, the traffic metrics watch {app}-active against the old version's last minutes.",
        ]
    elif traffic == "replicas":
        lines.append(
            f"No traffic router: one Service ({app}) over the pods of both versions, so a weight is a"
            f" pod count. With {replicas} replicas:"
        )
        for weight in step_weights(policy):
            new, total = canary_share(replicas, weight, _surge(replicas))
            lines.append(
                f"  setWeight {weight}: {new} of {total} pods run the new version, about"
                f" {round(100 * new / total)} % of requests"
            )
        lines.append("More replicas (--replicas) come closer to the weights; or route: --traffic nginx|smi.")
    elif traffic == "nginx":
        lines.append(
            f"nginx routes each weight: clients use the Ingress {app} (host {DEFAULT_HOST.format(app=app)}:"
            " put your own); Argo adds the canary Ingress beside it."
        )
    else:
        lines.append(
            f"The mesh routes each weight: clients call the root Service {app}; Argo writes the SMI"
            f" TrafficSplit {app} between {app}-stable and {app}-canary."
        )
    wrapped = (
        part
        for line in lines
        for part in textwrap.wrap(line, 98, subsequent_indent="    ", break_on_hyphens=False)
    )
    return "".join(f"# {part}\n" for part in wrapped)


def manifests(
    system: str,
    policy: Policy,
    strategy: str = "canary",
    *,
    traffic: str = "replicas",
    image: str | None = None,
    prometheus_address: str | None = None,
    policy_name: str = "policy.toml",
    replicas: int = DEFAULT_REPLICAS,
) -> str:
    """AnalysisTemplate(s), Rollout, Services (and Ingress) as one multi-document YAML string."""
    if strategy not in STRATEGIES:
        raise InputError("--strategy", "value", " | ".join(STRATEGIES), repr(strategy))
    if traffic not in TRAFFIC:
        raise InputError("--traffic", "value", " | ".join(TRAFFIC), repr(traffic))
    if not 1 <= replicas <= 1000:
        raise InputError("--replicas", "value", "a whole number from 1 to 1000", str(replicas))
    chosen: Strategy = "canary" if strategy == "canary" else "blue_green"
    routing: Traffic = "nginx" if traffic == "nginx" else "smi" if traffic == "smi" else "replicas"
    documents = [analysis_template(system, policy, chosen, routing, prometheus_address=prometheus_address)]
    if chosen == "blue_green":
        documents.append(smoke_template(system, policy))
    documents += [
        rollout(system, policy, chosen, routing, image=image, replicas=replicas),
        *services(system, chosen, routing),
    ]
    return _header(system, policy, chosen, routing, replicas, policy_name) + to_yaml(documents)
