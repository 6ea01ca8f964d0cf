"""Markup in user-supplied text shows as text in a real browser: no script runs, no element is injected.

A blueprint whose description and version carry ``<script>`` and ``<img onerror>``,
and audit events whose reason carries them, are opened on the Inventory and
Audit log pages in Debian's chromium. Any ``alert`` would open a dialog; none
may, and the literal text must be on screen. (tests/reliability/test_escaping.py
checks the same under AppTest and guards the pages' raw-HTML calls.)
"""

from __future__ import annotations

import datetime as dt
import getpass
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import services
from engine.workspace import SAMPLE_FLEET_DIR
from tests.browser.test_journey import LONG, choose, go

pytestmark = pytest.mark.browser

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'


def test_markup_in_descriptions_and_reasons_renders_as_text(
    playwright_browser: Any, app: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=LONG)
    page = playwright_browser.new_page(viewport={"width": 1500, "height": 1000})
    page.set_default_timeout(LONG)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(app.url)  # the first start creates the workspace
        expect(page.get_by_test_id("stSidebar").get_by_text("Systems in fleet")).to_be_visible()
        operator = getpass.getuser()  # the server's OS user, the workspace's first operator
        fleet = tmp_path / "fleet"
        shutil.copytree(SAMPLE_FLEET_DIR / "hello_world_api", fleet / "xss_api")
        blueprint = fleet / "xss_api" / "blueprint.yaml"
        text = blueprint.read_text(encoding="utf-8").replace("name: hello_world_api", "name: xss_api")
        lines = [
            f"  description: '{SCRIPT} {IMG}'" if ln.startswith("  description:") else ln
            for ln in text.splitlines()
        ]
        blueprint.write_text("\n".join(lines) + "\n", encoding="utf-8")
        services.import_fleet(app.ws, fleet, actor=operator)
        services.set_plan_start(app.ws, dt.date(2026, 1, 5), actor=operator, reason=f"{SCRIPT} {IMG}")

        go(page, "Inventory")
        choose(page, "System", "xss_api")
        expect(page.get_by_text(f"{SCRIPT} {IMG}").first).to_be_visible()
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("[data-testid='stMarkdown'] script").count() == 0

        go(page, "Audit log")
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
        page.wait_for_timeout(1000)  # let the grid draw its cells
        assert page.locator("img[src='x']").count() == 0
        assert dialogs == []
    except Exception:
        page.screenshot(path=tmp_path / "failure.png", full_page=True)
        print(f"\nscreenshot in {tmp_path}\nstreamlit log:\n{app.log_tail()}")
        raise
    finally:
        page.close()
