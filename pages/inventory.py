"""Inventory: the fleet as a filterable table, counts by category and state, one system in detail."""

from pathlib import Path

import polars as pl
import streamlit as st

from engine import services
from engine.labels import V1_LABELS, v1_result
from pages._charts import count_bars
from pages._shared import actor, cached, run_action, viewer_note, workspace

ws = workspace()
version = services.data_version(ws)  # read first: the cached views below are keyed on it
st.title(":material/inventory_2: Inventory")
st.caption("Every system in the fleet, its place in the plan, its state and its measured v1 validation.")
allowed, why = viewer_note()

frame = cached(version, services.inventory, ws).with_columns(v1_result().alias("v1_result"))

# ---- filters
cols = st.columns(5)
filters = {
    "category": cols[0].multiselect("Category", sorted(frame["category"].unique())),
    "priority": cols[1].multiselect("Priority", sorted(frame["priority"].unique())),
    "phase": cols[2].multiselect("Phase", sorted(frame["phase"].unique())),
    "state": cols[3].multiselect("State", sorted(frame["state"].unique())),
    "v1_result": cols[4].multiselect("v1 validation", list(V1_LABELS)),
}
search = st.text_input("Search by name", placeholder="e.g. todo")
shown = frame
for column, chosen in filters.items():
    if chosen:
        shown = shown.filter(pl.col(column).is_in(chosen))
if search:
    shown = shown.filter(pl.col("name").str.contains(search, literal=True))

# ---- headline figures (all measured by the v1 validator, stored in the workspace)
PASS, FAIL, NOT_RUN = V1_LABELS
validated = frame.filter(pl.col("v1_result") != NOT_RUN)
passed = validated.filter(pl.col("v1_result") == PASS).height
m = st.columns(4)
m[0].metric("Systems", frame.height)
m[1].metric("Shown", shown.height)
m[2].metric(
    "v1 validation success rate",
    f"{passed / validated.height:.1%}" if validated.height else "–",
    help="Share of systems whose every v1 check passed, as measured by the last validation run.",
)
m[3].metric("Systems passing v1", f"{passed} / {validated.height}")

# ---- charts
left, right = st.columns(2)
palette = {PASS: "#2e7d32", FAIL: "#c62828", NOT_RUN: "#9e9e9e"}
left.plotly_chart(
    count_bars(shown, "category", "v1_result", "Systems by category and v1 result", palette), width="stretch"
)
right.plotly_chart(count_bars(shown, "state", "priority", "Systems by state and priority"), width="stretch")

# ---- table
st.dataframe(
    shown.select(
        "migration_order",
        "name",
        "category",
        "priority",
        "phase",
        "state",
        "component_count",
        "v1_result",
        "v1_checks_passed",
        "v1_checks_total",
        "created",
    ),
    hide_index=True,
    width="stretch",
    column_config={
        "migration_order": st.column_config.NumberColumn("#", help="Position in the migration order"),
        "component_count": st.column_config.NumberColumn("components"),
        "v1_checks_passed": st.column_config.NumberColumn("checks passed"),
        "v1_checks_total": st.column_config.NumberColumn("checks"),
        "created": st.column_config.DateColumn("created", format="YYYY-MM-DD"),
    },
)

# ---- detail of one system
st.subheader("System detail")
names = shown["name"].to_list()
if not names:
    st.info("No system matches the filters.")
else:
    name = st.selectbox("System", names, key="inventory_system")
    detail = services.system_detail(ws, name)
    row = detail.row
    st.markdown(
        f"**{row['name']}** · {row['category']} · {row['priority']} · phase {row['phase']} · "
        f"state `{row['state']}` · v{row['system_version']}  \n{row['description']}"
    )
    bp_col, checks_col = st.columns([1, 1])
    with bp_col:
        st.caption(f"Blueprint (v1) · {row['source_path']}")
        st.code(detail.blueprint_yaml, language="yaml")
    with checks_col:
        validation = detail.v1_validation
        if validation is None:
            st.info("Not validated yet.")
        else:
            st.caption(
                f"v1 checks: {validation.checks_passed}/{validation.checks_total} passed "
                f"({validation.validation_success_rate:.0%})"
            )
            if validation.passed:
                st.success("Every v1 check passed.")
            checks = pl.DataFrame([c.model_dump() for c in validation.checks]).sort("passed")
            st.dataframe(
                checks,
                hide_index=True,
                width="stretch",
                column_order=["passed", "name", "component", "target", "message"],
            )
        if st.button("Re-validate (v1)", key="revalidate", disabled=not allowed, help=why or None):
            with st.spinner(f"Validating {name}…"):
                result = run_action(lambda: services.validate_v1(ws, [name], actor=actor()))
            if result is not None:
                st.rerun()

# ---- import another fleet
with st.expander("Import another fleet folder"):
    st.caption("A folder with one sub-folder per system, each holding a v1 blueprint.yaml and components/.")
    folder = st.text_input("Fleet folder", key="import_folder", placeholder="/path/to/generated_systems")
    if st.button("Import fleet", key="import_fleet", disabled=not (folder and allowed), help=why or None):
        with st.status(f"Importing {folder}…", expanded=True) as status:
            report, fleet = run_action(lambda: services.import_fleet(ws, Path(folder), actor=actor())), None
            if report is None:
                status.update(label="Import failed", state="error")
            else:
                st.write(f"Validating {len(report.loaded) + len(report.updated)} systems (v1)…")
                fleet = run_action(
                    lambda: services.validate_v1(ws, report.loaded + report.updated, actor=actor())
                )
                status.update(label="Import finished", state="complete")
        if report is not None:
            st.success(
                f"Loaded {len(report.loaded)} new and refreshed {len(report.updated)} systems "
                f"from {report.fleet_dir}."
            )
            if fleet is not None:
                st.info(
                    f"v1 validation: {fleet.systems_passed} of {len(fleet.systems)} systems pass every "
                    "check; each failing check and its reason is in the system's detail above."
                )
            if report.ignored:
                st.caption("Ignored, not systems: " + ", ".join(report.ignored))
            if report.rejected:
                st.error(
                    f"Rejected {len(report.rejected)} folder(s):\n\n"
                    + "\n".join(f"- **{r.folder}**: {r.error}" for r in report.rejected)
                )
