"""Helpers every page uses: the workspace, the acting user, and how errors are shown.

Kept tiny on purpose: pages read through ``engine.services`` and draw; this
module only holds what would otherwise be repeated at the top of each page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from engine import services
from engine.errors import SwitchyardError
from engine.workspace import Workspace

T = TypeVar("T")


@st.cache_resource(show_spinner="First start: creating the workspace and loading the sample fleet…")
def _initialised_workspace(root: str) -> Workspace:
    """Runs once per server and workspace; draws nothing, since cached output would be replayed."""
    ws = Workspace.at(root)
    services.ensure_initialised(ws, actor="switchyard")
    return ws


def workspace() -> Workspace:
    """The workspace for this server ($SWITCHYARD_WORKSPACE or ./workspace), initialised on first use."""
    return _initialised_workspace(str(Workspace.at().root))


def actor() -> str:
    """Who is using the app; recorded on every action."""
    return st.session_state.get("actor") or services.default_actor()


def run_action(action: Callable[[], T]) -> T | None:
    """Call one service function; user errors become a red message, never a traceback."""
    try:
        return action()
    except SwitchyardError as exc:
        st.error(str(exc), icon=":material/error:")
        return None


def show_error_list(title: str, items: list[Any]) -> None:
    """A red box listing problems, one per line."""
    if items:
        st.error(title + "\n\n" + "\n".join(f"- {item}" for item in items))
