"""Go/No-Go: where one system stands, what to do next, the evidence, and the buttons that act on it.

Top down, as a lead reads it: the state and whatever is running (a live run
redraws its evidence on a timer), then the next step (the verdict, one
sentence and one primary button: GO promotes, NO_GO rolls back, INCONCLUSIVE
runs longer), then the setup (checklist, deploy, parallel run), the detailed
evidence and the governance controls. Every button calls one service
function; long ones run as jobs in the engine while a fragment polls them,
so the page never freezes. Each outcome is said beside its button and as a
toast. Promote and roll back are confirmed in a dialog with a reason and carry
the version the page was drawn from: if the system moved on meanwhile, the
engine refuses and says so.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from engine import services, units
from engine.deploy.checklist import Checklist
from engine.judge import present
from engine.next_step import Action
from engine.state import NOT_YET_READY, SETUP_STATES, State, available_actions
from engine.state import Action as Can
from pages import _jobs as jobs
from pages._charts import glance_chart, latency_histogram, per_bucket_figure
from pages._governance import governance_section
from pages._kubernetes import argo_export_section
from pages._measure import aa_caption, measure_controls
from pages._shared import (
    VERDICT_COLOURS,
    act,
    actor,
    cached,
    clear_next,
    focus,
    focus_index,
    outcome,
    page_start,
    say,
    viewer_note,
    workspace,
)

ROLLBACK_REASONS = ["team decision", "customer impact", "data corruption risk"]

ws = workspace()
version = services.data_version(ws)  # read first: the cached views below are keyed on it
page_start()
st.title(":material/fact_check: Go / No-Go")
allowed, why = viewer_note()  # the services refuse a viewer anyway; this explains the disabled buttons


def enabled(when: bool = True, why_not: str = "") -> dict:
    """Button arguments: enabled if the state allows it and the visitor is an operator, else why not."""
    return {"disabled": not (when and allowed), "help": why or (why_not if not when else None) or None}


names = cached(version, services.system_names, ws)
name = st.selectbox("System", names, index=focus_index(names, ["hello_world_api"]))
focus(name)
evidence = cached(version, services.run_evidence, ws, name, samples=name)  # recomputed after any write
registry = jobs.registry()
who = actor()  # read here: job threads have no session to read it from
step = services.next_step(ws, name, who)
can = available_actions(evidence.state)  # what the state allows: a hold is said by the refusal, as typed


def at(area: str) -> str:
    """An area of this page for this system: an outcome said about one system stays with it."""
    return f"{area}:{name}"


def start(kind: str, area: str, work) -> bool:  # noqa: ANN001 - work(progress) -> result
    """Start a job of this system; its outcome is said in ``area`` when it ends."""
    return jobs.start(kind, name, who, area, work) is not None


def measure_job(kind: str, work) -> bool:  # noqa: ANN001 - work(progress) -> result
    """A calibration or capacity job, its outcome said beside the measurement buttons."""
    return start(kind, at("measure"), work)


def primary(kind: str) -> str:
    """ "primary" for the button of the next step (the one step.primary names), else "secondary"."""
    return "primary" if step.primary is not None and step.primary.kind == kind else "secondary"


if evidence.state == State.EMERGENCY:
    st.error(
        f"**EMERGENCY**: the rollback of {name} could not verify the old version. Restore it by hand from "
        "the newest backup (see its rollback plan), then roll back again to record it.",
        icon=":material/emergency:",
    )

# --------------------------------------------------------------------------- state, jobs and the live run
running_run = evidence.run is not None and evidence.run["status"] == "running"
active = registry.running(name) is not None or running_run
if evidence.run is not None:
    LIVE_EVERY_S = min(15.0, max(2.0, float(evidence.run["duration_s"]) / 30))  # a day-long run: every 15 s
else:
    LIVE_EVERY_S = 2.0


@st.fragment(run_every=LIVE_EVERY_S if active else None)
def live_status() -> None:
    """The state, the running job's progress and, during a run, its evidence so far; polls while active."""
    state, row_version = services.state_of(ws, name)
    if row_version != evidence.version:
        st.rerun()  # the system moved on (this job, a run's end, another session): redraw the whole page
    st.markdown(f"State: **{state}** · version {row_version}")
    job = registry.latest(name)
    if job is not None and job.status == "running":
        st.progress(job.fraction, text=f"{job.kind}: {job.label}")
    live = services.run_so_far(ws, name)
    if live is not None:
        live_run(live, clocked=job is not None and job.status == "running")
    if job is not None and job.status != "running" and st.session_state.get(f"job-seen-{name}") != job.id:
        st.session_state[f"job-seen-{name}"] = job.id
        if jobs.area_of(job) is not None:  # started here: said where it was clicked (and toasted)
            ok, text = jobs.summary(job)
            say(jobs.area_of(job), ok, text, later=True)
        st.rerun()  # redraw the whole page with the job's outcome
    still = (job is not None and job.status == "running") or live is not None
    if active and not still:
        st.rerun()  # the run or job ended while this fragment watched: the verdict is drawn in full


def live_run(live: services.LiveRun, clocked: bool) -> None:
    """A parallel run as it goes: samples so far, the verdict they would get now, the triggers, Stop.

    ``clocked``: this server's job drives the run and its progress bar shows the time; a run started
    elsewhere (the CLI) is timed here from its start.
    """
    run = live.run
    with st.container(border=True):
        duration = float(run["duration_s"])
        if not clocked:
            st.progress(
                min(1.0, live.elapsed_s / duration),
                text=f"{units.seconds(live.elapsed_s)} of {units.seconds(duration)}",
            )
        st.markdown(
            f"**Run {run['id']} in progress** · {units.duration(duration)} at {units.count(run['rps'])} "
            "req/s · "
            f"**{units.count(live.samples_old)} old and {units.count(live.samples_new)} new samples so far**"
            + (f" (adding to {', '.join(run['chain'][:-1])})" if len(run["chain"]) > 1 else "")
        )
        left, right = st.columns([4, 1])
        with right:
            if st.button("Stop the run", key="stop", type="secondary", **enabled()):
                act(at("stop"), lambda: services.stop_run(ws, name, actor=who), "Asked the run to stop.")
            outcome(at("stop"))
        verdict = live.verdict
        with left:
            if verdict is None:
                st.caption("No samples written yet: the gateway writes them every second.")
                return
            colour = VERDICT_COLOURS.get(verdict.verdict, "gray")
            st.markdown(
                f"So far: **:{colour}[{verdict.verdict}]** (interim, on the samples so far: the verdict is "
                "recorded when the run ends)"
            )
        result = verdict.model_dump(mode="json")
        fired = [t for t in verdict.triggers if t.fired]
        if fired:
            st.error("Trigger firing: " + "; ".join(t.explanation for t in fired), icon=":material/bolt:")
        st.plotly_chart(glance_chart(present.glance_rows(result)), key="live-glance", width="stretch")
        tables = st.columns(2)
        tables[0].dataframe(present.criteria_table(result), hide_index=True, width="stretch")
        tables[1].dataframe(present.triggers_table(result), hide_index=True, width="stretch")


live_status()

# --------------------------------------------------------------------------- the next step
verdict = evidence.verdict


@st.dialog("Promote")
def promote_dialog(action: Action) -> None:
    st.markdown(
        f"Switch **{name}**'s traffic to the new version, watch the monitor window, then decommission "
        "the old one (kept warm for a fast rollback first)."
    )
    reason = st.text_input("Reason", value=action.reason, key="promote-reason")
    monitor = st.number_input("Monitor window (s)", 1, 3600, 30, key="promote-monitor")
    warm = st.number_input(
        "Keep old warm (s)",
        0,
        86_400,
        int(services.policy().deploy.warm_window_s),
        key="promote-warm",
        help="After a clean window the old version keeps running this long: a rollback is then a switch.",
    )
    if st.button("Promote now", type="primary", key="promote-confirm"):
        if not reason.strip():
            st.error("Give a reason to promote.")
            return
        work = lambda p: services.promote(  # noqa: E731 - one service call
            ws,
            name,
            actor=who,
            reason=reason,
            expected_version=evidence.version,
            monitor_s=float(monitor),
            warm_s=float(warm),
            progress=p,
        )
        if start("promote", at("decide"), work):
            clear_next("promote-reason", "promote-monitor", "promote-warm")
        st.rerun()


@st.dialog("Roll back")
def rollback_dialog(action: Action) -> None:
    st.markdown(
        f"Stop the new version of **{name}**, restore the old one from its backup, verify it answers as "
        "before, and write the failure document."
    )
    choices = ([action.reason] if action.reason else []) + ROLLBACK_REASONS
    kind = st.selectbox("Reason", choices, key="rollback-reason")
    detail = st.text_input("Details (optional)", key="rollback-detail")
    if st.button("Roll back now", type="primary", key="rollback-confirm"):
        reason = f"{kind}: {detail}" if detail.strip() else kind
        work = lambda p: services.rollback(  # noqa: E731 - one service call
            ws, name, actor=who, reason=reason, expected_version=evidence.version, progress=p
        )
        if start("rollback", at("decide"), work):
            clear_next("rollback-reason", "rollback-detail")
        st.rerun()


def judge_controls(label: str, can: bool, key: str) -> None:
    """Judge the shown run (again): from its samples or the policy's Prometheus; records a verdict."""
    area = at(key)
    source = st.radio("Measured by", services.METRICS_SOURCES, horizontal=True, key=f"{key}-source")
    if st.button(label, key=key, type=primary("judge"), **enabled(can, "no finished run to judge")):
        if source == "samples":
            act(
                area,
                lambda: services.judge_system(ws, name, actor=who),
                lambda v: f"Verdict {v.verdict}.",
                rerun=True,
            )
        else:  # the policy's [prometheus] section says where and what to ask
            act(
                area,
                lambda: services.judge_from_source(ws, name, actor=who, source=source),
                lambda v: f"Verdict {v.verdict} (from {source}).",
                rerun=True,
            )
    outcome(area)


def decision_buttons() -> None:
    """The step's actions that are decided here, the primary one first; a disabled one says why."""
    shown = [a for a in step.actions if a.kind in ("promote", "rollback", "extend")]
    shown.sort(key=lambda a: not a.primary)
    if not shown:
        return
    row = st.container(horizontal=True, vertical_alignment="bottom")
    for action in shown:
        with row:
            kind = "primary" if action.primary else "secondary"
            args = enabled(action.enabled, action.why_not)
            if action.kind == "extend":
                minutes = action.minutes
                if minutes is None:  # the judge gave no estimate: the lead says how long, nothing is invented
                    run_minutes = float((evidence.run or {}).get("duration_s") or 60) / 60
                    minutes = st.number_input(
                        "Minutes more", 1, 24 * 60, max(1, round(run_minutes)), key="more", width=140
                    )
                if st.button(action.label, key="extend", type=kind, **args):
                    work = lambda p, m=minutes: services.extend_run(  # noqa: E731 - one service call
                        ws, name, actor=who, duration_s=60.0 * m, progress=p
                    )
                    if start("run longer", at("decide"), work):
                        st.rerun()
            elif st.button(action.label, key=f"decide-{action.kind}", type=kind, **args):
                (promote_dialog if action.kind == "promote" else rollback_dialog)(action)


with st.container(border=True):
    if verdict is not None:
        result = verdict["result"]
        colour = VERDICT_COLOURS.get(verdict["verdict"], "gray")
        st.markdown(f"### Verdict: :{colour}[{verdict['verdict']}]")
        st.caption(
            f"Statistical verdict at {result['policy']['statistics']['confidence_level']:.0%} confidence, "
            f"recorded by {verdict['actor']} at {verdict['ts']:%Y-%m-%d %H:%M:%S} UTC. Beside it, and not "
            f"part of it: {present.seed_rule(result['new_better'])}."
        )
        aa_caption(ws, name, version, result)
    st.markdown(f"**Next:** {step.sentence}")
    decision_buttons()
    if step.primary is not None and step.primary.kind == "judge":
        judge_controls("Judge this run", True, "judge")
    outcome(at("decide"))
    if verdict is not None:
        st.markdown("\n".join(f"- {r}" for r in result["reasons"]))
        st.plotly_chart(glance_chart(present.glance_rows(result)), key="glance", width="stretch")


def _checked(result: Checklist) -> str:
    if result.ready_to_migrate:
        return "Checklist complete: ready to migrate."
    return "Not ready yet: " + ", ".join(i.label for i in result.missing()) + "."


# --------------------------------------------------------------------------- steps before the evidence
with st.expander("Checklist, deployment and parallel run", expanded=evidence.state in SETUP_STATES):
    cols = st.columns(3)
    with cols[0]:
        st.markdown("**Pre-migration checklist**")
        note = st.text_input("Note for the acknowledgement", key="ack-note")

        def keep(result: Checklist, *reset: str) -> None:
            """Kept across the rerun that redraws the state (and enables Deploy); the note is cleared."""
            st.session_state[f"checklist-{name}"] = result
            clear_next(*reset)

        if st.button("Team notified: acknowledge", key="ack", **enabled()):
            act(
                at("checklist"),
                lambda: services.checklist(ws, name, actor=who, ack="team_notified", note=note),
                lambda r: "Acknowledged. " + _checked(r),
                rerun=True,
                then=lambda r: keep(r, "ack-note"),
            )
        if st.button("Run checklist", key="checklist", type=primary("checklist"), **enabled()):
            act(
                at("checklist"),
                lambda: services.checklist(ws, name, actor=who),
                _checked,
                rerun=True,
                then=keep,
            )
        outcome(at("checklist"))
    with cols[1]:
        st.markdown("**Deploy green beside blue**")
        strategy = st.radio("Strategy", ["blue_green", "canary", "direct"], horizontal=True)
        ready = Can.DEPLOY in can
        not_ready = (
            "deploy needs a complete pre-migration checklist first (state ready)"
            if evidence.state in NOT_YET_READY
            else f"{name} is {evidence.state}: already deployed, or roll back first"
        )
        if st.button("Deploy", key="deploy", type=primary("deploy"), **enabled(ready, not_ready)):
            start(
                "deploy",
                at("deploy"),
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
            st.rerun()
        if not ready and allowed:
            st.caption(f"Deploy is off: {not_ready}.")
        outcome(at("deploy"))
    with cols[2]:
        st.markdown("**Parallel run (mirrored traffic)**")
        duration = st.number_input("Duration (s)", 5, 86400, 60)
        bucket = st.number_input("Bucket (s)", 1, 3600, 1)
        rps = st.number_input("Requests per second", 1, 2000, 100)
        busy = running_run or registry.running(name) is not None
        can_run = Can.START_RUN in can and not busy
        cannot = "a run is in progress" if busy else f"a parallel run needs green deployed ({evidence.state})"
        if st.button("Start parallel run", key="run", type=primary("start_run"), **enabled(can_run, cannot)):
            start(
                "parallel run",
                at("run"),
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
            st.rerun()
        outcome(at("run"))
        measure_controls(ws, name, can, evidence.state, version, enabled, measure_job, who)
        outcome(at("measure"))
    last = st.session_state.get(f"checklist-{name}")
    if last is not None:  # the whole width: each item's detail is a sentence
        st.dataframe(
            pl.DataFrame([{"item": i.label, "ok": i.ok, "detail": i.detail} for i in last.items]),
            hide_index=True,
            width="stretch",
            column_config={
                "item": st.column_config.TextColumn(width="medium"),
                "ok": st.column_config.CheckboxColumn(width="small"),
            },
        )

# --------------------------------------------------------------------------- evidence
run = evidence.run
if run is None:
    argo_export_section(ws, name, version)
    st.stop()

st.subheader(f"Run {run['id']} · {run['status']}")
together = (
    f" It adds to {', '.join(run['chain'][:-1])}: {units.duration(run['chain_seconds'])} of evidence "
    "in all, judged together."
    if len(run["chain"]) > 1
    else ""
)
st.caption(
    f"{units.seconds(run['duration_s'])} at {units.count(run['rps'])} req/s, buckets of "
    f"{units.seconds(run['bucket_s'])}; {units.count(run['samples'] or 0)} samples, "
    f"{units.count(run['lost'] or 0)} requests lost.{together}"
)
if evidence.summary.height:
    st.dataframe(present.summary_table(evidence.summary), hide_index=True, width="stretch")

if verdict is not None:
    result = verdict["result"]
    st.markdown("**Criteria** (each with its interval at the policy's confidence and the samples it used)")
    st.dataframe(present.criteria_table(result), hide_index=True, width="stretch")
    st.markdown("**Automatic rollback triggers**")
    st.dataframe(present.triggers_table(result), hide_index=True, width="stretch")
    with st.expander("Judge this run again (from its samples, or from Prometheus)"):
        judge_controls("Judge again", Can.JUDGE in can, "rejudge-run")

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

governance_section(ws, name, who, enabled(), verdict, version)
argo_export_section(ws, name, version)  # needs no run: the plan for a cluster, from the policy
