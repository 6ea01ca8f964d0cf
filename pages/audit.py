"""Audit log: every event (who, when, what, why), filterable, exportable as CSV."""

import datetime as dt

import polars as pl
import streamlit as st

from engine import services
from pages._shared import actor, cached, can_act, run_action, workspace

ws = workspace()
version = services.data_version(ws)  # read first: the cached views below are keyed on it
st.title(":material/history: Audit log")
st.caption("Every state change, decision, acknowledgement and tick, with who did it, when and why.")

facets = cached(version, services.event_facets, ws)
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

show_load = st.toggle(
    "Show fleet loads",
    value=False,
    help="Importing a fleet records an import and a v1 validation for every system (over a hundred events "
    "for the sample fleet): kept on the record, hidden here until asked for.",
)
filters = {
    "system": None if system == ANY else system,
    "actor": None if who == ANY else who,
    "action_prefix": None if kind == ANY else kind,
    "exclude_actions": None if show_load else services.FLEET_LOAD_ACTIONS,
}
if isinstance(days, tuple) and len(days) == 2:
    since, until = days
    filters["since"] = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
    filters["until"] = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

events = cached(version, services.list_events, ws, **filters)
hidden = 0
if not show_load:
    everything = cached(version, services.list_events, ws, **(filters | {"exclude_actions": None}))
    hidden = everything.height - events.height
st.caption(f"{events.height} events" + (f" ({hidden} of fleet loads hidden)" if hidden else ""))
ROW_PX, MOST_ROWS = 35, 30  # the table grows with its rows (up to 30 at a time), not a 13-row box
# no system: the workspace's own (the gateway, the plan); nothing before: a first event. "–", not "None"
shown = events.drop("id").with_columns(pl.col(pl.String).fill_null("–"))
st.dataframe(
    shown.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S")),
    hide_index=True,
    width="stretch",
    height=ROW_PX * (min(max(events.height, 1), MOST_ROWS) + 1) + 3,
    column_config={
        "ts": st.column_config.TextColumn("when (UTC)", width="medium"),
        "reason": st.column_config.TextColumn(width="large"),
        **{c: st.column_config.TextColumn(width="small") for c in ("before", "after")},
    },
)
st.download_button(
    "Download CSV",
    data=cached(version, services.events_csv, ws, **filters),
    file_name=f"switchyard-audit-{today:%Y%m%d}.csv",
    mime="text/csv",
    icon=":material/download:",
    on_click="ignore",
)

# ---- notifications: the webhook outbox over this log (engine/notify, <workspace>/notify.toml)
st.subheader(":material/notifications: Notifications")
outbox = run_action(lambda: services.notifications(ws, limit=200))  # a bad notify.toml: a red box
if outbox is not None and not outbox.configured:
    st.caption(
        f"No webhooks. List some in {outbox.file} to announce verdicts, triggers, promotions, rollbacks, "
        "holds and approvals needed, and the standup digest (README, Notifications)."
    )
elif outbox is not None:
    st.caption(
        "Every event above of a kind a webhook hears is delivered to it once, signed, retried with "
        "backoff. Webhooks: "
        + "; ".join(f"**{h.name}** ({h.url}): {', '.join(h.kinds)}" for h in outbox.webhooks)
    )
    for problem in outbox.problems:
        st.warning(problem, icon=":material/key_off:")
    counts = outbox.counts
    allowed, why = can_act()
    if st.button(
        f"Send pending now ({counts['pending']})",
        disabled=not allowed or counts["pending"] == 0,
        help=why or "Send every pending notification now, waiting out the retries (up to flush_wait_s).",
        icon=":material/send:",
    ):
        with st.spinner("Sending…"):
            flushed = run_action(lambda: services.flush_notifications(ws, actor=actor()))
        if flushed is not None:
            rep = flushed.report
            st.success(
                f"{rep.count('delivered')} delivered, {rep.count('failed')} failed, "
                f"{rep.count('pending')} still pending."
            )
        outbox = services.notifications(ws, limit=200)
        counts = outbox.counts
    st.caption(f"{counts['delivered']} delivered, {counts['pending']} pending, {counts['failed']} failed")
    if outbox.deliveries.height:
        st.dataframe(
            outbox.deliveries.select(
                pl.col("created_at").dt.strftime("%Y-%m-%d %H:%M:%S").alias("created"),
                "webhook",
                "kind",
                "system",
                "status",
                "attempts",
                "last_error",
                pl.col("next_attempt_at").dt.strftime("%H:%M:%S").alias("next attempt"),
                "event_id",
            ),
            hide_index=True,
            width="stretch",
        )
