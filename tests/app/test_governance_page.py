"""Hold, approval and re-judge from the Go / No-Go page (AppTest), and the hold banner on every page."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from engine import services
from engine.workspace import Workspace
from tests.app.conftest import open_page
from tests.governance.test_governance import SYSTEM, judged


@pytest.fixture
def page(sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    monkeypatch.setenv("SWITCHYARD_ACTOR", "lead")
    judged(sample_ws)
    return open_page("go_no_go.py", system=SYSTEM)


def submit(at: AppTest, form_button: str) -> None:
    next(b for b in at.button if b.label == form_button).click().run()
    assert not at.exception, at.exception


def test_hold_and_release_from_the_page(page: AppTest, sample_ws: Workspace) -> None:
    page.text_input(key="hold-reason").input("schema change applied, cannot undo")
    page.text_input(key="hold-owner").input("dba-team")
    submit(page, "Hold")
    assert any("Give a reason and tick" in e.value for e in page.error)  # no confirmation ticked
    assert services.holds(sample_ws).is_empty()
    page.checkbox(key="hold-sure").check()
    submit(page, "Hold")
    assert services.holds(sample_ws)["owner"].to_list() == ["dba-team"]
    assert any("On hold" in m.value and "dba-team" in m.value for m in page.markdown)
    # the decision buttons now explain why they refuse
    page.text_input(key="release-reason").input("checked")
    page.checkbox(key="release-sure").check()
    submit(page, "Release hold")
    assert services.holds(sample_ws).is_empty()


def test_a_go_is_approved_from_the_page(page: AppTest, sample_ws: Workspace) -> None:
    submit(page, "Approve promotion")
    assert any("Give a reason to approve" in e.value for e in page.error)
    assert services.approvals(sample_ws, SYSTEM).is_empty()
    page.text_input(key="approve-reason").input("evidence reviewed by a second lead")
    submit(page, "Approve promotion")
    approvals = services.approvals(sample_ws, SYSTEM)
    assert approvals["actor"].to_list() == ["lead"]
    assert any(c.value == "Approved by lead" for c in page.caption)


def test_rejudge_shows_both_verdicts_side_by_side(page: AppTest) -> None:
    next(n for n in page.number_input if n.label == "Max latency increase (%)").set_value(1.0)  # +1 %
    submit(page, "Re-judge")
    texts = " ".join(m.value for m in page.markdown)
    assert "Original: :green[GO]" in texts and "Re-judged: :red[NO_GO]" in texts
    changes = next(d.value for d in page.dataframe if "what" in d.value.columns)
    assert "rule.max_latency_increase" in changes["what"].to_list()


def test_a_rejudgement_made_elsewhere_is_shown_beside_the_verdict(
    sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded from the CLI (or another session): the page reads it back from the audit log."""
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    monkeypatch.setenv("SWITCHYARD_ACTOR", "lead")
    judged(sample_ws)
    services.rejudge(
        sample_ws,
        SYSTEM,
        actor="lead",
        overrides={"rule.max_latency_increase": 0.01},
        reason="what if we held latency to 1 %",
    )
    at = open_page("go_no_go.py", system=SYSTEM)
    history = next(d.value for d in at.dataframe if "re_judged" in d.value.columns)
    row = history.iloc[0]
    assert (row["original"], row["re_judged"]) == ("GO", "NO_GO")
    assert "rule.max_latency_increase 0.1 → 0.01" in row["policy_edited"]
    assert row["reason"] == "what if we held latency to 1 %" and row["by"] == "lead"


def test_a_hold_is_shown_on_every_page(sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    services.hold(sample_ws, SYSTEM, actor="lead", reason="waiting for the DBA <b>now</b>", owner="dba-team")
    app = open_page("app.py")
    banner = next(w.value for w in app.warning if "HOLD" in w.value)
    assert SYSTEM in banner and "dba-team" in banner and "<b>now</b>" in banner  # shown as typed, as text
