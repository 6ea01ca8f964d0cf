"""User-supplied text renders as text on the pages, never as HTML.

System names cannot carry markup (they are plain identifiers, see the bad
input corpus), but descriptions and versions in blueprints, reasons, notes and
actor names are free text. They reach the pages through dataframes (shown as
cell text), widgets and markdown without ``unsafe_allow_html`` (Streamlit
escapes HTML there). The one guard that keeps it so: no page sends anything
through ``unsafe_allow_html``, ``st.html`` or a component (asserted
here, so a new raw-HTML path fails this test until reviewed and listed in
RAW_HTML_ALLOWED with what it interpolates). tests/browser/test_escaping.py checks the same in a real browser.
"""

from __future__ import annotations

import ast
import datetime as dt
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import services
from engine.workspace import REPO_ROOT, SAMPLE_FLEET_DIR, Workspace
from tests.app.conftest import open_page

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
PAGES = REPO_ROOT / "pages"
RAW_HTML_ALLOWED: dict[str, set[str]] = {
    # file: the expressions interpolated into its raw-HTML calls, each reviewed as engine-computed.
    # Empty: the Go / No-Go verdict heading is Streamlit's colour markdown (":green[GO]"), not HTML.
}


def raw_html_calls(path: Path) -> list[ast.Call]:
    """Calls in ``path`` that can put raw HTML on a page."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = ast.unparse(node.func)
        unsafe = any(
            k.arg == "unsafe_allow_html"
            and not (isinstance(k.value, ast.Constant) and k.value.value is False)
            for k in node.keywords
        )
        if unsafe or func.endswith(("st.html", "components.html", "components.iframe", "components.v1.html")):
            found.append(node)
    return found


def test_no_page_sends_user_text_through_raw_html() -> None:
    seen: dict[str, set[str]] = {}
    for path in sorted([*PAGES.glob("*.py"), REPO_ROOT / "app.py"]):
        for call in raw_html_calls(path):
            interpolated = {
                ast.unparse(v.value)
                for a in call.args
                for v in ast.walk(a)
                if isinstance(v, ast.FormattedValue)
            }
            seen.setdefault(path.name, set()).update(interpolated)
    assert seen == RAW_HTML_ALLOWED, (
        "a page puts raw HTML on screen: escape every user-supplied string in it (html.escape) and add it "
        f"to RAW_HTML_ALLOWED once reviewed: {seen}"
    )


@pytest.fixture
def xss_ws(sample_ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The sample workspace with markup in a blueprint's description and version, in reasons and in a name."""
    fleet = tmp_path / "fleet"
    shutil.copytree(SAMPLE_FLEET_DIR / "hello_world_api", fleet / "xss_api")
    blueprint = fleet / "xss_api" / "blueprint.yaml"
    text = blueprint.read_text(encoding="utf-8").replace("name: hello_world_api", "name: xss_api")
    text = text.replace("version: 1.0.0", f"version: '{IMG}'")
    lines = [
        f"  description: '{SCRIPT} **bold** [link](javascript:alert(3))'"
        if ln.startswith("  description:")
        else ln
        for ln in text.splitlines()
    ]
    blueprint.write_text("\n".join(lines) + "\n", encoding="utf-8")
    services.import_fleet(sample_ws, fleet, actor="tester")
    services.set_plan_start(sample_ws, dt.date(2026, 1, 5), actor="tester", reason=f"{SCRIPT} {IMG}")
    services.set_role(sample_ws, SCRIPT, "viewer", actor="tester")
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    monkeypatch.setenv("SWITCHYARD_ACTOR", "tester")
    return sample_ws


def assert_shown_as_text(page: AppTest) -> None:
    """No element renders HTML; markdown holding the markup has HTML off (Streamlit escapes it)."""
    assert not page.get("html")
    for md in page.markdown:
        if "<script" in md.value or "<img" in md.value:
            assert md.proto.allow_html is False, md.value


def test_inventory_shows_markup_in_a_description_as_text(xss_ws: Workspace) -> None:
    page = open_page("inventory.py")
    page.selectbox(key="inventory_system").select("xss_api").run()
    assert not page.exception, page.exception
    shown = [md.value for md in page.markdown if SCRIPT in md.value]
    assert shown and IMG in shown[0], [md.value for md in page.markdown]
    assert any(SCRIPT in c.value for c in page.code)  # the blueprint as code: text by construction
    page.text_input[0].input(SCRIPT).run()  # searching for markup finds nothing and breaks nothing
    assert not page.exception and {m.label: m.value for m in page.metric}["Shown"] == "0"
    assert_shown_as_text(page)


def test_audit_log_shows_markup_in_reasons_and_names_as_text(xss_ws: Workspace) -> None:
    page = open_page("audit.py")
    events = page.dataframe[0].value
    reasons = [r for r in events["reason"].tolist() if r]
    assert f"{SCRIPT} {IMG}" in reasons
    assert f"{SCRIPT} is now viewer" in reasons
    assert_shown_as_text(page)
    csv = services.events_csv(xss_ws).decode()
    assert SCRIPT in csv  # the export keeps the text as it was typed; it is data, not a page
