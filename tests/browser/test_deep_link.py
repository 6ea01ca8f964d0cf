"""A first visitor who opens a page's URL directly (a bookmark, a link in the digest) gets the app.

Until some session has run app.py, Streamlit treats ``pages/`` as a v1
multipage app and runs the linked script alone: its own file list as the
sidebar (private modules included), no app sidebar, no hold banners. This
module has a server of its own, and its first request is the deep link; the
page then works from there (the Argo Rollouts download, recorded as an export).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from engine import services
from tests.browser.test_journey import LONG

pytestmark = pytest.mark.browser


def test_a_deep_link_as_the_first_request_opens_inside_the_app(playwright_browser: Any, app: Any) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=LONG)
    page = playwright_browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(LONG)
    try:
        page.goto(f"{app.url}/go_no_go")
        expect(page.get_by_role("heading", name="Go / No-Go").first).to_be_visible()
        nav = page.get_by_test_id("stSidebarNav")
        expect(nav.get_by_role("link", name="Standup", exact=True)).to_be_visible()  # app.py's titles
        expect(nav.get_by_role("link", name="Audit log", exact=True)).to_be_visible()
        expect(nav.get_by_text("shared", exact=True)).to_have_count(0)  # not the pages/ file list
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_test_id("stMetric").filter(has_text="Systems in fleet")).to_contain_text("52")
        assert page.url.endswith("/go_no_go")

        # and the page works from there: the Argo Rollouts download is the export, in the audit log
        page.get_by_text("Run this on Kubernetes (Argo Rollouts)").click()
        with page.expect_download() as download:
            page.get_by_role("button", name="Download the YAML").click()
        assert download.value.suggested_filename == "hello_world_api-argo-canary.yaml"
        assert "kind: Rollout" in Path(download.value.path()).read_text()
        # the click's callback records it in the server's rerun, which may end after the file arrived
        deadline = time.monotonic() + 30
        while services.list_events(app.ws, action="export:argo").is_empty():
            assert time.monotonic() < deadline, "the download was not recorded as an export"
            time.sleep(0.2)
        exports = services.list_events(app.ws, action="export:argo")
        assert exports["system"].to_list() == ["hello_world_api"]
    except Exception:
        print(f"\nstreamlit log:\n{app.log_tail()}")
        raise
    finally:
        page.close()
