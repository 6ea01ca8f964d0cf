"""From an audit event to what a webhook receives: its kinds, the JSON payload and the raw body.

The audit log is the source of truth, so the kinds are read off what the
engine really writes, by pattern, so that actions added later with the same
prefixes are picked up too:

=================  ==========================================================
kind               events
=================  ==========================================================
verdict            ``state:judged`` (the verdict is in ``after``), ``verdict:*`` (re-judged)
trigger            any event by an actor ``trigger:*`` (the automatic rollback or hold it
                   caused), ``trigger:*`` (fired while held), ``run:*:triggered``
                   (the watched run it stopped)
promoted           ``state:promoted``, ``state:done`` (monitor window clean, blue decommissioned)
rolled_back        ``state:rolled_back``, ``state:emergency`` (the rollback could not verify)
hold               ``state:hold``, ``hold:*`` (placed, released)
approval_needed    ``approval:*`` except ``approval:granted``/``denied``/``rejected``
digest             ``notify:digest`` (``python -m engine digest --send``)
=================  ==========================================================

One event is one delivery per webhook even when it has several kinds (an
automatic rollback is ``rolled_back`` and ``trigger``): the payload's
``kind`` is the first of :data:`PRIORITY` the webhook subscribes to, and
``kinds`` lists them all.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import polars as pl

SCHEMA = "switchyard.notification/1"
SUMMARY_MAX = 280

# (kind, event field, glob pattern; * matches anything)
RULES: tuple[tuple[str, str, str], ...] = (
    ("verdict", "action", "state:judged"),
    ("verdict", "action", "verdict:*"),
    ("trigger", "actor", "trigger:*"),
    ("trigger", "action", "trigger:*"),
    ("trigger", "action", "run:*:triggered"),
    ("promoted", "action", "state:promoted"),
    ("promoted", "action", "state:done"),
    ("rolled_back", "action", "state:rolled_back"),
    ("rolled_back", "action", "state:emergency"),
    ("hold", "action", "state:hold"),
    ("hold", "action", "hold:*"),
    ("approval_needed", "action", "approval:*"),
    ("digest", "action", "notify:digest"),
)
EXCLUDE: dict[str, tuple[str, ...]] = {
    "approval_needed": ("approval:granted", "approval:denied", "approval:rejected"),
}
PRIORITY: tuple[str, ...] = (
    "rolled_back",
    "promoted",
    "hold",
    "verdict",
    "approval_needed",
    "trigger",
    "digest",
)
"""Which kind names an event with several: the effect (a rollback) before its cause (a trigger)."""


def _regex(glob: str) -> str:
    return "^" + ".*".join(re.escape(part) for part in glob.split("*")) + "$"


def kinds_of(action: str, actor: str) -> list[str]:
    """The kinds of one event, in :data:`PRIORITY` order (empty: no webhook hears of it)."""
    values = {"action": action or "", "actor": actor or ""}
    found = {
        kind
        for kind, field, glob in RULES
        if re.match(_regex(glob), values[field]) and action not in EXCLUDE.get(kind, ())
    }
    return [k for k in PRIORITY if k in found]


def with_kinds(events: pl.DataFrame) -> pl.DataFrame:
    """``events`` (with ``action`` and ``actor``) plus a boolean column per kind, computed in bulk."""
    columns = []
    for kind in PRIORITY:
        matches = [
            pl.col(field).fill_null("").str.contains(_regex(glob)) for k, field, glob in RULES if k == kind
        ]
        expr = pl.any_horizontal(matches)
        if EXCLUDE.get(kind):
            expr = expr & ~pl.col("action").is_in(list(EXCLUDE[kind]))
        columns.append(expr.alias(f"is_{kind}"))
    return events.with_columns(columns)


def _json(value: Any) -> Any:
    if value is None or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def one_line(text: object, limit: int = SUMMARY_MAX) -> str:
    """Control characters out, whitespace collapsed, at most ``limit`` characters."""
    cleaned = "".join(c if c.isprintable() else " " for c in str(text or ""))
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def chat_text(text: str) -> str:
    """``text`` for chat tools that read ``text`` (Slack, Mattermost): &, <, > as entities, so a
    reason cannot smuggle in a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary(event: dict[str, Any], kind: str) -> str:
    """One plain line saying what happened, without links."""
    action, actor = event.get("action") or "", event.get("actor") or "?"
    system = event.get("system") or "the fleet"
    reason = event.get("reason") or ""
    after = _json(event.get("after")) or {}
    after = after if isinstance(after, dict) else {}
    by = f"trigger {actor.split(':', 1)[1]}" if actor.startswith("trigger:") else actor
    if kind == "digest":
        line = f"Switchyard {reason}" if reason else f"Switchyard standup digest as of {after.get('as_of')}"
    elif action == "state:emergency":
        line = f"EMERGENCY: {system}: the rollback by {by} could not verify the old version: {reason}"
    elif kind == "rolled_back" or action == "state:rolled_back":
        line = f"{system} rolled back by {by}: {reason}"
    elif action == "state:done":
        line = f"{system} migrated: {reason}"
    elif kind == "promoted":
        line = f"{system} promoted by {by}: {reason}"
    elif kind == "verdict":
        verdict = after.get("verdict") or "?"
        run = f" on run {after['run_id']}" if after.get("run_id") else ""
        if action.startswith("verdict:"):  # a re-judgement: the original verdict is in ``before``
            before = _json(event.get("before")) or {}
            was = before.get("verdict") if isinstance(before, dict) else None
            line = f"{system} judged again by {by}{run}: {verdict} (was {was or '?'}): {reason}"
        else:
            line = f"{system}: verdict {verdict}{run}, judged by {by}"
    elif kind == "hold":
        placed = after.get("held", not action.endswith("released"))
        owner = f" (owner {after['owner']})" if after.get("owner") else ""
        what = "placed on HOLD" if placed else "released from HOLD"
        line = f"{system} {what} by {by}{owner}: {reason}"
    elif kind == "approval_needed":
        line = f"{system} needs a second operator's approval to promote: {reason}"
    elif kind == "trigger" and action.startswith("run:"):
        stage = action.split(":")[1] if action.count(":") >= 2 else "watched"
        line = f"{system}: an automatic trigger fired and stopped the {stage} run: {reason}"
    elif kind == "trigger":
        name = actor.split(":", 1)[1] if actor.startswith("trigger:") else action.split(":", 1)[-1]
        line = f"{system}: automatic trigger {name} fired: {reason}"
    else:
        line = f"{system}: {action} by {by}: {reason}"
    return one_line(line.rstrip(": "))


def build_payload(event: dict[str, Any], kind: str) -> dict[str, Any]:
    """The JSON document a webhook receives for ``event`` (a row of the ``events`` table)."""
    ts = event.get("ts")
    after = _json(event.get("after"))
    line = summary(event, kind)
    payload: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": kind,
        "kinds": kinds_of(event.get("action") or "", event.get("actor") or ""),
        "event_id": int(event["id"]),
        "action": event.get("action"),
        "system": event.get("system"),
        "actor": event.get("actor"),
        "reason": event.get("reason"),
        "ts": ts.isoformat() if isinstance(ts, dt.datetime) else ts,
        "before": _json(event.get("before")),
        "after": after,
        "summary": line,
        "text": chat_text(line),
    }
    if kind == "digest" and isinstance(after, dict):
        markdown = str(after.get("markdown", ""))
        payload["after"] = {k: v for k, v in after.items() if k != "markdown"}
        payload["markdown"] = markdown
        payload["text"] = chat_text(markdown)
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    """The raw body: compact, key-sorted UTF-8 JSON, byte-identical for every retry."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()
