"""Driving one page under AppTest, shared by every page test (tests/app and the reliability tests).

AppTest does not follow ``st.navigation`` across pages (DESIGN 11): each test
runs one page file as a script. Tests elsewhere import :func:`open_page` from
here (``from tests.app.conftest import open_page``), as tests/notify's helpers are.
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "pages"


def page_path(page: str) -> Path:
    """``page`` as a file: a page of pages/ by its name ("go_no_go.py"), or a path from the repository
    root ("app.py", "pages/conversion.py")."""
    return ROOT / page if page == "app.py" or "/" in page else PAGES / page


AS_APP_DRAWS_IT = """
import runpy
from engine import services
from engine.workspace import Workspace
with services.one_connection(Workspace.at()):
    runpy.run_path({path!r}, run_name="__main__")
"""
"""A page as app.py's navigation runs it: its reads share one store connection (engine.store.db
one_connection), a dozen opens of the DuckDB file fewer per run."""


def open_page(
    page: str, *, system: str | None = None, user: dict | None = None, timeout: float = 60
) -> AppTest:
    """Run ``page`` once and fail on any exception it raised.

    ``user`` seeds ``st.user`` (what an identity provider's login gives the
    app); ``system`` is then picked in the page's first select box (the
    system a page works on), again failing on any exception.
    """
    path = page_path(page)
    if path.name == "app.py":
        at = AppTest.from_file(str(path), default_timeout=timeout)
    else:  # inside one store connection, as app.py draws every page
        at = AppTest.from_string(AS_APP_DRAWS_IT.format(path=str(path)), default_timeout=timeout)
    if user is not None:
        at.user = user
    at.run()
    assert not at.exception, at.exception
    if system is not None:
        at.selectbox[0].set_value(system).run()
        assert not at.exception, at.exception
    return at
