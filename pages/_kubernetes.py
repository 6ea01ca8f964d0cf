"""The Go / No-Go page's "Run this on Kubernetes" section: the Argo Rollouts manifests for the system.

Viewers may export too: the manifests are generated from the policy by
:func:`engine.services.argo_manifests` and shown; downloading them is the
export, recorded in the audit log by :func:`engine.services.export_argo`.
"""

from __future__ import annotations

import streamlit as st

from engine import services
from engine.workspace import Workspace
from pages._shared import actor, cached, run_action

SHOWN = {"canary": "canary (weight steps)", "blue_green": "blue/green (preview, then switch)"}
ROUTES = {
    "replicas": "one Service over both versions (weights by pod count)",
    "nginx": "nginx ingress",
    "smi": "SMI service mesh",
}


def argo_export_section(ws: Workspace, name: str, version: tuple | None = None) -> None:
    """``version``: the page's ``services.data_version``, read before it drew (else read here); the
    preview depends on the policy alone (in the version), so it is drawn from the cache while that holds.
    """
    version = version or services.data_version(ws)
    with st.expander("Run this on Kubernetes (Argo Rollouts)", icon=":material/deployed_code:"):
        st.caption(
            "A Rollout and AnalysisTemplates that run this migration on a cluster with the same "
            "policy: canary weights, the monitor window, and Prometheus queries whose success and "
            "failure conditions are the rule's and the triggers' thresholds. README: On Kubernetes."
        )
        left, right = st.columns(2)
        strategy = left.radio(
            "Strategy on the cluster",
            ["canary", "blue_green"],
            format_func=SHOWN.get,
            key="argo-strategy",
        )
        traffic = right.radio(
            "How the canary gets its share of traffic",
            list(ROUTES),
            format_func=ROUTES.get,
            key="argo-traffic",
            disabled=strategy != "canary",
            help="Blue/green switches Services: the preview is smoke-tested, the active one measured.",
        )
        if strategy != "canary":
            traffic = "replicas"  # blue/green routes through its two Services
        text = run_action(  # the preview
            lambda: cached(version, services.argo_manifests, ws, name, strategy, traffic=traffic)
        )
        if text:
            routed = "" if traffic == "replicas" else f"-{traffic}"
            file_name = f"{name}-argo-{strategy}{routed}.yaml"
            st.download_button(
                "Download the YAML",
                text,
                file_name=file_name,
                mime="application/yaml",
                key="argo-download",
                icon=":material/download:",
                on_click=lambda: run_action(  # the download is the export: recorded in the audit log
                    lambda: services.export_argo(
                        ws, name, strategy, actor=actor(), traffic=traffic, file=file_name
                    )
                ),
            )
            st.code(text, language="yaml")
