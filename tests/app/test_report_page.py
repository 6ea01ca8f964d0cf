"""The Post-mortem page under AppTest: scopes, the gist of the report, and the three downloads."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from streamlit.testing.v1 import AppTest

from engine.workspace import Workspace
from tests.app.conftest import open_page
from tests.histories import D, write_history

LAST_DAY = (D + dt.timedelta(days=1)).date()  # the history's second and last day


@pytest.fixture
def page(sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    monkeypatch.setenv("SWITCHYARD_ACTOR", "someone-who-is-a-viewer")  # exporting needs no operator
    write_history(sample_ws)
    at = open_page("report.py")
    at.date_input(key="report_day").set_value(LAST_DAY).run()
    assert not at.exception, at.exception
    return at


def test_whole_migration_then_one_system(page: AppTest) -> None:
    assert page.subheader[0].value == "Post-mortem: the whole migration"
    assert next(m for m in page.metric if m.label == "Rollbacks").value == "2"
    assert any("1 of 52 systems migrated" in md.value for md in page.markdown)
    buttons = page.get("download_button")
    assert [b.proto.label for b in buttons] == ["MD", "HTML", "PDF"]
    assert all(b.proto.deferred_file_id for b in buttons)  # built on click, not on every page run

    page.segmented_control(key="report_kind").set_value("A system").run()
    page.selectbox(key="report_system").set_value("hello_world_api").run()
    assert not page.exception, page.exception
    assert page.subheader[0].value == "Post-mortem: system hello_world_api"
    decisions = page.dataframe[0].value
    assert set(decisions["system"]) == {"hello_world_api"}
    assert "trigger:error_rate" in set(decisions["actor"])


def test_a_phase_before_the_history_has_nothing_decided(page: AppTest) -> None:
    page.segmented_control(key="report_kind").set_value("A phase").run()
    page.selectbox(key="report_phase").set_value(2).run()
    assert not page.exception, page.exception
    assert page.subheader[0].value == "Post-mortem: phase 2"
    assert next(m for m in page.metric if m.label == "Migrated").value == "0 / 12"
    assert any("No decisions recorded yet." in c.value for c in page.caption)


def annotations(spec: dict) -> list[dict]:
    return spec["layout"].get("annotations", [])


def test_each_judged_system_is_drawn_at_a_glance_as_on_go_no_go(page: AppTest) -> None:
    """Issue 16 point 9: the Go / No-Go chart in the post-mortem, the page's too (not only its files)."""
    shown = " ".join(m.value for m in page.markdown)
    assert "hello_world_api: **:red[NO_GO]**" in shown and "todo_api_system: **:green[GO]**" in shown
    charts = [json.loads(c.proto.spec) for c in page.get("plotly_chart")]
    glances = [
        c for c in charts if any("<b>Latency change</b>" in a["text"] for a in c["layout"]["annotations"])
    ]
    assert len(glances) == 2  # the newest verdict of each judged system
    notes = [a["text"] for a in glances[0]["layout"]["annotations"]]  # hello_world_api's: throughput -30 %
    assert notes[0].startswith("<b>Throughput change</b>  -30.0%")

    page.segmented_control(key="report_kind").set_value("A system").run()
    page.selectbox(key="report_system").set_value("simple_rest_api").run()  # never judged: no chart
    assert not page.exception, page.exception
    assert not page.get("plotly_chart")
