"""Every number on every page carries its unit (issue 17, done-when): a sweep of all pages under AppTest.

On a workspace with a judged run (todo_api_system GO on a stored 60 s run, phase 1 converted and
validated), each page is drawn and everything it shows is read: a tile, a table cell or a sentence
holding a bare fraction (``0.0011``, ``0.8531``), a float column drawn without a format, a cell that
says ``None`` or ``nan``, or a chart axis of rates or changes not in percent, fails the sweep with the
page and the figure. The seed's success score is the one number read without a unit (a score from 0 to
1, its parts shown as such); the audit log's before/after columns are the events' JSON, raw by design.
"""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from engine import services
from engine.workspace import Workspace
from tests.app.conftest import open_page
from tests.governance.test_governance import SYSTEM, judged

PAGES = [
    "standup.py",
    "go_no_go.py",
    "inventory.py",
    "conversion.py",
    "validation.py",
    "timeline.py",
    "risks.py",
    "report.py",
    "audit.py",
]
BARE = re.compile(r"(?<![\w.:/#-])-?\d+\.\d{3,}(?!\d)(?!\s?(ms|%|pp|x\b|s\b|h\b|min\b|/ ?s|req))")
"""A figure with three or more decimals and no unit after it: a fraction or a latency in seconds."""
UNITLESS_TILES = {"Success score"}  # the seed's score, a number from 0 to 1 by its definition
RAW_JSON = {"before", "after"}  # the audit events' documents, shown as recorded


@pytest.fixture
def judged_ws(sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    names = services.select_systems(sample_ws, phase=1)
    services.convert_systems(sample_ws, names, actor="lead")
    services.validate_systems_v2(sample_ws, names, actor="lead")
    judged(sample_ws)
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    monkeypatch.setenv("SWITCHYARD_ACTOR", "lead")
    return sample_ws


def without_units(at: AppTest, page: str) -> list[str]:
    """What ``page`` shows without its unit, one line each."""
    found = []
    for tile in at.metric:
        if tile.label not in UNITLESS_TILES and re.fullmatch(r"-?\d+\.\d+", tile.value.strip()):
            found.append(f"{page}: tile {tile.label!r} reads {tile.value!r}")
        if tile.value.strip() in ("None", "nan"):
            found.append(f"{page}: tile {tile.label!r} reads {tile.value!r}")
    for table in at.dataframe:
        config = json.loads(table.proto.columns or "{}")
        shown = list(table.proto.column_order) or list(table.value.columns)
        frame = table.value[[c for c in shown if c in table.value.columns and c not in RAW_JSON]]
        for column, dtype in frame.dtypes.items():
            cells = frame[column]
            if str(dtype).startswith("float"):
                if not (config.get(column) or {}).get("type_config", {}).get("format"):
                    found.append(f"{page}: column {column!r} is drawn as bare numbers {list(cells.head(2))}")
            elif cells.isna().any():  # a missing number or moment is drawn "None" in the browser
                found.append(f"{page}: column {column!r} draws an empty cell as None")
            elif str(dtype) in ("object", "str", "string"):
                bare = next((str(v) for v in cells if str(v) in ("None", "nan") or BARE.search(str(v))), None)
                if bare is not None:
                    found.append(f"{page}: column {column!r} shows {bare[:80]!r}")
    for element in [*at.markdown, *at.caption, *at.info, *at.warning, *at.success, *at.error]:
        bare = BARE.search(element.value)
        if bare:
            found.append(f"{page}: {bare.group(0)!r} without a unit in {element.value[:100]!r}")
    for chart in at.get("plotly_chart"):
        for key, axis in json.loads(chart.proto.spec).get("layout", {}).items():
            if not (key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict)):
                continue
            title = axis.get("title") or {}
            title = title.get("text", "") if isinstance(title, dict) else str(title)
            scale = axis.get("tickformat", "") + axis.get("ticksuffix", "")
            if re.search(r"\brate\b|change", title) and "%" not in scale:
                found.append(f"{page}: chart axis {title!r} is not in percent")
    return found


def test_every_page_shows_every_figure_with_its_unit(judged_ws: Workspace) -> None:
    found = []
    for page in PAGES:
        at = open_page(page, system=SYSTEM if page == "go_no_go.py" else None, timeout=120)
        assert at.metric or at.dataframe, page  # the page drew its figures
        found += without_units(at, page)
    assert not found, "\n".join(found)


BEFORE_ISSUE_17 = """
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

st.metric("p50", "0.8531")
st.dataframe(pd.DataFrame({"criterion": ["error_rate"], "observed": [0.0011], "threshold": [0.1]}))
st.dataframe(pd.DataFrame({"version": ["old", "new"], "mismatch_rate": [None, "0.00106"]}))
st.caption("Migration time 0.12345 < 2")
st.plotly_chart(go.Figure(layout={"yaxis": {"title": {"text": "error rate"}, "range": [-1, 1]}}))
"""


def test_the_sweep_catches_what_the_pages_showed_before_issue_17() -> None:
    """p50 with four decimals and no ms, criteria in fractions, mismatch 'None' for old, an error-rate
    axis from -1 to 1, a figure with no unit in a sentence: each is a line of the sweep's failure."""
    at = AppTest.from_string(BEFORE_ISSUE_17)
    at.run()
    found = "\n".join(without_units(at, "old"))
    for said in (
        "tile 'p50' reads '0.8531'",
        "column 'observed' is drawn as bare numbers [0.0011]",
        "column 'threshold' is drawn as bare numbers",
        "column 'mismatch_rate' draws an empty cell as None",
        "'0.12345' without a unit",
        "chart axis 'error rate' is not in percent",
    ):
        assert said in found, (said, found)
    assert not BARE.search("p50 0.853 ms") and not BARE.search("+16.5%") and not BARE.search("0.00106 ms")
    assert not BARE.search("run parallel-20261205T070132-6e91b8")
