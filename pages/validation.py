"""Validation: v1 validator and PortBasedValidationGate results, fleet-wide and per system."""

import polars as pl
import streamlit as st

from engine import services
from engine.state import State
from pages._charts import rate_bars
from pages._shared import actor, cached, focus, focus_index, run_action, viewer_note, workspace

ws = workspace()
version = services.data_version(ws)  # read first: the cached views below are keyed on it
st.title(":material/verified: Validation")
gate = services.policy().gate
blocking = (
    " or ".join(filter(None, [", ".join(gate.blocking_checks[:-1]), gate.blocking_checks[-1]]))
    if gate.blocking_checks
    else ""
)
st.caption(
    f"The gate stops a migration when fewer than {gate.min_validation_success_rate:.0%} of its checks "
    "pass, as the seed does"
    + (f", and on any failing {blocking} check whatever the share" if blocking else "")
    + ". v1 and v2 are sent the same requests and must give the same answers."
)
allowed, why = viewer_note()

table = cached(version, services.validation_comparison, ws)
v1_done = table.filter(pl.col("v1_passed").is_not_null())
v2_done = table.filter(pl.col("v2_passed").is_not_null())
m = st.columns(3)
m[0].metric(
    "v1 validation success rate",
    f"{v1_done['v1_passed'].mean():.1%}" if v1_done.height else "–",
    help="Share of systems whose every v1 check passed.",
)
m[1].metric(
    "v2 validation success rate",
    f"{v2_done['v2_passed'].mean():.1%}" if v2_done.height else "–",
    help="Share of converted systems whose every gate check passed.",
)
m[2].metric("Converted and validated", f"{v2_done.height} / {table.height}")

by_category = cached(version, services.validation_rates_by_category, ws)
if by_category.height:
    title = "Validation success rate by category, v1 vs v2"
    st.plotly_chart(rate_bars(by_category, title, {"v1": "#c62828", "v2": "#2e7d32"}), width="stretch")

blocked = table.filter(pl.col("state") == State.VALIDATION_FAILED.value)
st.subheader(f"Blocked at the gate ({blocked.height})")
if blocked.height:
    st.dataframe(
        blocked.select("name", "category", "phase", "v2_rate", "v2_blocked_by"),
        hide_index=True,
        width="stretch",
        column_config={
            "v2_rate": st.column_config.ProgressColumn(
                "v2 check pass rate", min_value=0, max_value=1, format="percent"
            ),
            "v2_blocked_by": st.column_config.TextColumn("blocked by"),
        },
    )
else:
    st.caption("No system is blocked.")

st.subheader("Checks of one system")
waiting = table.filter(pl.col("state") == State.CONVERTED.value)["name"].to_list()
if waiting:
    st.info(
        f"Converted, not validated yet: {', '.join(waiting[:8])}{' …' if len(waiting) > 8 else ''}. "
        "Pick one and run the gate.",
        icon=":material/pending_actions:",
    )
elif not v2_done.height:
    st.info("No system has been converted yet: use the Conversion page, then validate here.")
names = table["name"].to_list()
name = st.selectbox("System", names, index=focus_index(names, waiting), key="validation_system")
focus(name)
if st.button("Validate (v2 gate)", key="validate_v2", disabled=not allowed, help=why or None):
    with st.spinner(f"Running the gate on {name}…"):
        if run_action(lambda: services.validate_systems_v2(ws, [name], actor=actor())) is not None:
            st.rerun()
shown = services.show_system(ws, name)
for label, result in (
    ("v2 gate", shown.v2_validation),
    ("v1 validator", services.system_detail(ws, name).v1_validation),
):
    if result is None:
        st.caption(f"{label}: not run yet.")
        continue
    st.markdown(
        f"**{label}**: {result.checks_passed}/{result.checks_total} checks passed "
        f"({result.validation_success_rate:.0%})"
    )
    if result.sent_text():
        st.caption(
            result.sent_text().capitalize() + " (generated: built from the declared message shapes; "
            "recorded: what real clients sent through the gateway in this system's earlier runs)."
        )
    st.dataframe(
        pl.DataFrame([c.model_dump(exclude={"evidence", "sent"}) for c in result.checks]).sort("passed"),
        hide_index=True,
        width="stretch",
        column_order=["passed", "name", "component", "target", "message"],
    )
    differing = [(c, d) for c in result.failures() for d in c.evidence or []]
    if differing:
        st.markdown(f"**Requests v1 and v2 answered differently** ({len(differing)} shown)")
    for check, diff in differing:
        with st.container(border=True):
            where = f"request #{diff.get('position')}"
            if diff.get("source") == "recorded":
                where = f"recorded {where} · sent by a client in run `{diff.get('run_id')}`"
            st.markdown(f"`{check.target}` · {where}")
            st.json(diff.get("request"), expanded=True)
            old_col, new_col = st.columns(2)
            for col, side, title in (
                (old_col, "v1", "v1 (RPC) answered"),
                (new_col, "v2", "v2 (ports) answered"),
            ):
                answer = diff.get(side) or {}
                col.markdown(f"**{title}** · HTTP {answer.get('status')}")
                col.json(answer.get("body"), expanded=True)

with st.expander("Requests recorded from real traffic (replayed by the gate)"):
    kept = services.recorded_requests(ws, name)
    st.caption(
        "While a parallel run records, the gateway keeps a sample of the distinct request bodies clients "
        "sent, per endpoint (policy [recorded_requests]); the gate replays them to v1 and v2. They may hold "
        "personal data."
    )
    if not kept.height:
        st.caption(f"Nothing is kept for {name}.")
    else:
        st.dataframe(kept, hide_index=True, width="stretch")
        reason = st.text_input("Why delete them", key="forget-reason")
        sure = st.checkbox(f"Delete the request bodies kept for {name}", key="forget-sure")
        if st.button("Delete recorded requests", key="forget", disabled=not allowed, help=why or None):
            if not (sure and reason.strip()):
                st.error("Give a reason and tick the confirmation to delete.")
            else:
                gone = run_action(
                    lambda: services.forget_recorded_requests(ws, name, actor=actor(), reason=reason)
                )
                if gone is not None:
                    st.success(f"Deleted {gone['bodies']} request bodies of {len(gone['runs'])} run(s).")
