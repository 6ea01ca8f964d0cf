"""Without an identity provider, a visitor from another machine is a viewer, and the app says why.

The address is forged where Streamlit reads it (the session's client context,
which ``st.context.ip_address`` reports); tests/browser/test_exposure.py does
the same through a real server and a proxy's X-Forwarded-For header.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest
import streamlit as st
import streamlit.runtime.context as streamlit_context

from engine import access, services
from engine.errors import AccessDeniedError
from engine.workspace import Workspace
from tests.app.conftest import open_page
from tests.test_access import snapshot

ROOT = Path(__file__).resolve().parents[2]
REMOTE = "203.0.113.7"
NAME = "hello_world_api"


@pytest.fixture
def env(sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    monkeypatch.delenv("SWITCHYARD_ACTOR", raising=False)  # the OS user, an operator of the workspace
    return sample_ws


def connect_from(monkeypatch: pytest.MonkeyPatch, address: str | None) -> None:
    """Every session's peer is ``address``, as the server would see it."""
    client = SimpleNamespace(remote_ip=address, headers={}, cookies={})
    monkeypatch.setattr(streamlit_context, "_get_client_context", lambda: client)


def test_a_visitor_from_another_address_changes_nothing_even_by_forcing_the_button(
    env: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect_from(monkeypatch, REMOTE)
    at = open_page("pages/conversion.py")
    assert at.button(key="convert").disabled
    note = " ".join(i.value for i in at.info)
    assert f"You reach this app from {REMOTE}" in note and "identity provider" in note
    before = snapshot(env)
    button = at.button(key="convert")
    button.proto.disabled = False  # a forged client sends the click anyway (Streamlit discards it)...
    button.click().run()
    assert snapshot(env) == before
    who = f"anonymous from {REMOTE} (no identity provider)"  # ...and the use case refuses this actor
    with pytest.raises(AccessDeniedError, match="nobody identified this visitor"):
        services.convert_systems(env, [NAME], actor=who)
    assert snapshot(env) == before


def test_a_visitor_from_another_address_is_a_viewer_even_when_everyone_else_is_an_operator(
    env: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    access.write_roles(env, access.Roles(default_role=access.Role.OPERATOR))
    connect_from(monkeypatch, f"::ffff:{REMOTE}")  # a dual-stack server's form of an IPv4 peer
    at = open_page("pages/inventory.py")
    assert at.button(key="revalidate").disabled and at.button(key="import_fleet").disabled


@pytest.mark.parametrize("address", [None, "127.0.0.1", "::1", "::ffff:127.0.0.1", "127.0.0.2"])
def test_a_visitor_on_the_servers_machine_acts_as_the_os_user(
    env: Workspace, monkeypatch: pytest.MonkeyPatch, address: str | None
) -> None:
    connect_from(monkeypatch, address)
    at = open_page("pages/conversion.py")
    assert not at.button(key="convert").disabled
    at.button(key="convert").click().run()
    converted = services.list_events(env, action="state:converted")["actor"].to_list()
    assert converted == [services.default_actor()]


def test_the_sidebar_says_who_and_why(env: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    connect_from(monkeypatch, REMOTE)
    at = open_page("app.py")
    who = f"anonymous from {REMOTE} (no identity provider)"
    assert any(f"Signed in as **{who}** · viewer" in c.value for c in at.sidebar.caption)
    assert any(f"another machine ({REMOTE})" in w.value for w in at.sidebar.warning)

    connect_from(monkeypatch, "127.0.0.1")
    at = open_page("app.py")
    assert any(f"**{services.default_actor()}** · operator" in c.value for c in at.sidebar.caption)
    assert not at.sidebar.warning


def test_with_an_identity_provider_the_login_decides_wherever_the_visitor_is(
    env: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.set_role(env, "dana@example.com", "operator", actor="lead")
    connect_from(monkeypatch, REMOTE)
    at = open_page("pages/conversion.py", user={"is_logged_in": True, "email": "dana@example.com"})
    assert not at.button(key="convert").disabled


def test_behind_a_unix_socket_nobody_is_taken_for_local(
    env: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect_from(monkeypatch, None)  # uvicorn has no peer address for a Unix socket
    real = st.get_option
    monkeypatch.setattr(
        st, "get_option", lambda key: "unix:///run/switchyard.sock" if key == "server.address" else real(key)
    )
    at = open_page("pages/conversion.py")
    assert at.button(key="convert").disabled
    assert any("You reach this app from a Unix socket" in i.value for i in at.info)


def _operator_only_services() -> set[str]:
    return {name for name in dir(services) if hasattr(getattr(services, name), "requires_operator")}


def test_every_page_names_the_visitor_when_it_calls_a_use_case_that_changes_state() -> None:
    """A call without ``actor=`` would act as the OS user, an operator, whoever clicked."""
    guarded = _operator_only_services()
    assert {"convert_systems", "promote", "rollback", "set_role"} <= guarded
    missing = []
    for path in sorted((ROOT / "pages").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "services"
                and node.func.attr in guarded
                and not any(k.arg == "actor" for k in node.keywords)
            ):
                missing.append(f"{path.name}:{node.lineno} services.{node.func.attr}")
    assert not missing, missing
