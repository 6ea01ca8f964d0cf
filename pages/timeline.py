"""Timeline: the seed's four phases as a plan, what actually happened, and the forecast finish."""

import datetime as dt

import polars as pl
import streamlit as st

from engine import services
from engine.kpi.timeline import phase_bars, system_bars
from pages._charts import burn_up_figure, gantt_figure
from pages._shared import actor, cached, can_act, run_action, workspace

ws = workspace()
version = services.data_version(ws)  # read first: the cached views below are keyed on it
# the standup's cached view when as of now; a bad plan.toml: a red box, not a traceback
view = run_action(lambda: cached(version, services.overview, ws, None, samples=True))
if view is None:
    st.stop()
fc, plan = view.timeline.forecast, view.plan

st.title(":material/timeline: Timeline")
st.caption(
    "Phases run back to back from the plan's start date, systems in priority order (P0 first); the forecast "
    "extends the measured migration rate."
)

cols = st.columns(4)
cols[0].metric("Plan start", f"{plan.start_date:%d %b %Y}")
cols[1].metric("Planned finish", f"{fc.planned_finish:%d %b %Y}")
if fc.forecast_finish is not None:
    cols[2].metric("Forecast finish", f"{fc.forecast_finish:%d %b %Y}", help=fc.explanation)
    cols[3].metric(
        "Slip",
        f"{fc.slip_days:+d} days",
        delta="late" if fc.slip_days and fc.slip_days > 0 else "on time",
        delta_color="inverse" if fc.slip_days and fc.slip_days > 0 else "normal",
    )
else:
    cols[2].metric("Forecast finish", "–")
    cols[3].metric("Slip", "–")
st.caption(f"Forecast: {fc.explanation}.")

# ---- phases: plan vs actual
frame = phase_bars(view.timeline)
fig = gantt_figure(frame, view.as_of, height=300)
st.subheader("Phases")
st.plotly_chart(fig, width="stretch")


def readable(frame: pl.DataFrame) -> pl.DataFrame:
    """Dates as ``Sat 05 Dec`` and moments as ``Sat 05 Dec 10:00`` (UTC, as on the Standup), "–" where
    nothing happened yet: a plan is read in days and hours, not in microseconds, offsets and "None"."""
    return frame.with_columns(
        pl.col(c).dt.strftime("%a %d %b" if t == pl.Date else "%a %d %b %H:%M").fill_null("–")
        for c, t in frame.schema.items()
        if t.is_temporal()
    )


st.dataframe(
    readable(
        pl.DataFrame([p.model_dump() for p in view.timeline.phases]).select(
            "number", "name", "goal", "rollback", "planned_start", "planned_end", "systems", "migrated"
        )
    ),
    hide_index=True,
    width="stretch",
    column_config={"planned_start": "planned start", "planned_end": "planned end"},
)

# ---- systems: due date vs what happened
st.subheader("Systems")
phase = st.segmented_control(
    "Phase", [p.number for p in plan.phases], default=1, format_func=lambda n: f"phase {n}", key="phase"
)
schedule = view.schedule.filter(pl.col("phase") == (phase or 1))
bars = system_bars(schedule, view.as_of)
fig = gantt_figure(bars, view.as_of, height=max(240, 34 * schedule.height))
st.plotly_chart(fig, width="stretch")
st.dataframe(
    readable(
        schedule.select(
            "migration_order", "name", "priority", "state", "due", "deployed_at", "migrated_at", "overdue"
        )
    ),
    hide_index=True,
    width="stretch",
    column_config={
        "migration_order": "#",
        "due": "due (UTC)",
        "deployed_at": "deployed (UTC)",
        "migrated_at": "migrated (UTC)",
    },
)

st.subheader("Burn-up")
st.plotly_chart(burn_up_figure(view.burn_up, view.metrics, fc), width="stretch")

# ---- the plan's start date is a setting
allowed, why = can_act()
with st.form("plan_start"):
    st.markdown("**Plan start date**")
    start = st.date_input("Start", value=plan.start_date, min_value=dt.date(2000, 1, 1), disabled=not allowed)
    reason = st.text_input("Why", placeholder="e.g. start after the code freeze", disabled=not allowed)
    if st.form_submit_button("Set start date", disabled=not allowed, help=why or None):
        if run_action(
            lambda: services.set_plan_start(ws, start, actor=actor(), reason=reason or "plan start date set")
        ):
            st.rerun()
