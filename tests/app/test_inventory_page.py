"""The Inventory page under AppTest: table, charts, filters, detail view, import report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import services
from engine.workspace import SAMPLE_FLEET_DIR, Workspace
from tests.app.conftest import open_page


@pytest.fixture
def page(sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    return open_page("inventory.py", timeout=30)


def test_page_shows_fleet_metrics_charts_and_table(page: AppTest) -> None:
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["Systems"] == "52"
    rate = float(metrics["v1 validation success rate"].rstrip("%")) / 100
    assert 0.20 <= rate <= 0.35
    assert len(page.get("plotly_chart")) == 2
    assert page.dataframe[0].value.shape[0] == 52


def test_filter_by_category_narrows_table(page: AppTest) -> None:
    page.multiselect[0].select("monitoring").run()
    assert page.dataframe[0].value.shape[0] == 5
    assert {m.label: m.value for m in page.metric}["Shown"] == "5"


def test_detail_shows_blueprint_and_failed_checks(page: AppTest, sample_ws: Workspace) -> None:
    inventory = services.inventory(sample_ws)
    failing = inventory.filter(~inventory["v1_passed"])["name"][0]
    page.selectbox[0].select(failing).run()
    assert not page.exception
    assert any("system:" in c.value and failing in c.value for c in page.code)
    checks = page.dataframe[1].value
    assert (~checks["passed"]).sum() >= 1


def test_import_reports_rejected_folders(page: AppTest, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    shutil.copytree(SAMPLE_FLEET_DIR / "hello_world_api", fleet / "hello_world_api")
    (fleet / "bad_one").mkdir()
    (fleet / "bad_one" / "blueprint.yaml").write_text("system: 3\n", encoding="utf-8")
    page.text_input(key="import_folder").input(str(fleet)).run()
    page.button(key="import_fleet").click().run()
    assert not page.exception
    assert any("refreshed 1" in s.value for s in page.success)
    assert any("bad_one" in e.value for e in page.error)


def test_import_of_missing_folder_is_a_red_message(page: AppTest, tmp_path: Path) -> None:
    page.text_input(key="import_folder").input(str(tmp_path / "missing")).run()
    page.button(key="import_fleet").click().run()
    assert not page.exception
    assert any("missing" in e.value for e in page.error)
