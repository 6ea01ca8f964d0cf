"""Conversion and Validation pages under AppTest: convert with progress, compare, validate, see the gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from engine import access, services
from engine.workspace import SAMPLE_FLEET_DIR, Workspace
from tests.app.conftest import open_page

PAGES = Path(__file__).resolve().parents[2] / "pages"


@pytest.fixture
def env(sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    return sample_ws


def test_convert_a_phase_from_the_page(env: Workspace) -> None:
    at = open_page("conversion.py")
    assert any("Not converted yet" in i.value for i in at.info)
    at.radio(key="convert_scope").set_value("a phase").run()
    at.button(key="convert").click().run()
    assert not at.exception
    assert any("Converted 3 system(s)" in s.value for s in at.success)
    states = services.inventory(env).filter(pl.col("phase") == 1)["state"].to_list()
    assert states == ["converted"] * 3
    assert any("schema_version" in c.value for c in at.code)
    assert [m.label for m in at.metric] == ["Errors", "Warnings", "Info"]


def test_validation_page_shows_v1_vs_v2_and_gate(env: Workspace) -> None:
    names = services.select_systems(env, phase=1)
    services.convert_systems(env, names, actor="t")
    services.validate_systems_v2(env, names, actor="t")
    at = open_page("validation.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["v2 validation success rate"] == "100.0%"
    assert metrics["Converted and validated"] == "3 / 52"
    assert len(at.get("plotly_chart")) == 1
    bars = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    v1 = next(b for b in bars if b["name"] == "v1")  # monitoring passes nothing in v1: a bar of 0 height
    assert "0%" in v1["text"] and all(b["textposition"] == "outside" for b in bars)  # its "0%" still shows


def test_validate_button_before_conversion_is_a_red_message(env: Workspace) -> None:
    at = open_page("validation.py")
    at.button(key="validate_v2").click().run()
    assert not at.exception
    assert any("convert these systems first" in e.value for e in at.error)


def test_validation_page_shows_the_request_and_both_answers_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hello_world_api converted, then its v1 greeter changed to say Howdy: the evidence, on the page."""
    fleet = tmp_path / "fleet"
    shutil.copytree(SAMPLE_FLEET_DIR / "hello_world_api", fleet / "hello_world_api")
    ws = Workspace(tmp_path / "ws")
    services.init_workspace(ws, fleet, actor="tester")
    access.write_roles(ws, access.Roles(operators=["tester", services.default_actor()]))
    services.convert_systems(ws, ["hello_world_api"], actor="tester")
    greeter = fleet / "hello_world_api" / "components" / "greeter.py"
    greeter.write_text(
        greeter.read_text(encoding="utf-8").replace('"Hello, "', '"Howdy, "'), encoding="utf-8"
    )
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(ws.root))
    at = open_page("validation.py")
    at.button(key="validate_v2").click().run()
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown]
    assert "**Requests v1 and v2 answered differently** (3 shown)" in shown
    assert (
        shown.count("**v1 (RPC) answered** · HTTP 200")
        == shown.count("**v2 (ports) answered** · HTTP 200")
        == 3
    )
    request, old, new = (json.loads(j.value) for j in at.json[:3])  # the request, then v1's and v2's answer
    assert request == {"name": "user-0"}
    assert old["data"]["name"] == "Howdy, user-0!" and new["data"]["name"] == "Hello, user-0!"
    assert any("equivalence" in c.value for c in at.caption)  # the gate's blocking checks, from the policy
    blocked = at.dataframe[0].value
    assert blocked["v2_blocked_by"].to_list() == ["equivalence gateway.hello"]  # why, in the blocked list


def test_after_converting_validation_opens_on_the_converted_system(env: Workspace) -> None:
    """Converting hello_world_api, then opening Validation, showed another system and said nothing was
    converted: the session's system in focus now carries over, and what waits for the gate is named."""
    conversion = open_page("conversion.py")
    conversion.selectbox(key="convert_system").set_value("simple_rest_api").run()
    conversion.button(key="convert").click().run()
    assert not conversion.exception, conversion.exception
    assert conversion.session_state["focus-system"] == "simple_rest_api"

    validation = AppTest.from_file(str(PAGES / "validation.py"), default_timeout=60)
    validation.session_state["focus-system"] = "simple_rest_api"  # the same session, another page
    validation.run()
    assert not validation.exception, validation.exception
    assert validation.selectbox(key="validation_system").value == "simple_rest_api"
    waiting = " ".join(i.value for i in validation.info)
    assert "Converted, not validated yet: simple_rest_api" in waiting
    assert "No system has been converted" not in waiting
