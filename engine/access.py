"""Who may change what: the two roles, the workspace's ``roles.toml``, and the one check.

Operators change state (import, validate, convert, checklist, deploy, run,
judge, promote, roll back, stop, roles); viewers read everything and change
nothing. The check lives in the use cases themselves (:func:`operator_only`),
so a page's disabled button is a courtesy and not the protection.

``<workspace>/roles.toml`` is written when the workspace is created, naming
its creator as the first operator; anyone not listed gets ``default_role``,
which is ``viewer``. Names are compared without case and surrounding blanks.

Names beginning with the word ``anonymous`` are the app's visitors whom nobody
identified (not logged in, or reaching an app without an identity provider
from another machine: :func:`network_visitor`); they are viewers whatever the
file says, and the file may not list them as operators.
"""

from __future__ import annotations

import functools
import getpass
import ipaddress
import json
import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationInfo, field_validator

from engine.errors import AccessDeniedError
from engine.models.common import load_toml_model
from engine.workspace import Workspace

ROLES_FILE = "roles.toml"

P = ParamSpec("P")
R = TypeVar("R")


def default_actor() -> str:
    """Who is acting when no one says: $SWITCHYARD_ACTOR, else the OS user."""
    try:
        return os.environ.get("SWITCHYARD_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]


def _key(name: str) -> str:
    return name.strip().casefold()


ANONYMOUS = "anonymous"
"""First word of the name of a visitor nobody identified: such a visitor is a viewer, always."""
UNIDENTIFIED = (
    "nobody identified this visitor. Log in through the identity provider ([auth] in "
    ".streamlit/secrets.toml), or use the app from the machine it runs on"
)


def is_anonymous(name: str) -> bool:
    """True for the names :data:`ANONYMOUS` starts: a visitor the app could not put a name to."""
    key = _key(name or "")
    return key == ANONYMOUS or key.startswith(ANONYMOUS + " ")


def is_loopback(address: str) -> bool:
    """True when ``address`` is this machine (127.0.0.0/8, ::1, or IPv4 loopback mapped into IPv6).

    A dual-stack server sees an IPv4 visitor as ``::ffff:127.0.0.1``, which
    Python's ``is_loopback`` alone calls remote. Anything unparsable is not loopback.
    """
    try:
        ip = ipaddress.ip_address(address.strip().split("%", 1)[0])  # fe80::1%eth0: drop the zone
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def network_visitor(address: str | None) -> str | None:
    """The actor of a visitor to an app *without* an identity provider, connecting from ``address``.

    None on this machine (a loopback address, or ``None``: Streamlit reports
    loopback as no address): the visitor acts as the OS user running the
    server, as before. From anywhere else: an :func:`is_anonymous` name, so a
    viewer, because anyone who can reach the port would otherwise act as that
    OS user, an operator.
    """
    if address is None or is_loopback(address):
        return None
    return f"{ANONYMOUS} from {address.strip()} (no identity provider)"


class Roles(BaseModel):
    """The content of ``roles.toml``."""

    model_config = ConfigDict(extra="forbid")

    default_role: Role = Role.VIEWER
    operators: list[Name] = []
    viewers: list[Name] = []

    @field_validator("operators")
    @classmethod
    def _identified(cls, operators: list[str]) -> list[str]:
        anonymous = [n for n in operators if is_anonymous(n)]
        if anonymous:
            raise ValueError(f"'{ANONYMOUS} ...' names a visitor nobody identified: {anonymous[0]}")
        return operators

    @field_validator("viewers")
    @classmethod
    def _in_one_list_only(cls, viewers: list[str], info: ValidationInfo) -> list[str]:
        operators = {_key(n) for n in info.data.get("operators", [])}
        both = [n for n in viewers if _key(n) in operators]
        if both:
            raise ValueError(f"each name in one list only; also under operators: {', '.join(both)}")
        return viewers

    def role_of(self, name: str) -> Role:
        key = _key(name or "")
        if not key or is_anonymous(key):
            return Role.VIEWER  # nobody in particular is never an operator
        if key in {_key(n) for n in self.operators}:
            return Role.OPERATOR
        if key in {_key(n) for n in self.viewers}:
            return Role.VIEWER
        return self.default_role

    def with_role(self, name: str, role: Role) -> Roles:
        """A copy where ``name`` is listed under ``role`` (and no longer under the other list)."""
        key = _key(name)
        operators = [n for n in self.operators if _key(n) != key]
        viewers = [n for n in self.viewers if _key(n) != key]
        (operators if role is Role.OPERATOR else viewers).append(name.strip())
        return Roles(default_role=self.default_role, operators=operators, viewers=viewers)


HEADER = """\
# Who can do what in this Switchyard workspace (README, "Who can do what").
#
# operator: import, validate, convert, run the checklist, deploy, run in parallel,
#           judge, promote, roll back, stop, and change this file (`python -m engine roles --grant`).
# viewer:   sees every page and the audit log; every button that changes something is disabled.
#
# Names are compared without case: the OS user (the CLI, or the app without a login; the
# $SWITCHYARD_ACTOR variable overrides it) or the e-mail address the identity provider gives
# the app (st.login). Anyone listed nowhere gets default_role; keep it "viewer".
# Names beginning with "anonymous" are app visitors nobody identified: viewers, always.
"""


def roles_path(ws: Workspace) -> Path:
    return ws.root / ROLES_FILE


def load_roles(ws: Workspace) -> Roles:
    """The workspace's roles; without a roles file nobody is an operator. A bad file raises InputError."""
    path = roles_path(ws)
    if not path.exists():
        return Roles()
    return load_toml_model(Roles, path)


def render_roles(roles: Roles) -> str:
    """TOML text of ``roles`` under the explanatory header (JSON strings are valid TOML strings)."""

    def names(items: list[str]) -> str:
        # JSON leaves DEL raw, which TOML forbids: escape it too, so whatever is written loads back
        quoted = (json.dumps(n, ensure_ascii=False).replace("\x7f", "\\u007f") for n in items)
        return "[" + ", ".join(quoted) + "]"

    return (
        f"{HEADER}\n"
        f'default_role = "{roles.default_role.value}"\n'
        f"operators = {names(roles.operators)}\n"
        f"viewers = {names(roles.viewers)}\n"
    )


def write_roles(ws: Workspace, roles: Roles) -> Path:
    """Replace the roles file in one step (a reader never sees half a file)."""
    path = roles_path(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(render_roles(roles), encoding="utf-8")
    os.replace(tmp, path)
    return path


def ensure_roles_file(ws: Workspace, first_operator: str) -> bool:
    """Write the roles file naming ``first_operator`` unless there is one; True when it did."""
    if roles_path(ws).exists():
        return False
    write_roles(ws, Roles(operators=[first_operator]))
    return True


def role_of(ws: Workspace, actor: str) -> Role:
    return load_roles(ws).role_of(actor)


class _EngineActor(str):
    """A name only the engine itself can act under: a string from a page, the CLI or a file is never of
    this type, whatever it spells, so it cannot borrow the engine's pass."""


def engine_actor(name: str = "switchyard") -> str:
    """The engine acting on its own under ``name`` (the app's first start imports and validates the
    sample fleet): it passes the role check and is recorded in the audit log as ``name``."""
    return _EngineActor(name)


def require_operator(ws: Workspace, actor: str, what: str) -> None:
    """Raise AccessDeniedError unless ``actor`` is an operator of ``ws``, or the engine (engine_actor)."""
    if isinstance(actor, _EngineActor):
        return
    role = role_of(ws, actor)
    if role is not Role.OPERATOR:
        unidentified = UNIDENTIFIED if is_anonymous(actor) else ""
        raise AccessDeniedError(actor, role.value, what, roles_path(ws), unidentified=unidentified)


def operator_only(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a use case that changes state: its ``actor`` must be an operator, checked first.

    The use case's first argument is the workspace; ``actor=None`` means
    :func:`default_actor`. That is all it does: what follows a change (the
    metrics snapshot, notifications) is :func:`engine.use_case.changes_state`'s,
    and the engine's own work runs as an :func:`engine_actor`, checked like anyone.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            ws: Any = args[0] if args else kwargs["ws"]
            actor = kwargs.get("actor")
            require_operator(ws, default_actor() if actor is None else _name(actor), what)
            return fn(*args, **kwargs)

        guarded.requires_operator = what  # type: ignore[attr-defined]  # lets tests find every guarded use case
        return guarded

    return decorate


def _name(actor: Any) -> str:
    return actor if isinstance(actor, str) else str(actor)
