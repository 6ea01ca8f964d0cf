"""Roles on the pages: a viewer sees every page with its state-changing buttons disabled, and why.

Who the visitor is comes from the identity provider when one is configured
(``st.user``, seeded through ``AppTest.user``), else from the OS user
($SWITCHYARD_ACTOR here).
"""

from __future__ import annotations

import pytest

from engine import access, services
from engine.workspace import Workspace
from tests.app.conftest import open_page

BUTTONS = {
    "conversion.py": ["convert"],
    "validation.py": ["validate_v2"],
    "inventory.py": ["revalidate", "import_fleet"],
}


@pytest.fixture
def env(sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    return sample_ws


@pytest.mark.parametrize("page", list(BUTTONS))
def test_a_viewer_sees_the_page_with_its_buttons_disabled_and_why(
    env: Workspace, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    monkeypatch.setenv("SWITCHYARD_ACTOR", "visitor")
    at = open_page(f"pages/{page}")
    assert any("You (visitor) are a viewer" in i.value and "roles.toml" in i.value for i in at.info)
    for key in BUTTONS[page]:
        assert at.button(key=key).disabled, key
        assert str(access.roles_path(env)) in at.button(key=key).help


def test_an_operator_sees_no_note_and_enabled_buttons(env: Workspace) -> None:
    at = open_page("pages/conversion.py")  # the OS user is an operator of the test workspace
    assert not any("viewer" in i.value for i in at.info)
    assert not at.button(key="convert").disabled


def test_identity_comes_from_the_identity_provider_when_configured(env: Workspace) -> None:
    services.set_role(env, "Dana@Example.com", "operator", actor="lead")
    at = open_page("pages/conversion.py", user={"is_logged_in": True, "email": "dana@example.com"})
    assert not at.button(key="convert").disabled
    at.button(key="convert").click().run()
    assert services.list_events(env, action="state:converted")["actor"].to_list() == ["dana@example.com"]

    # logged in, but not listed: a viewer, even though the OS user running the server is an operator
    at = open_page("pages/conversion.py", user={"is_logged_in": True, "email": "eve@example.com"})
    assert at.button(key="convert").disabled


def test_not_logged_in_is_a_viewer_asked_to_log_in(env: Workspace) -> None:
    at = open_page("pages/conversion.py", user={"is_logged_in": False})
    assert at.button(key="convert").disabled
    assert any("not logged in" in i.value and "Log in to act" in i.value for i in at.info)


def test_sidebar_shows_who_and_role_and_no_free_text_identity(
    env: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHYARD_ACTOR", "visitor")
    at = open_page("app.py")
    assert any("Signed in as **visitor** · viewer" in c.value for c in at.sidebar.caption)
    assert not [t for t in at.sidebar.text_input]  # typing a name would bypass the roles
    assert not [b for b in at.sidebar.button if b.label == "Log in"]  # no identity provider configured

    at = open_page("app.py", user={"is_logged_in": False})
    assert [b for b in at.sidebar.button if b.label == "Log in"]

    monkeypatch.setenv("SWITCHYARD_ACTOR", "lead")
    at = open_page("app.py")
    assert any("Signed in as **lead** · operator" in c.value for c in at.sidebar.caption)
