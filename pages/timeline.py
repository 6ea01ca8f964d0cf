"""Timeline: the seed's four phases as a plan, what actually happened, and the forecast finish."""

import datetime as dt

import plotly.express as px
import polars as pl
import streamlit as st

from engine import services
from pages._charts import burn_up_figure, now_line
from pages._shared import actor, can_act, run_action, workspace

ws = workspace()
view = services.overview(ws)
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
rows = []
for ph in view.timeline.phases:
    label = f"{ph.number}. {ph.name} ({ph.migrated}/{ph.systems})"
    rows.append({"phase": label, "kind": "plan", "start": ph.planned_start, "end": ph.planned_end})
    if ph.actual_start is not None:
        end = ph.actual_end or view.as_of
        rows.append({"phase": label, "kind": "actual", "start": ph.actual_start, "end": end})
frame = pl.DataFrame(rows).with_columns(
    pl.col("start").cast(pl.Datetime("us")), pl.col("end").cast(pl.Datetime("us"))
)
fig = px.timeline(
    frame.to_pandas(),
    x_start="start",
    x_end="end",
    y="phase",
    color="kind",
    color_discrete_map={"plan": "#90a4ae", "actual": "#1565c0"},
)
fig.update_layout(barmode="group")
fig.update_yaxes(autorange="reversed", title=None)
fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend_title=None)
now_line(fig, view.as_of.replace(tzinfo=None))
st.subheader("Phases")
st.plotly_chart(fig, width="stretch")
st.dataframe(
    pl.DataFrame([p.model_dump() for p in view.timeline.phases]).select(
        "number", "name", "goal", "rollback", "planned_start", "planned_end", "systems", "migrated"
    ),
    hide_index=True,
    width="stretch",
)

# ---- systems: due date vs what happened
st.subheader("Systems")
phase = st.segmented_control(
    "Phase", [p.number for p in plan.phases], default=1, format_func=lambda n: f"phase {n}", key="phase"
)
schedule = view.schedule.filter(pl.col("phase") == (phase or 1))
bars = pl.concat(
    [
        schedule.select(
            "name",
            pl.lit("plan").alias("kind"),
            pl.col("phase_start").alias("start"),
            pl.col("due").alias("end"),
        ),
        schedule.filter(pl.col("deployed_at").is_not_null()).select(
            "name",
            pl.lit("actual").alias("kind"),
            pl.col("deployed_at").alias("start"),
            pl.coalesce("migrated_at", pl.lit(view.as_of)).alias("end"),
        ),
    ]
).with_columns(pl.col("start").dt.replace_time_zone(None), pl.col("end").dt.replace_time_zone(None))
fig = px.timeline(
    bars.to_pandas(),
    x_start="start",
    x_end="end",
    y="name",
    color="kind",
    color_discrete_map={"plan": "#90a4ae", "actual": "#1565c0"},
)
fig.update_layout(barmode="group")
fig.update_yaxes(autorange="reversed", title=None)
fig.update_layout(height=max(240, 34 * schedule.height), margin={"l": 10, "r": 10, "t": 30, "b": 10})
now_line(fig, view.as_of.replace(tzinfo=None))
st.plotly_chart(fig, width="stretch")
st.dataframe(
    schedule.select(
        "migration_order", "name", "priority", "state", "due", "deployed_at", "migrated_at", "overdue"
    ),
    hide_index=True,
    width="stretch",
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
