"""What the notification buttons and commands do; :mod:`engine.services` exposes them (with the role check).

* :func:`notify_status`: the webhooks of ``notify.toml``, their problems, and the deliveries.
* :func:`flush`: send every pending delivery now (optionally giving failed ones another round).
* :func:`probe`: one signed test request to a webhook, to check URL, secret and network.
* :func:`send_digest`: record the standup digest as a ``notify:digest`` event and deliver it
  to the webhooks that subscribe to ``digest``, through the outbox like any other event.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import polars as pl
from pydantic import BaseModel

from engine.errors import InputError
from engine.notify import deliver as sender
from engine.notify import outbox
from engine.notify.config import load_config, notify_path
from engine.notify.digest import Digest
from engine.notify.payload import SCHEMA, chat_text, encode, one_line
from engine.notify.sign import sign_headers
from engine.store import connect, transaction
from engine.store.db import first_row
from engine.store.events import append_events
from engine.workspace import Workspace

DIGEST_ACTION = "notify:digest"
TEST_ACTION = "notify:test"
REQUEUE_ACTION = "notify:requeued"


class WebhookView(BaseModel):
    name: str
    url: str
    kinds: list[str]
    secret: str
    ready: bool


@dataclass
class NotifyStatus:
    """The notification settings and the outbox, for the ``notify`` command and the Audit log page."""

    file: str
    configured: bool
    webhooks: list[WebhookView]
    counts: dict[str, int]
    deliveries: pl.DataFrame
    problems: list[str] = field(default_factory=list)


def notify_status(ws: Workspace, *, statuses: list[str] | None = None, limit: int = 100) -> NotifyStatus:
    """Webhooks (URLs shown without path or query), delivery counts and the newest deliveries."""
    path = notify_path(ws)
    config = load_config(ws)
    hooks = [
        WebhookView(
            name=h.name,
            url=h.display_url(),
            kinds=list(h.kinds),
            secret="in notify.toml"
            if h.secret is not None
            else f"${h.secret_env} ({'set' if h.resolve_secret() else 'NOT SET'})",
            ready=h.resolve_secret() is not None,
        )
        for h in config.webhooks
    ]
    with connect(ws.db_path) as con:
        counts = outbox.status_counts(con)
        frame = outbox.list_deliveries(con, statuses=statuses, limit=limit)
    return NotifyStatus(
        file=str(path),
        configured=path.exists(),
        webhooks=hooks,
        counts=counts,
        deliveries=frame,
        problems=config.problems(path),
    )


class FlushResult(BaseModel):
    requeued: int
    report: outbox.DispatchReport


def flush(
    ws: Workspace, *, actor: str, retry_failed: bool = False, sleep: sender.Sleep = time.sleep
) -> FlushResult:
    """Send every pending delivery now, waiting out the backoff up to ``flush_wait_s``.

    ``retry_failed`` first gives every failed delivery to a configured webhook
    a fresh set of attempts, recorded in the audit log (``notify:requeued``).
    """
    config = load_config(ws)
    requeued = 0
    if retry_failed and config.webhooks:
        with connect(ws.db_path) as con, transaction(con):
            requeued = outbox.requeue_failed(con, [h.name for h in config.webhooks])
            if requeued:
                append_events(
                    con,
                    [
                        {
                            "actor": actor,
                            "system": None,
                            "action": REQUEUE_ACTION,
                            "reason": f"{requeued} failed notification(s) queued again",
                            "after": {"requeued": requeued},
                        }
                    ],
                )
    return FlushResult(requeued=requeued, report=outbox.dispatch(ws, flush=True, config=config, sleep=sleep))


class ProbeResult(BaseModel):
    target: str
    url: str
    signed: bool
    ok: bool
    http_status: int | None
    error: str | None
    elapsed_s: float


def probe(ws: Workspace, target: str, *, actor: str) -> ProbeResult:
    """One test request (kind ``test``) to a webhook named in ``notify.toml`` (by name or URL), signed
    with its secret; or to any other http(s) URL, unsigned. No retries; recorded as ``notify:test``."""
    config = load_config(ws)
    hook = next((h for h in config.webhooks if target in (h.name, h.url)), None)
    url = hook.url if hook else target.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        names = ", ".join(h.name for h in config.webhooks) or "none configured"
        raise InputError(
            "--test", "value", f"a webhook name from notify.toml ({names}) or an http(s) URL", target
        )
    shown = (
        hook.display_url()
        if hook
        else f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"
    )
    line = one_line(f"Switchyard test notification, sent by {actor}")
    body = encode(
        {
            "schema": SCHEMA,
            "kind": "test",
            "kinds": ["test"],
            "event_id": None,
            "actor": actor,
            "ts": dt.datetime.now(dt.UTC).isoformat(),
            "summary": line,
            "text": chat_text(line),
        }
    )
    secret = hook.resolve_secret() if hook else None
    headers = {outbox.EVENT_HEADER: "test", **(sign_headers(secret, body) if secret else {})}
    attempt = sender.post_json(url, body, headers, config.timeout_s)
    result = ProbeResult(
        target=hook.name if hook else shown,
        url=shown,
        signed=secret is not None,
        ok=attempt.ok,
        http_status=attempt.http_status,
        error=attempt.error,
        elapsed_s=round(attempt.elapsed_s, 3),
    )
    with connect(ws.db_path) as con:
        append_events(
            con,
            [
                {
                    "actor": actor,
                    "system": None,
                    "action": TEST_ACTION,
                    "reason": f"test notification to {result.target}",
                    "after": result.model_dump(include={"url", "signed", "ok", "http_status", "error"}),
                }
            ],
        )
    return result


class DigestSent(BaseModel):
    as_of: dt.datetime
    markdown: str
    event_id: int
    webhooks: list[str]
    deliveries: list[outbox.DeliveryResult]


def send_digest(ws: Workspace, digest: Digest, *, actor: str, sleep: sender.Sleep = time.sleep) -> DigestSent:
    """Record the digest as a ``notify:digest`` event and dispatch it to the ``digest`` subscribers."""
    config = load_config(ws)
    subscribers = [h.name for h in config.subscribed("digest")]
    if not subscribers:
        raise InputError(
            notify_path(ws),
            "webhooks[].kinds",
            'at least one webhook whose kinds include "digest"',
            "none" if not config.webhooks else ", ".join(f"{h.name}: {h.kinds}" for h in config.webhooks),
        )
    with connect(ws.db_path) as con, transaction(con):
        append_events(
            con,
            [
                {
                    "actor": actor,
                    "system": None,
                    "action": DIGEST_ACTION,
                    "reason": f"standup digest as of {digest.as_of:%Y-%m-%d %H:%M} UTC",
                    "after": {"as_of": digest.as_of.isoformat(), "markdown": digest.markdown},
                }
            ],
        )
        row = first_row(
            con, "SELECT max(id) FROM events WHERE action = ? AND actor = ?", [DIGEST_ACTION, actor]
        )
    event_id = int(row[0]) if row else 0
    report = outbox.dispatch(ws, config=config, sleep=sleep)
    return DigestSent(
        as_of=digest.as_of,
        markdown=digest.markdown,
        event_id=event_id,
        webhooks=subscribers,
        deliveries=[r for r in report.results if r.event_id == event_id],
    )


def as_dict(status: NotifyStatus) -> dict[str, Any]:
    """A JSON-able view of :class:`NotifyStatus` (for ``--json``)."""
    return {
        "file": status.file,
        "configured": status.configured,
        "webhooks": [h.model_dump() for h in status.webhooks],
        "counts": status.counts,
        "problems": status.problems,
        "deliveries": status.deliveries.to_dicts(),
    }
