"""Standup, Timeline and Audit log pages under AppTest, on a recorded history with known figures."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from engine import services
from engine.workspace import Workspace
from tests.app.conftest import open_page
from tests.histories import D, at, write_history


@pytest.fixture
def history(sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    monkeypatch.setenv("SWITCHYARD_ACTOR", "fixture")  # an operator of the sample workspace
    return write_history(sample_ws)


def metric(page: AppTest, label: str):
    return next(m for m in page.metric if m.label == label)


def test_standup_shows_kpis_with_targets_and_blockers(history: Workspace) -> None:
    page = open_page("standup.py")
    page.sidebar.date_input[0].set_value((D + dt.timedelta(days=1)).date()).run()
    assert not page.exception, page.exception
    now = services.overview(history, at(2, 0) - dt.timedelta(microseconds=1))
    assert now.metrics.systems_migrated == 1
    assert metric(page, "Systems migrated").value == f"{now.metrics.systems_migrated} / 52"
    assert metric(page, "Success score").value == f"{now.metrics.success_score:.2f}"
    labels = {m.label for m in page.metric}
    assert {"Validation success", "Rollbacks", "Failed migrations", "Downtime", "Migration time"} <= labels
    captions = " ".join(c.value for c in page.caption)
    assert "target >= 80.0%" in captions and "not met" in captions
    warnings = " ".join(w.value for w in page.warning)
    assert "file_upload_api" in warnings and "smoke" in warnings
    # rolled back and waiting for a new attempt: a blocker with its reason, never "Nothing is blocked"
    assert "**hello_world_api** (rolled back): on " in warnings and "Waiting for a new attempt" in warnings
    assert not any("Nothing is blocked" in s.value for s in page.success)
    assert len(page.get("plotly_chart")) == 2
    parts = json.loads(page.get("plotly_chart")[1].proto.spec)["data"][0]
    assert parts["textposition"] == "outside"  # a part at 0 has no bar: its "0.00" is written beside it
    assert "0.00" in parts["text"] or "0.50" in parts["text"]


def test_standup_on_a_fresh_workspace_says_what_is_missing(sample_ws: Workspace, monkeypatch) -> None:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    page = open_page("standup.py")
    assert metric(page, "Systems migrated").value == "0 / 52"
    assert metric(page, "Forecast finish").value == "–"
    assert any("no system validated on v2 yet" in c.value for c in page.caption)
    assert not any("seed's 0 default" in c.value for c in page.caption)  # said in words, not our jargon
    assert any("Nothing is blocked" in s.value for s in page.success)
    # before any verdict, capacity probe, migration or v2 validation: no made-up "+0.0 %" that is "met"
    for label in ("Latency change", "Throughput change", "Migration time", "Validation success"):
        tile = metric(page, label)
        assert tile.value == "–" and not tile.delta, (label, tile.value)  # a dash, the words below it
    captions = [c.value for c in page.caption if c.value.startswith("target ")]
    assert sum(c.endswith("not measured yet]") for c in captions) == 4
    assert metric(page, "Rollbacks").value == "0"  # a count of nothing is a measurement: 0


def test_timeline_shows_phases_forecast_and_sets_the_start(history: Workspace) -> None:
    page = open_page("timeline.py")
    assert metric(page, "Plan start").value == f"{D:%d %b %Y}"
    assert metric(page, "Planned finish").value == f"{D + dt.timedelta(days=20):%d %b %Y}"
    assert len(page.get("plotly_chart")) == 3
    phases, systems = (d.value for d in page.dataframe)
    assert phases["planned_start"][0] == f"{D:%a %d %b}"  # read in days and hours, no 00:00:00+00:00
    moments = systems[["due", "deployed_at", "migrated_at"]].to_numpy().ravel()
    assert all(re.fullmatch(r"\w{3} \d\d \w{3} \d\d:\d\d|–", v) for v in moments), moments  # never "None"
    assert "–" in moments
    form_date = page.date_input[0]
    form_date.set_value(dt.date(2027, 1, 4))
    page.text_input[0].input("after the freeze")
    page.button[0].click().run()
    assert not page.exception, page.exception
    assert services.overview(history).plan.start_date == dt.date(2027, 1, 4)
    event = services.list_events(history, action="plan:start_date").row(0, named=True)
    assert (event["actor"], event["reason"]) == ("fixture", "after the freeze")


def test_audit_log_hides_the_fleet_load_until_asked_and_grows_with_its_rows(sample_ws, monkeypatch) -> None:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    loads = services.list_events(sample_ws).height  # a new workspace: the sample fleet's import
    page = open_page("audit.py")
    assert page.dataframe[0].value.empty  # nothing but the fleet load happened yet
    assert any(f"({loads} of fleet loads hidden)" in c.value for c in page.caption)
    page.toggle[0].set_value(True).run()
    assert len(page.dataframe[0].value) == loads
    shown = page.dataframe[0].value
    assert not shown.isna().any().any() and "–" in set(shown["before"])  # a first event: "–", not "None"


def test_audit_log_filters_and_exports(history: Workspace) -> None:
    page = open_page("audit.py")
    page.selectbox[0].set_value("hello_world_api").run()
    page.date_input[0].set_value((D.date(), (D + dt.timedelta(days=2)).date())).run()
    assert not page.exception, page.exception
    shown = page.dataframe[0].value
    assert set(shown["system"]) == {"hello_world_api"}
    assert list(shown["action"]) == ["state:rolled_back", "state:parallel_run", "state:green_deployed"]
    page.selectbox[1].set_value("trigger:error_rate").run()
    assert list(page.dataframe[0].value["reason"]) == ["to rolled_back"]
    csv = services.events_csv(history, system="hello_world_api", since=at(0, 0))
    assert csv.decode().splitlines()[0].startswith("id,ts,actor,system,action,reason")
