"""Exposure of the app itself: ``streamlit run app.py`` listens on loopback only, and a visitor from
another address (here: named by a proxy on loopback in X-Forwarded-For, which the server trusts
from 127.0.0.1 only) is a viewer when no identity provider is configured.

The server is the ``app`` fixture's, started without ``--server.address``: the
repo's ``.streamlit/config.toml`` decides where it listens.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine import services
from tests.browser.test_journey import LONG
from tests.reliability.test_loopback import listening_sockets, sockets_of

pytestmark = pytest.mark.browser
REMOTE = "203.0.113.9"


def test_the_app_listens_on_loopback_only_by_default(app: Any) -> None:
    listening = listening_sockets()
    mine = [listening[i] for i in sockets_of(app.pid) if i in listening]
    port = int(app.url.rsplit(":", 1)[1])
    assert ("127.0.0.1", port) in mine, mine
    assert all(address == "127.0.0.1" for address, _ in mine), mine  # not 0.0.0.0, not ::


def test_a_visitor_from_another_address_is_a_viewer_and_is_told_why(
    playwright_browser: Any, app: Any
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=LONG)
    proxied = playwright_browser.new_context(
        viewport={"width": 1400, "height": 900}, extra_http_headers={"X-Forwarded-For": REMOTE}
    )
    local = playwright_browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = proxied.new_page()
        page.set_default_timeout(LONG)
        page.goto(f"{app.url}/conversion")
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar).to_contain_text(f"anonymous from {REMOTE} (no identity provider) · viewer")
        expect(sidebar).to_contain_text(f"You reach this app from another machine ({REMOTE})")
        expect(page.get_by_role("button", name="Convert")).to_be_disabled()
        expect(page.get_by_test_id("stAlertContentInfo").first).to_contain_text("identity provider")

        page = local.new_page()  # the same server, from this machine: the OS user, an operator
        page.set_default_timeout(LONG)
        page.goto(f"{app.url}/conversion")
        expect(page.get_by_test_id("stSidebar")).to_contain_text(f"{services.default_actor()} · operator")
        expect(page.get_by_role("button", name="Convert")).to_be_enabled()
    except Exception:
        print(f"\nstreamlit log:\n{app.log_tail()}")
        raise
    finally:
        proxied.close()
        local.close()
