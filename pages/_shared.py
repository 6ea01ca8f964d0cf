"""Helpers every page uses: the workspace, the acting user and their role, and how errors are shown.

Kept tiny on purpose: pages read through ``engine.services`` and draw; this
module only holds what would otherwise be repeated at the top of each page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from engine import access, services
from engine.errors import SwitchyardError
from engine.workspace import Workspace

T = TypeVar("T")

VERDICT_COLOURS = {"GO": "green", "NO_GO": "red", "INCONCLUSIVE": "orange"}
"""A verdict's colour in Streamlit markdown (":green[GO]"), the same on every page."""


@st.cache_resource(show_spinner="First start: creating the workspace and loading the sample fleet…")
def _initialised_workspace(root: str) -> Workspace:
    """Runs once per server and workspace; draws nothing, since cached output would be replayed."""
    ws = Workspace.at(root)
    services.ensure_initialised(ws, actor="switchyard")
    return ws


def workspace() -> Workspace:
    """The workspace for this server ($SWITCHYARD_WORKSPACE or ./workspace), initialised on first use.

    Every page calls it first, so it is also where a page run outside app.py's
    navigation is sent back through it (:func:`_through_app_navigation`).
    """
    _through_app_navigation()
    return _initialised_workspace(str(Workspace.at().root))


def _through_app_navigation() -> None:
    """Run this page inside app.py's ``st.navigation``, not as a bare script of ``pages/``.

    Until some session has run app.py, Streamlit treats the ``pages/`` folder
    as a v1 multipage app: a first visitor who opens a page's URL directly
    (a bookmark, a link in the standup digest) got that script alone, with
    Streamlit's file list as the sidebar (private ``_shared`` and
    ``_charts`` modules included), and without app.py's sidebar, login and
    hold banners. The flag that decides it is set once per server; clearing
    it and rerunning makes Streamlit run app.py, whose navigation resolves
    the same URL to the same page. Private to Streamlit (checked for
    1.67), so a missing attribute leaves things as they are.
    """
    from streamlit.runtime import pages_manager

    manager = getattr(pages_manager, "PagesManager", None)
    if manager is not None and getattr(manager, "uses_pages_directory", False) is True:
        manager.uses_pages_directory = False
        st.rerun()


CACHE_TTL_S = 60.0
"""Longest a cached view is reused while the store stays unchanged: views "as of now" (the last
24 hours, the forecast) move with the clock even when nothing is written."""


@st.cache_data(ttl=CACHE_TTL_S, max_entries=64, show_spinner=False)
def _service_call(service: str, root: str, version: tuple, args: tuple, kwargs: tuple) -> Any:
    """``services.<service>(workspace, *args, **kwargs)``; ``version`` is only part of the cache key."""
    return getattr(services, service)(Workspace.at(root), *args, **dict(kwargs))


def cached(
    version: tuple,
    service: Callable[..., T],
    ws: Workspace,
    *args: Any,
    samples: bool | str = False,
    **kwargs: Any,
) -> T:
    """``service(ws, *args, **kwargs)``, reused across reruns and sessions while ``version`` holds.

    ``version`` is ``services.data_version(ws)``, read once at the top of the
    page, before anything it versions: every committed write (a promote, a
    rollback, a verdict, a checklist tick, an import) changes it, so the next
    rerun recomputes and a cached view is never older than the store.
    ``samples`` adds the sample segments to the key (``services.samples_version``,
    a directory listing): True for all of them, a system's name for that
    system's. The files the service reads beside the store (``services.files_read``:
    a risk register, failure documents, v2 blueprints) are always in the key,
    by their modification times. Errors are not cached. Only for services that
    read the store, the samples and the files ``files_read`` names.
    """
    if getattr(services, service.__name__, None) is not service:
        raise ValueError(f"{service.__name__} is not a service of engine.services")
    if samples:
        version = (*version, services.samples_version(ws, samples if isinstance(samples, str) else None))
    files = services.files_version(ws, service.__name__)
    if files:
        version = (*version, files)
    return _service_call(service.__name__, str(ws.root), version, args, tuple(sorted(kwargs.items())))


NOT_LOGGED_IN = f"{access.ANONYMOUS} (not logged in)"
"""The actor of a visitor who has not logged in while an identity provider is configured."""
UNIX_SOCKET = "a Unix socket"


def _user_info() -> dict[str, Any]:
    """``st.user`` as a dict; empty when there is none (no script context, no [auth] in secrets)."""
    try:
        return dict(st.user.to_dict())
    except Exception:  # identity must never break a page
        return {}


def identity_provider() -> bool:
    """True when ``[auth]`` is configured in secrets: st.user then says whether someone logged in."""
    return "is_logged_in" in _user_info()


def visitor_address() -> str | None:
    """Where this visitor connects from, as the server saw it; None on this machine.

    ``st.context.ip_address`` is the TCP peer, or the client a proxy on
    loopback names in X-Forwarded-For (uvicorn trusts that header from
    127.0.0.1 and ::1 only). Streamlit reports 127.0.0.1 and ::1 as None, but
    a dual-stack server sees ``::ffff:127.0.0.1``, left to
    :func:`engine.access.network_visitor`. Under AppTest there is no
    connection (the runtime is a mock), which counts as this machine. Behind
    a Unix socket (``server.address = "unix://..."``) the peer is unknown, so
    the visitor is not taken for local.
    """
    address = st.context.ip_address
    if isinstance(address, str):
        return address
    if str(st.get_option("server.address") or "").startswith("unix://"):
        return UNIX_SOCKET
    return None


def actor() -> str:
    """Who is using the app; recorded on every action and checked against the workspace's roles.

    With an identity provider configured, the logged-in user's e-mail (not
    logged in: nobody in particular, a viewer); without one, the OS user
    running the server (or $SWITCHYARD_ACTOR) for a visitor on the server's
    own machine, and an anonymous viewer for anyone else
    (:func:`engine.access.network_visitor`). Never typed in by the visitor.
    """
    info = _user_info()
    if "is_logged_in" not in info:
        return access.network_visitor(visitor_address()) or services.default_actor()
    if info["is_logged_in"]:
        return str(info.get("email") or info.get("preferred_username") or info.get("sub") or NOT_LOGGED_IN)
    return NOT_LOGGED_IN


def can_act() -> tuple[bool, str]:
    """(allowed, why not): whether the visitor may press buttons that change state."""
    ws = workspace()
    who = actor()
    try:
        role = services.role_of(ws, who)
    except SwitchyardError as exc:  # a malformed roles.toml: say so, act as a viewer
        return False, str(exc)
    if role is access.Role.OPERATOR:
        return True, ""
    listed = f"You ({who}) are a viewer; operators are listed in {access.roles_path(ws)}."
    if who == NOT_LOGGED_IN:
        return False, f"{listed} Log in to act."
    if access.is_anonymous(who):
        return False, (
            f"You reach this app from {visitor_address()}, not from the machine it runs on, and no identity "
            "provider is configured, so nobody knows who you are: you are a viewer. Only a visitor on that "
            f"machine acts as {services.default_actor()}; to let others act, configure an identity provider "
            "([auth] in .streamlit/secrets.toml, README: Who can do what)."
        )
    return False, listed


def viewer_note() -> tuple[bool, str]:
    """``can_act()``, drawing a note at the top of the page when the visitor may not act."""
    allowed, why = can_act()
    if not allowed:
        st.info(why, icon=":material/visibility:")
    return allowed, why


def run_action(action: Callable[[], T]) -> T | None:
    """Call one service function; user errors become a red message, never a traceback."""
    try:
        return action()
    except SwitchyardError as exc:
        st.error(str(exc), icon=":material/error:")
        return None


# --------------------------------------------------------------------------- feedback where the click was

OK_ICON, ERROR_ICON = ":material/check_circle:", ":material/error:"


def say(area: str, ok: bool, text: str, *, toast: bool = True, later: bool = False) -> None:
    """Keep an action's outcome for :func:`outcome` to draw beside its button, and toast it.

    ``later``: the page reruns next (to redraw the state the action changed), and
    a toast drawn just before a rerun is lost: it is queued for :func:`page_start`.
    """
    st.session_state[f"outcome-{area}"] = (ok, text)
    if toast and later:
        st.session_state.setdefault("toasts", []).append((ok, text))
    elif toast:
        st.toast(text, icon=OK_ICON if ok else ERROR_ICON)


def outcome(area: str) -> None:
    """The last outcome said in ``area`` (green or red), drawn where the area's buttons are."""
    said = st.session_state.get(f"outcome-{area}")
    if said is not None:
        ok, text = said
        (st.success if ok else st.error)(text, icon=OK_ICON if ok else ERROR_ICON)


def act(
    area: str,
    action: Callable[[], T],
    done: str | Callable[[T], str],
    *,
    rerun: bool = False,
    then: Callable[[T], Any] | None = None,
) -> T | None:
    """Call one service function; its outcome (``done``, or the refusal) is said in ``area``.

    On success ``then(result)`` runs (keep the result, reset the form), and with
    ``rerun`` the page is drawn again to show the state the action changed.
    """
    try:
        result = action()
    except SwitchyardError as exc:
        say(area, False, str(exc))
        return None
    say(area, True, done(result) if callable(done) else done, later=rerun)
    if then is not None:
        then(result)
    if rerun:
        st.rerun()
    return result


def clear_next(*keys: str) -> None:
    """Reset these widgets to their defaults on the next run (a form after its action succeeded)."""
    st.session_state.setdefault("clear-next", []).extend(keys)


def page_start() -> None:
    """At the top of a page: reset the widgets :func:`clear_next` named and show the queued toasts."""
    for key in st.session_state.pop("clear-next", []):
        st.session_state.pop(key, None)
    for ok, text in st.session_state.pop("toasts", []):
        st.toast(text, icon=OK_ICON if ok else ERROR_ICON)


# --------------------------------------------------------------------------- the system a lead works on

FOCUS = "focus-system"
"""Not a widget key: widget state is dropped when its page is left, this stays for the session."""


def focus(name: str) -> None:
    """Remember the system this session works on: the next page opens on it (convert, then validate)."""
    st.session_state[FOCUS] = name


def focus_index(names: list[str], fallback: list[str] | None = None) -> int:
    """Index in ``names`` of the system in focus, else of the first of ``fallback`` present, else 0."""
    for candidate in [st.session_state.get(FOCUS), *(fallback or [])]:
        if candidate in names:
            return names.index(candidate)
    return 0
