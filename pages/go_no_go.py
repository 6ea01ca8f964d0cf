"""Go/No-Go: the evidence for one system, old vs new, and the buttons that act on it.

Checklist, deploy, parallel run, judge, promote and roll back each call one
service function. Long ones run as jobs in the engine (worker threads) while a
fragment polls their progress, so the page never freezes. Promote and roll
back ask for a reason and a confirmation, and carry the version the page was
drawn from: if the system moved on meanwhile, the engine refuses and says so.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from engine import services
from engine.jobs import JobRegistry
from engine.judge import present
from pages._charts import latency_histogram, per_bucket_figure
from pages._governance import governance_section
from pages._kubernetes import argo_export_section
from pages._shared import actor, cached, run_action, viewer_note, workspace

DEPLOYED = {"green_deployed", "parallel_run", "judged", "promoted", "monitoring"}
VERDICT_COLOURS = {"GO": "green", "NO_GO": "red", "INCONCLUSIVE": "orange"}


@st.cache_resource
def jobs() -> JobRegistry:
    """One job registry per server: jobs outlive page reruns and browser sessions."""
    return JobRegistry()


ws = workspace()
version = services.data_version(ws)  # read first: the cached views below are keyed on it
st.title(":material/fact_check: Go / No-Go")
allowed, why = viewer_note()  # the services refuse a viewer anyway; this explains the disabled buttons


def enabled(when: bool = True) -> dict:
    """Button arguments: enabled if the state allows it and the visitor is an operator, else why not."""
    return {"disabled": not (when and allowed), "help": why or None}


names = cached(version, services.system_names, ws)
name = st.selectbox(
    "System", names, index=names.index("hello_world_api") if "hello_world_api" in names else 0
)
evidence = cached(version, services.run_evidence, ws, name, samples=name)  # recomputed after any write
registry = jobs()
who = actor()  # read here: job threads have no session to read it from

if evidence.state == "emergency":
    st.error(
        f"**EMERGENCY**: the rollback of {name} could not verify the old version. Restore it by hand from "
        "the newest backup (see its rollback plan), then roll back again to record it.",
        icon=":material/emergency:",
    )
st.markdown(f"State: **{evidence.state}** · version {evidence.version}")


@st.fragment(run_every=1.0)
def job_progress() -> None:
    """Progress of this system's running or last job; polls the registry, never blocks the page."""
    job = registry.latest(name)
    if job is None:
        return
    if job.status == "running":
        st.progress(job.fraction, text=f"{job.kind}: {job.label}")
    elif job.status == "failed":
        st.error(f"{job.kind} failed: {job.error}")
    else:
        st.success(f"{job.kind} finished: {job.label}")
    if job.status != "running" and st.session_state.get(f"job-seen-{name}") != job.id:
        st.session_state[f"job-seen-{name}"] = job.id
        st.rerun()  # redraw the evidence with the job's outcome


def start(kind: str, work) -> None:  # noqa: ANN001 - work(progress) -> result
    run_action(lambda: registry.start(kind, name, who, work))


job_progress()

# --------------------------------------------------------------------------- steps before the evidence
SETUP_STATES = {"validated", "ready", "green_deployed"}  # the next step is in the expander: keep it open
with st.expander("Checklist and deployment", expanded=evidence.state in SETUP_STATES):
    cols = st.columns(3)
    with cols[0]:
        st.markdown("**Pre-migration checklist**")
        note = st.text_input("Note for the acknowledgement", key="ack-note")
        checked = None
        if st.button("Team notified: acknowledge", key="ack", **enabled()):
            checked = run_action(
                lambda: services.checklist(ws, name, actor=who, ack="team_notified", note=note)
            )
        if st.button("Run checklist", key="checklist", **enabled()):
            checked = run_action(lambda: services.checklist(ws, name, actor=who))
        if checked is not None:  # kept across the rerun that redraws the state and enables Deploy
            st.session_state[f"checklist-{name}"] = checked
            st.rerun()
        last = st.session_state.get(f"checklist-{name}")
        if last is not None:
            if last.ready_to_migrate:
                st.success("Checklist complete: ready to migrate.")
            else:
                st.warning("Not ready: " + ", ".join(i.name for i in last.missing()))
            st.dataframe(pl.DataFrame([i.model_dump() for i in last.items]), hide_index=True)
    with cols[1]:
        st.markdown("**Deploy green beside blue**")
        strategy = st.radio("Strategy", ["blue_green", "canary", "direct"], horizontal=True)
        if st.button("Deploy", key="deploy", **enabled(evidence.state == "ready")):
            start(
                "deploy",
                lambda p: services.deploy(
                    ws,
                    name,
                    strategy,
                    actor=who,
                    reason="deploy from the Go/No-Go page",
                    expected_version=evidence.version,
                    progress=p,
                ),
            )
    with cols[2]:
        st.markdown("**Parallel run (mirrored traffic)**")
        duration = st.number_input("Duration (s)", 5, 86400, 60)
        bucket = st.number_input("Bucket (s)", 1, 3600, 1)
        rps = st.number_input("Requests per second", 1, 2000, 100)
        can_run = evidence.state in {"green_deployed", "judged"}
        if st.button("Start parallel run", key="run", **enabled(can_run)):
            start(
                "parallel run",
                lambda p: services.parallel_run(
                    ws,
                    name,
                    actor=who,
                    duration_s=float(duration),
                    bucket_s=float(bucket),
                    rps=float(rps),
                    progress=p,
                ),
            )
        if st.button("Stop the run", key="stop", **enabled(evidence.state == "parallel_run")):
            run_action(lambda: services.stop_run(ws, name, actor=who))

argo_export_section(ws, name)  # needs no run: the plan for a cluster, from the policy

# --------------------------------------------------------------------------- evidence
run = evidence.run
if run is None:
    st.info("No parallel run yet: deploy green, then start a parallel run to collect evidence.")
    st.stop()

st.subheader(f"Run {run['id']} · {run['status']}")
st.caption(
    f"{run['duration_s']:.0f} s at {run['rps']:.0f} req/s, buckets of {run['bucket_s']:.0f} s; "
    f"{run['samples'] or 0} samples, {run['lost'] or 0} requests lost"
)
if evidence.summary.height:
    st.dataframe(present.summary_table(evidence.summary), hide_index=True, width="stretch")

verdict = evidence.verdict
if verdict is None:
    st.warning("This run has not been judged yet.")
    source = st.radio("Measured by", services.METRICS_SOURCES, horizontal=True, key="judge-source")
    if st.button("Judge this run", key="judge", **enabled(evidence.state == "parallel_run")):
        if source == "samples":
            run_action(lambda: services.judge_system(ws, name, actor=who))
        else:  # the policy's [prometheus] section says where and what to ask
            run_action(lambda: services.judge_from_source(ws, name, actor=who, source=source))
        st.rerun()
else:
    result = verdict["result"]
    colour = VERDICT_COLOURS.get(verdict["verdict"], "gray")
    st.markdown(
        f"### Verdict: :{colour}[{verdict['verdict']}]  "
        f"<small>seed rule new_better = {result['new_better']} · "
        f"confidence {result['policy']['statistics']['confidence_level']:.0%}</small>",
        unsafe_allow_html=True,
    )
    for reason in result["reasons"]:
        st.markdown(f"- {reason}")
    st.dataframe(present.criteria_table(result), hide_index=True, width="stretch")
    st.markdown("**Automatic rollback triggers**")
    st.dataframe(present.triggers_table(result), hide_index=True, width="stretch")

charts = st.columns(2)
if evidence.latencies.height:
    charts[0].plotly_chart(latency_histogram(evidence.latencies), key="latency-hist")
if evidence.buckets.height:
    quantiles = ["p50", "p95", "p99"]
    percentiles = per_bucket_figure(
        evidence.buckets, quantiles, "Latency percentiles over time", y_title="latency (ms)"
    )
    charts[1].plotly_chart(percentiles, key="percentiles")
    charts = st.columns(2)
    errors = per_bucket_figure(
        evidence.buckets, ["error_rate"], "Error rate per bucket", y_title="error rate", percent=True
    )
    charts[0].plotly_chart(errors, key="errors")
    full = evidence.buckets.filter(pl.col("complete"))
    throughput = per_bucket_figure(
        full, ["throughput_rps"], "Throughput per full bucket", y_title="ok responses / s"
    )
    charts[1].plotly_chart(throughput, key="throughput")
if evidence.mismatches.height:
    st.markdown("**Responses that differed (new vs old)**")
    st.dataframe(evidence.mismatches, hide_index=True, width="stretch")

# --------------------------------------------------------------------------- decisions
st.divider()
left, right = st.columns(2)
with left, st.form("promote"):
    st.markdown("**Promote**: switch traffic to new, watch the monitor window, decommission old")
    reason = st.text_input("Reason", key="promote-reason")
    monitor = st.number_input("Monitor window (s)", 1, 3600, 30)
    warm = st.number_input(
        "Keep old warm (s)",
        0,
        86_400,
        int(services.policy().deploy.warm_window_s),
        help="After a clean window the old version keeps running this long: a rollback is then a switch.",
    )
    sure = st.checkbox("I have reviewed the evidence and want to promote", key="promote-sure")
    if st.form_submit_button("Promote", type="primary", **enabled()):
        if not (sure and reason.strip()):
            st.error("Give a reason and tick the confirmation to promote.")
        else:
            start(
                "promote",
                lambda p: services.promote(
                    ws,
                    name,
                    actor=who,
                    reason=reason,
                    expected_version=evidence.version,
                    monitor_s=float(monitor),
                    warm_s=float(warm),
                    progress=p,
                ),
            )
with right, st.form("rollback"):
    st.markdown("**Roll back**: stop new, restore old from the backup, verify, document")
    reason_rb = st.selectbox(
        "Reason", ["team decision", "customer impact", "data corruption risk", "NO_GO verdict"]
    )
    detail = st.text_input("Details", key="rollback-detail")
    sure_rb = st.checkbox("I want to roll back", key="rollback-sure")
    if st.form_submit_button("Roll back", **enabled()):
        if not sure_rb:
            st.error("Tick the confirmation to roll back.")
        else:
            why = f"{reason_rb}: {detail}" if detail.strip() else reason_rb
            start(
                "rollback",
                lambda p: services.rollback(
                    ws,
                    name,
                    actor=who,
                    reason=why,
                    expected_version=evidence.version,
                    progress=p,
                ),
            )

governance_section(ws, name, who, enabled(), verdict, version)
