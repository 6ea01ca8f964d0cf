"""What follows a use case that changed something: one explicit list of hooks.

Every change writes its audit event in the transaction that makes it
(DESIGN 3), so a use case changed something exactly when the audit log grew
while it ran, whether it returned or failed (a refused promote records its
approval request). Then, once the outermost use case of the thread is over,
each of :data:`AFTER_CHANGE` runs in turn: the decisions snapshot the
gateway serves on ``/metrics`` is taken again, and the new events go to the
notification outbox. A hook never raises: what it reports on has happened.

The role check is :func:`engine.access.operator_only`'s alone; a use case
that changes state carries both::

    @operator_only("promote")
    @changes_state
    def promote(ws, name, *, actor, ...): ...
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from engine.metrics.decisions import refresh_decisions
from engine.notify.outbox import dispatch_quietly
from engine.store.db import connect, first_row
from engine.workspace import Workspace

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger(__name__)

AFTER_CHANGE: tuple[Callable[[Workspace], Any], ...] = (refresh_decisions, dispatch_quietly)
"""Run, in this order, after every use case that changed something."""

_depth = threading.local()
"""How deep in use cases this thread is: only the outermost one runs the hooks."""


def audit_mark(ws: Workspace) -> tuple[Any, ...] | None:
    """Where the audit log stands (newest id, count); None without a store yet."""
    if not isinstance(ws, Workspace) or not ws.db_path.exists():
        return None
    with connect(ws.db_path, migrate=False) as con:
        return first_row(con, "SELECT max(id), count(*) FROM events")


def after_change(ws: Workspace) -> None:
    """Run each of :data:`AFTER_CHANGE` on ``ws``; a hook that fails is logged and the next one runs."""
    for hook in AFTER_CHANGE:
        try:
            hook(ws)
        except Exception as exc:  # noqa: BLE001 - see the module doc: never fail what already happened
            log.warning("%s after a change failed: %s", getattr(hook, "__name__", hook), exc)


def changes_state(fn: Callable[P, R]) -> Callable[P, R]:
    """Mark ``fn`` (first argument: the workspace) as a use case that may change state: when the
    outermost one ends and the audit log grew meanwhile, the :data:`AFTER_CHANGE` hooks run."""

    @functools.wraps(fn)
    def use_case(*args: P.args, **kwargs: P.kwargs) -> R:
        depth = getattr(_depth, "value", 0)
        if depth:
            _depth.value = depth + 1
            try:
                return fn(*args, **kwargs)
            finally:
                _depth.value = depth
        ws: Any = args[0] if args else kwargs["ws"]
        before = _mark_quietly(ws)
        _depth.value = 1
        try:
            return fn(*args, **kwargs)
        finally:
            _depth.value = 0
            if _mark_quietly(ws) != before:
                after_change(ws)

    use_case.changes_state = True  # type: ignore[attr-defined]  # lets tests find every such use case
    return use_case


def _mark_quietly(ws: Workspace) -> tuple[Any, ...] | None:
    try:
        return audit_mark(ws)
    except Exception:  # noqa: BLE001 - a store that cannot be read now: the use case itself will say so
        return None
