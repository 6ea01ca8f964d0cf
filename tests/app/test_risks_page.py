"""Risks page under AppTest on a recorded history: the matrix with live evidence, playbook ticks as events."""

from __future__ import annotations

import datetime as dt

import pytest

from engine import services
from engine.workspace import Workspace
from tests.app.conftest import open_page
from tests.histories import D, write_history

KEY = "tick_data_corruption_stop_migration"


@pytest.fixture
def history(sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    monkeypatch.setenv("SWITCHYARD_ACTOR", "fixture")  # an operator of the sample workspace
    return write_history(sample_ws)


def test_the_matrix_shows_materialised_risks_with_their_systems(history: Workspace) -> None:
    page = open_page("risks.py")
    page.sidebar.date_input[0].set_value((D + dt.timedelta(days=1)).date()).run()  # end of day 1
    assert not page.exception, page.exception
    headings = [m.value for m in page.markdown if "**" in m.value and "-badge[" in m.value]
    regression = next(h for h in headings if "Performance regression" in h)
    assert (
        ":red-badge[high]" in regression
        and "materialised]" in regression
        and "not materialised" not in regression
    )
    knowledge = next(h for h in headings if "Team knowledge gap" in h)
    assert ":orange-badge[medium]" in knowledge and "not materialised" in knowledge  # nothing converted
    evidence = " ".join(m.value for m in page.markdown)
    assert "hello_world_api: NO_GO on run r1" in evidence and "latency change +50.0%" in evidence
    assert "**Owner:** Performance Team" in evidence and "gradual rollout" in evidence
    captions = [c.value for c in page.caption]
    assert "Systems: hello_world_api" in captions
    assert "Systems: simple_rest_api" in captions  # data loss: the rollback that could not verify
    assert page.metric[0].value == "4 of 5"


def test_an_operator_ticks_and_unticks_a_playbook_step(history: Workspace) -> None:
    page = open_page("risks.py")
    box = page.checkbox(key=KEY)
    assert not box.value and not box.disabled
    page.text_input(key="risks_reason").input("incident 42")
    box.check().run()
    assert not page.exception, page.exception
    step = services.playbooks(history)[0].steps[0]
    assert (step.done, step.actor, step.reason) == (True, "fixture", "incident 42")
    assert page.checkbox(key=KEY).value
    assert any("Ticked: Immediately stop migration" in s.value for s in page.success)
    assert page.text_input(key="risks_reason").value == ""  # used once

    page.checkbox(key=KEY).uncheck().run()  # no reason given: refused, still ticked
    assert any("untick needs a reason" in e.value for e in page.error)
    assert page.checkbox(key=KEY).value and services.playbooks(history)[0].steps[0].done

    page.text_input(key="risks_reason").input("wrong incident")
    page.checkbox(key=KEY).uncheck().run()
    assert not page.checkbox(key=KEY).value
    events = services.list_events(history, action="playbook:data_corruption:stop_migration")
    assert events["reason"].to_list() == ["wrong incident", "incident 42"]
    assert set(events["actor"]) == {"fixture"}


def test_a_viewer_sees_every_checkbox_disabled_and_why(history: Workspace, monkeypatch) -> None:
    monkeypatch.setenv("SWITCHYARD_ACTOR", "visitor")
    page = open_page("risks.py")
    assert any("You (visitor) are a viewer" in i.value for i in page.info)
    assert len(page.checkbox) == 3 * 6 + 12
    assert all(box.disabled for box in page.checkbox)
    assert "roles.toml" in page.checkbox(key=KEY).help


def test_optimisations_show_measured_figures_or_say_there_are_none(history: Workspace) -> None:
    page = open_page("risks.py")
    texts = [m.value for m in page.markdown]
    for area in ("Buffer Sizes", "Concurrency", "Batch Sizes", "Checkpoint Frequency"):
        assert any(t.startswith(f"**{area}**: ") for t in texts), area
    # no parallel run in this history: three areas say so rather than show a number
    assert texts.count("_no measurements yet: no parallel run with samples on a converted system_") == 3
    # simple_rest_api spent 30 minutes in emergency before it was restored: a recovery time
    assert any(t.startswith("- **simple_rest_api**: 1 emergency(ies) lasted 30 min at most.") for t in texts)
