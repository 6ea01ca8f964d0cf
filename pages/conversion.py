"""Conversion: turn v1 systems into port-based v2 ones, and see both side by side with every decision."""

import polars as pl
import streamlit as st

from engine import services
from pages._shared import actor, cached, focus, focus_index, run_action, viewer_note, workspace

ws = workspace()
version = services.data_version(ws)  # read first: the cached views below are keyed on it
st.title(":material/swap_horiz: Conversion")
st.caption("v1 (RPC) -> v2 (port-based), with the seed's recipe mapping and a report of every decision.")
allowed, why = viewer_note()

inventory = cached(version, services.inventory, ws)
left, right = st.columns([2, 1])
scope = left.radio(
    "Convert", ["one system", "a phase", "the whole fleet"], horizontal=True, key="convert_scope"
)
names = inventory["name"].to_list()
name = left.selectbox("System", names, index=focus_index(names), key="convert_system")
focus(name)
phase = right.selectbox("Phase", sorted(inventory["phase"].unique().to_list()), key="convert_phase")

if st.button("Convert", type="primary", key="convert", disabled=not allowed, help=why or None):
    if scope == "one system":
        chosen = [name]
    else:
        chosen = (
            run_action(
                lambda: services.select_systems(
                    ws, phase=phase if scope == "a phase" else None, all_systems=scope == "the whole fleet"
                )
            )
            or []
        )
    if chosen:
        with st.status(f"Converting {len(chosen)} system(s)…", expanded=True) as status:
            bar = st.progress(0.0)

            def progress(done: int, total: int, label: str) -> None:
                bar.progress(done / max(total, 1), text=label)

            converted = run_action(
                lambda: services.convert_systems(ws, chosen, actor=actor(), progress=progress)
            )
            status.update(
                label="Conversion finished" if converted else "Conversion failed",
                state="complete" if converted else "error",
            )
        if converted:
            focus(converted[-1].system if scope != "one system" else name)  # Validation opens on it
            st.success(f"Converted {len(converted)} system(s) into {ws.v2_dir}: validate them next.")
            st.dataframe(pl.DataFrame([c.model_dump() for c in converted]), hide_index=True, width="stretch")

shown = services.show_system(ws, name)
st.subheader(f"{name} · state `{shown.state}`")
# a blueprint edited on disk since it was imported or converted may no longer load: say so, in red
v1_dot, v2_dot = run_action(lambda: services.blueprint_diagrams(ws, name)) or (None, None)
col1, col2 = st.columns(2)
with col1:
    st.markdown("**v1 (RPC)**")
    if v1_dot is not None:
        st.graphviz_chart(v1_dot)
    st.code(shown.v1_yaml, language="yaml")
with col2:
    st.markdown("**v2 (port-based)**")
    if v2_dot is None or shown.v2_yaml is None:
        st.info("Not converted yet.")
    else:
        st.graphviz_chart(v2_dot)
        st.code(shown.v2_yaml, language="yaml")

if shown.report is not None:
    st.subheader("Conversion report")
    counts = {s: shown.report.count(s) for s in ("error", "warning", "info")}
    m = st.columns(3)
    m[0].metric("Errors", counts["error"])
    m[1].metric("Warnings", counts["warning"])
    m[2].metric("Info", counts["info"])
    st.dataframe(
        pl.DataFrame([d.model_dump() for d in shown.report.decisions]),
        hide_index=True,
        width="stretch",
        column_order=["severity", "kind", "component", "message"],
    )
