"""Audit log: every event (who, when, what, why), filterable, exportable as CSV."""

import datetime as dt

import polars as pl
import streamlit as st

from engine import services
from pages._shared import workspace

ws = workspace()
st.title(":material/history: Audit log")
st.caption("Every state change, decision, acknowledgement and tick, with who did it, when and why.")

facets = services.event_facets(ws)
ANY = "(any)"
cols = st.columns([2, 2, 2, 3])
system = cols[0].selectbox("System", [ANY, *facets["system"]])
who = cols[1].selectbox("Actor", [ANY, *facets["actor"]])
kinds = sorted({a.split(":")[0] for a in facets["action"]})
kind = cols[2].selectbox(
    "Action", [ANY, *kinds], help="Grouped by the part before ':' (state, run, checklist…)."
)
today = dt.date.today()
days = cols[3].date_input("Between", value=(today - dt.timedelta(days=7), today))

filters = {
    "system": None if system == ANY else system,
    "actor": None if who == ANY else who,
    "action_prefix": None if kind == ANY else kind,
}
if isinstance(days, tuple) and len(days) == 2:
    since, until = days
    filters["since"] = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
    filters["until"] = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

events = services.list_events(ws, **filters)
st.caption(f"{events.height} events")
st.dataframe(
    events.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S")).drop("id"),
    hide_index=True,
    width="stretch",
    height=520,
    column_config={c: st.column_config.TextColumn(width="small") for c in ("before", "after")},
)
st.download_button(
    "Download CSV",
    data=services.events_csv(ws, **filters),
    file_name=f"switchyard-audit-{today:%Y%m%d}.csv",
    mime="text/csv",
    icon=":material/download:",
    on_click="ignore",
)
