"""Standup: the fleet in five minutes: KPIs and targets, change since yesterday, blockers, what is next."""

import datetime as dt

import polars as pl
import streamlit as st

from engine import services, units
from pages._charts import burn_up_figure, score_parts_figure
from pages._shared import cached, run_action, workspace

ws = workspace()
version = services.data_version(ws)  # read first: the cached views below are keyed on it
today = dt.datetime.now(dt.UTC).date()
day = st.sidebar.date_input("Standup as of", value=today, help="Look back at the standup of an earlier day.")
# an earlier day is seen as at its end; today as of now
as_of = None if day == today else dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
# cached until the store or the samples change; a bad plan.toml: a red box, not a traceback
view = run_action(lambda: cached(version, services.overview, ws, as_of, samples=True))
if view is None:
    st.stop()
m, y = view.metrics, view.yesterday
fc = view.timeline.forecast

st.title(":material/groups: Standup")
st.caption(
    f"As of {view.as_of:%Y-%m-%d %H:%M} UTC. Every figure is measured from the store; deltas compare "
    "with the same moment yesterday."
)

# ---- headline: progress, score, forecast
top = st.columns(4)
top[0].metric(
    "Systems migrated",
    f"{m.systems_migrated} / {m.systems_total}",
    delta=m.systems_migrated - y.systems_migrated or None,
    help="Promoted, monitoring or done. A promotion that was rolled back does not count.",
)
top[1].metric(
    "Success score",
    f"{m.success_score:.2f}",
    delta=round(m.success_score - y.success_score, 3) or None,
    help="The seed's score: the mean of the six parts shown below.",
)
top[2].metric("Migration rate", f"{m.migration_rate:.2f} / day", help="Systems migrated a day since start")
if fc.forecast_finish is not None:
    top[3].metric(
        "Forecast finish",
        f"{fc.forecast_finish:%d %b}",
        delta=f"{fc.slip_days:+d} days vs plan" if fc.slip_days else "on plan",
        delta_color="inverse",
        help=fc.explanation,
    )
else:
    top[3].metric("Forecast finish", "–", help=fc.explanation)
    top[3].caption(f"Plan ends {fc.planned_finish:%d %b}; {fc.explanation}.")

# ---- KPI tiles with targets
before = {t.field: t for t in y.targets()}
targets = m.targets()
tiles = [*st.columns(4), *st.columns(4)]  # two rows: readable labels on a laptop screen
for tile, target in zip(tiles, targets, strict=False):

    def fmt(value: float, unit: str = target.unit) -> str:
        return units.kpi(value, unit)

    was = before[target.field]  # a change from or to "not measured yet" is no change: no delta
    change = fmt(target.value - was.value) if target.measured and was.measured else fmt(0.0)
    lower_is_better = target.direction in ("<", "<=", "==")
    with tile.container(border=True):
        st.metric(
            target.label,
            target.shown() if target.measured else units.NONE,  # the words, too long for a tile, go below
            delta=change if change != fmt(0.0) else None,
            delta_color="inverse" if lower_is_better else "normal",
        )
        mark = (
            f":gray[:material/hourglass_empty: {target.verdict()}]"
            if not target.measured
            else ":green[:material/check_circle: met]"
            if target.met
            else ":red[:material/cancel: not met]"
        )
        st.caption(f"target {target.direction} {fmt(target.target)} · {mark}")
with tiles[len(targets)].container(border=True):
    st.metric(
        "Migrated with a verdict",
        f"{m.systems_with_verdict}",
        help="Migrated systems whose newest verdict gives the latency change above. The throughput "
        "change is capacity: each version's sustainable requests per second, measured side by side by "
        "the capacity probe (Go / No-Go page, or `capacity NAME`); a mirrored run offers both versions "
        "the same load, so it cannot show it. A system not yet migrated counts on the Go / No-Go page.",
    )
    n, c = m.systems_validated_v2, m.systems_with_capacity
    st.caption(f"{n} system{'' if n == 1 else 's'} validated on v2 · {c} with a capacity probe")
notes = m.caveats()
if notes:
    st.caption("Note: " + "; ".join(notes) + ".")

# ---- burn-up and score parts
left, right = st.columns([3, 2])
with left:
    st.subheader("Burn-up against the plan")
    st.plotly_chart(burn_up_figure(view.burn_up, m, fc), width="stretch")
with right:
    st.subheader("Success score, part by part")
    st.plotly_chart(score_parts_figure(m), width="stretch")

# ---- what changed, what is blocked, what is next
left, right = st.columns([3, 2])
with left:
    st.subheader("Last 24 hours")
    if view.changes.height:
        st.dataframe(
            view.changes.with_columns(pl.col("ts").dt.strftime("%a %H:%M")),
            hide_index=True,
            width="stretch",
            column_config={"ts": "when", "what": "what happened", "actor": "who"},
        )
    else:
        st.caption("No promotion, rollback, trigger or NO_GO verdict in the last 24 hours.")
    st.subheader("Next by the plan")
    st.dataframe(
        view.next_due.with_columns(pl.col("due").dt.strftime("%a %d %b %H:%M")),
        hide_index=True,
        width="stretch",
        column_config={  # narrow columns (and the wider left column above), so the overdue tick fits
            "priority": st.column_config.TextColumn("prio", width="small"),
            "phase": st.column_config.NumberColumn("phase", width="small"),
            "overdue": st.column_config.CheckboxColumn("overdue", width="small"),
        },
    )
with right:
    st.subheader(f"Blockers ({len(view.blockers)})")
    if not view.blockers:
        st.success("Nothing is blocked.", icon=":material/check_circle:")
    icons = {
        "emergency": ":material/emergency:",
        "rolled back": ":material/undo:",
        "validation": ":material/rule:",
        "checklist": ":material/checklist:",
    }
    for blocker in view.blockers[:12]:
        box = st.error if blocker.kind == "emergency" else st.warning
        box(f"**{blocker.system}** ({blocker.kind}): {blocker.detail}", icon=icons.get(blocker.kind))
    if len(view.blockers) > 12:
        st.caption(f"… and {len(view.blockers) - 12} more: see the Inventory and Validation pages.")
