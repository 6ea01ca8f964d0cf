"""app.py draws the sidebar and each page inside one store connection (engine.store.db.one_connection).

AppTest runs app.py's ``st.navigation`` and switches page in one session; each
render opens the DuckDB file once, whatever the page reads, and draws what the
page draws (the page tests run the page files alone: a fresh connection per
service call, as the CLI does).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import services
from engine.store import db
from engine.workspace import Workspace
from tests.app.conftest import ROOT
from tests.histories import D

CONVERTED = "todo_api_system"

PAGES = [p.name for p in sorted((ROOT / "pages").glob("*.py")) if not p.name.startswith("_")]


@pytest.fixture
def history(sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The sample fleet with a converted, validated system and tests/histories' plan and moves."""
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    monkeypatch.setenv("SWITCHYARD_ACTOR", "fixture")  # an operator of the sample workspace
    services.convert_systems(sample_ws, [CONVERTED], actor="fixture")
    services.validate_systems_v2(sample_ws, [CONVERTED], actor="fixture")
    services.set_plan_start(sample_ws, D.date(), actor="lead")
    return sample_ws


def test_every_page_through_app_py_opens_the_store_once_per_render(
    history: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.run()  # the first run initialises the workspace (cached per server): not counted
    assert not app.exception, app.exception
    opened: list[Path] = []
    real = db.duckdb.connect

    def counting(path: str = ":memory:", *args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - duckdb's own
        opened.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(db.duckdb, "connect", counting)
    titles = [app.main.title[0].value]
    for page in PAGES:
        opened.clear()
        app.switch_page(f"pages/{page}").run()
        assert not app.exception, (page, app.exception)
        assert opened.count(history.db_path) == 1, (page, opened)
        titles.append(app.main.title[0].value)
    assert len(set(titles[1:])) == len(PAGES), titles  # each page drew itself
