"""Post-mortem: pick the migration, a phase or a system, read the gist, download Markdown, HTML or PDF."""

import datetime as dt

import polars as pl
import streamlit as st

from engine import services
from engine.judge import present
from engine.report import FORMATS, Scope, file_name
from engine.report.charts import newest_results
from pages._charts import glance_chart
from pages._shared import VERDICT_COLOURS, actor, cached, run_action, workspace

ws = workspace()
version = services.data_version(ws)  # read first: the cached views below are keyed on it
st.title(":material/description: Post-mortem")
st.caption(
    "What happened, who decided what on which evidence, what went wrong, and where the migration stands: "
    "for the whole migration, a phase or one system. Built from the store when you download it."
)

inventory = cached(version, services.inventory, ws)
kind = st.segmented_control(
    "Scope", ["Whole migration", "A phase", "A system"], default="Whole migration", key="report_kind"
)
if kind == "A phase":
    phase = st.selectbox("Phase", sorted(inventory["phase"].unique().to_list()), key="report_phase")
    scope = Scope("phase", phase=int(phase))
elif kind == "A system":
    system = st.selectbox("System", inventory["name"].to_list(), key="report_system")
    scope = Scope("system", system=system)
else:
    scope = Scope("migration")

day = st.date_input("As of the end of", value=dt.date.today(), key="report_day")
as_of = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC) - dt.timedelta(
    microseconds=1
)
who = actor()
post = run_action(
    lambda: cached(version, services.post_mortem, ws, scope, generated_by=who, as_of=as_of, samples=True)
)
if post is None:
    st.stop()

st.subheader(post.title)
st.markdown("\n".join(f"- {line}" for line in post.summary()))

cols = st.columns(4)
cols[0].metric("Success score", f"{post.metrics.success_score:.2f}")
cols[1].metric("Migrated", f"{post.metrics.systems_migrated} / {post.metrics.systems_total}")
cols[2].metric("Rollbacks", post.metrics.rollback_count)
cols[3].metric("Failure documents", len(post.failures))

# the downloads before the details: drawn early in the run, so a click never meets the previous run's
# buttons (another scope's file) for long while the charts below are still being drawn
st.markdown("**Download** (charts included in every format; the HTML is one self-contained file)")
buttons = st.columns(len(FORMATS))
for column, (fmt, (mime, _)) in zip(buttons, FORMATS.items(), strict=True):
    column.download_button(
        f"{fmt.upper()}",
        # built when clicked, on its own thread: the page does not wait for the charts and the PDF
        data=lambda fmt=fmt: services.post_mortem_file(ws, scope, fmt, generated_by=who, as_of=as_of).data,
        file_name=file_name(scope, fmt, as_of),
        mime=mime,
        icon=":material/download:",
        on_click="ignore",
        key=f"download_{fmt}",
    )
st.divider()

st.markdown("**Decisions and their evidence**")
if post.decisions.height:
    st.dataframe(
        post.decisions.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M")),
        hide_index=True,
        width="stretch",
    )
else:
    st.caption("No decisions recorded yet.")
judged = newest_results(post.verdicts)
if judged:  # the Go / No-Go page's chart, as the downloads carry it
    st.markdown("**Newest verdict per system, at a glance** (each criterion's interval against its limit)")
    for system, result in judged:
        colour = VERDICT_COLOURS.get(str(result.get("verdict")), "gray")
        st.markdown(f"{system}: **:{colour}[{result.get('verdict')}]**")
        st.plotly_chart(glance_chart(present.glance_rows(result)), key=f"glance-{system}", width="stretch")
if post.failures:
    st.markdown("**Failure documents**")
    st.dataframe(pl.DataFrame([f.__dict__ for f in post.failures]), hide_index=True, width="stretch")
