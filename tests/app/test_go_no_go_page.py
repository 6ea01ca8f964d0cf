"""Go/No-Go page under AppTest, on a real deployment with a real (short) parallel run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import services
from engine.errors import AccessDeniedError, StateConflictError
from engine.workspace import Workspace

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "go_no_go.py")


@pytest.fixture
def judged(regressed_ws, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ws = regressed_ws
    services.deploy(ws, "auth_token_api", actor="lead")
    services.parallel_run(ws, "auth_token_api", actor="lead", duration_s=3, bucket_s=1, rps=80)
    services.judge_system(ws, "auth_token_api", actor="lead")
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(ws.root))
    return ws


def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    at.selectbox[0].set_value("auth_token_api").run()
    assert not at.exception, at.exception
    return at


def submit(at: AppTest, label: str) -> None:
    next(b for b in at.button if b.label == label).click().run()


def test_page_shows_the_evidence_and_the_verdict(judged: Workspace) -> None:
    at = open_page()
    assert any("NO_GO" in m.value for m in at.markdown)
    assert any("mismatch" in m.value for m in at.markdown)  # the failing criterion is named in the reasons
    assert len(at.get("plotly_chart")) == 4  # distribution, percentiles, error rate, throughput
    frames = [df.value for df in at.dataframe]
    assert any("Responses that differ" in list(f["criterion"]) for f in frames if "criterion" in f.columns)


def test_rollback_needs_confirmation_then_runs_as_a_job(judged: Workspace) -> None:
    at = open_page()
    submit(at, "Roll back")
    assert any("Tick the confirmation" in e.value for e in at.error)
    assert services.status(judged, "auth_token_api").state == "judged"  # nothing happened

    at.checkbox(key="rollback-sure").check()  # form values travel with the submit
    submit(at, "Roll back")
    assert not at.exception
    deadline = time.monotonic() + 60
    while services.status(judged, "auth_token_api").state != "rolled_back":
        assert time.monotonic() < deadline, "the rollback job never finished"
        time.sleep(0.2)
    last = services.list_events(judged, system="auth_token_api", action="state:rolled_back", limit=1)
    assert last["reason"][0] == "team decision"


def test_a_stale_click_changes_nothing(judged: Workspace) -> None:
    seen = services.status(judged, "auth_token_api").version
    services.judge_system(judged, "auth_token_api", actor="someone else")  # the state moved on meanwhile
    with pytest.raises(StateConflictError, match="reload"):
        services.rollback(
            judged, "auth_token_api", actor="lead", reason="team decision", expected_version=seen
        )
    status = services.status(judged, "auth_token_api")
    assert status.state == "judged" and {p["role"] for p in status.processes} == {"blue", "green"}


def test_a_viewer_sees_the_evidence_with_every_button_disabled(
    judged: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHYARD_ACTOR", "visitor")
    at = open_page()
    assert any("NO_GO" in m.value for m in at.markdown)  # the evidence is all there
    assert any("You (visitor) are a viewer" in i.value for i in at.info)
    acting = ["Team notified: acknowledge", "Run checklist", "Deploy", "Start parallel run", "Stop the run"]
    buttons = {b.label: b for b in at.button}
    for label in [*acting, "Promote", "Roll back"]:
        assert buttons[label].disabled, label
        assert "roles.toml" in buttons[label].help, label
    # a click that got through anyway (an old tab, a crafted request) is refused by the engine
    with pytest.raises(AccessDeniedError):
        services.rollback(judged, "auth_token_api", actor="visitor", reason="team decision")
    assert services.status(judged, "auth_token_api").state == "judged"
