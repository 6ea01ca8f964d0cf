"""The outbox: audit events become webhook deliveries, none lost and none sent twice.

The audit log is the source of truth. :func:`dispatch` does three things, and
is safe to call from anywhere, any number of times:

1. **enqueue**: for each webhook in ``notify.toml``, the events after its
   cursor whose kinds it subscribes to become ``deliveries`` rows (one per
   event and webhook: a unique key, so a second dispatch adds nothing), and
   the cursor moves past every event it looked at. A webhook seen for the
   first time starts at the events recorded after ``notify.toml`` was saved
   (at most a day back), not at the beginning of history. Events of the last
   few minutes are looked at again, so one committed late by a slower
   transaction (with a lower id than one already seen) is not skipped.
2. **send**: each webhook's pending deliveries go out in event order. A
   delivery is leased before it is sent, so two dispatchers (the app and a
   command, two threads) never send it both; the database connection is
   closed while the request is on the wire, so a slow receiver never holds
   the store's write lock.
3. **record**: every attempt is written (attempts, last error, when the next
   one is due); the delivery ends ``delivered`` or, after ``max_attempts``
   or a refusal that will not change (a 4xx), ``failed``. A delivery that
   has to wait for its next attempt holds back the ones after it for the
   same webhook, so a receiver sees events in order.

A dispatch keeps retrying in-process for at most ``wait_s`` seconds
(``flush_wait_s`` for a flush, which also sends deliveries whose retry is not
due yet); what is left waits for the next dispatch: any command, any change
made in the app, or ``python -m engine notify --flush`` from a timer.
Delivery is at least once: if the process dies between a receiver's 2xx and
the record of it, the lease runs out and the delivery is sent again, with the
same ``event_id`` and ``X-Switchyard-Delivery`` header to recognise it by.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl
from pydantic import BaseModel

from engine.notify import deliver as sender
from engine.notify.config import NotifyConfig, Webhook, load_config, notify_path
from engine.notify.payload import PRIORITY, build_payload, encode, with_kinds
from engine.store import connect, transaction
from engine.store.db import first_row, query_frame
from engine.workspace import Workspace

log = logging.getLogger("switchyard.notify")

RESCAN = dt.timedelta(minutes=5)
"""Events this recent are looked at again (a transaction may commit a lower id after a higher one)."""
NEW_WEBHOOK_LOOKBACK = dt.timedelta(days=1)
"""A new webhook hears of events since notify.toml was saved, but never of more than this far back."""
LEASE_MARGIN_S = 60.0
_CONFLICTS = (duckdb.TransactionException, duckdb.ConstraintException)
STATUSES = ("pending", "delivered", "failed")

DELIVERY_HEADER = "X-Switchyard-Delivery"
EVENT_HEADER = "X-Switchyard-Event"
EVENT_ID_HEADER = "X-Switchyard-Event-Id"


class DeliveryResult(BaseModel):
    """What one dispatch did with one delivery."""

    id: int
    event_id: int
    webhook: str
    kind: str
    system: str | None
    status: str
    attempts: int
    last_error: str | None = None
    delays: list[float] = []


class DispatchReport(BaseModel):
    """What one dispatch did: deliveries created, and the fate of each one it tried to send."""

    enqueued: int = 0
    results: list[DeliveryResult] = []
    problems: list[str] = []

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _insert_returning(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any], frame: pl.DataFrame
) -> int:
    con.register("frame", frame.to_arrow())
    try:
        return len(con.execute(sql, params).fetchall())
    finally:
        con.unregister("frame")


# --------------------------------------------------------------------------- enqueue


def _subscribed_since(ws: Workspace, now: dt.datetime) -> dt.datetime:
    try:
        saved = dt.datetime.fromtimestamp(notify_path(ws).stat().st_mtime, dt.UTC)
    except OSError:
        saved = now
    return max(saved, now - NEW_WEBHOOK_LOOKBACK)


def _cursors(
    con: duckdb.DuckDBPyConnection, config: NotifyConfig, since: dt.datetime, now: dt.datetime
) -> dict[str, tuple[int, dt.datetime]]:
    """webhook -> (last event id looked at, subscribed since); new webhooks get a cursor first."""
    names = [h.name for h in config.webhooks]
    known = query_frame(
        con,
        "SELECT webhook, last_event_id, subscribed_at FROM notify_cursors WHERE list_contains(?, webhook)",
        [names],
    )
    cursors = {r[0]: (int(r[1]), r[2].astimezone(dt.UTC)) for r in known.iter_rows()}
    new = [n for n in names if n not in cursors]
    if new:
        row = first_row(con, "SELECT coalesce(max(id), 0) FROM events WHERE ts < ?", [since])
        start = int(row[0]) if row else 0
        con.execute(
            "INSERT INTO notify_cursors SELECT unnest(?), ?, ?, ? ON CONFLICT DO NOTHING",
            [new, start, since, now],
        )
        cursors.update({n: (start, since) for n in new})
    return cursors


def enqueue(
    con: duckdb.DuckDBPyConnection, config: NotifyConfig, since: dt.datetime, now: dt.datetime
) -> int:
    """Create the deliveries for events after each webhook's cursor (in the caller's transaction)."""
    if not config.webhooks:
        return 0
    cursors = _cursors(con, config, since, now)
    rescan_from = now - RESCAN
    events = query_frame(
        con,
        "SELECT id, ts, actor, action FROM events WHERE id > ? OR ts >= ? ORDER BY id",
        [min(c for c, _ in cursors.values()), rescan_from],
    )
    if events.is_empty():
        return 0
    events = with_kinds(events.with_columns(pl.col("ts").dt.convert_time_zone("UTC")))
    parts = []
    for hook in config.webhooks:
        cursor, subscribed = cursors[hook.name]
        kinds = [k for k in PRIORITY if k in hook.kinds]
        fresh = (pl.col("id") > cursor) | ((pl.col("ts") >= rescan_from) & (pl.col("ts") >= subscribed))
        heard = pl.any_horizontal([pl.col(f"is_{k}") for k in kinds])
        parts.append(
            events.filter(fresh & heard).select(
                pl.col("id").alias("event_id"),
                pl.lit(hook.name).alias("webhook"),
                pl.coalesce([pl.when(pl.col(f"is_{k}")).then(pl.lit(k)) for k in kinds]).alias("kind"),
            )
        )
    created = _insert_returning(
        con,
        "INSERT INTO deliveries (event_id, webhook, kind, status, attempts, created_at, next_attempt_at) "
        "SELECT event_id, webhook, kind, 'pending', 0, ?, ? FROM frame ON CONFLICT DO NOTHING RETURNING id",
        [now, now],
        pl.concat(parts),
    )
    con.execute(
        "UPDATE notify_cursors SET last_event_id = greatest(last_event_id, ?), updated_at = ? "
        "WHERE list_contains(?, webhook)",
        [int(events["id"].max()), now, [h.name for h in config.webhooks]],  # type: ignore[arg-type]
    )
    return created


# --------------------------------------------------------------------------- send and record

_DUE_COLUMNS = (
    "d.id, d.event_id, d.webhook, d.kind, d.attempts, d.next_attempt_at, "
    "e.ts, e.actor, e.system, e.action, e.reason, e.before, e.after"
)


@dataclass
class _Budget:
    seconds: float

    def take(self, spent: float) -> None:
        self.seconds = max(0.0, self.seconds - spent)


def _queue(ws: Workspace, config: NotifyConfig, now: dt.datetime) -> tuple[int, pl.DataFrame]:
    """Enqueue new events and read every webhook's pending deliveries in order (one short connection)."""
    with connect(ws.db_path) as con:
        try:
            with transaction(con):
                created = enqueue(con, config, _subscribed_since(ws, now), now)
        except _CONFLICTS:
            created = 0  # another dispatcher enqueued the same events (or first saw a webhook) just now
        pending = query_frame(
            con,
            f"SELECT {_DUE_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id "  # noqa: S608
            "WHERE d.status = 'pending' AND list_contains(?, d.webhook) ORDER BY d.webhook, d.event_id, d.id",
            [[h.name for h in config.webhooks]],
        )
    return created, pending


def _claim(ws: Workspace, delivery_id: int, lease_s: float) -> bool:
    """Lease one pending delivery for this dispatcher; False if someone else holds or finished it."""
    now = _now()
    try:
        with connect(ws.db_path) as con, transaction(con):
            rows = con.execute(
                "UPDATE deliveries SET leased_until = ? WHERE id = ? AND status = 'pending' "
                "AND (leased_until IS NULL OR leased_until < ?) RETURNING id",
                [now + dt.timedelta(seconds=lease_s), delivery_id, now],
            ).fetchall()
    except _CONFLICTS:
        return False
    return bool(rows)


def _retrying(write: Callable[[], None], tries: int = 5) -> None:
    """A write that another thread's transaction may touch at the same moment: try again shortly."""
    for n in range(tries):
        try:
            write()
            return
        except _CONFLICTS:
            if n == tries - 1:
                raise
            time.sleep(0.02 * (n + 1))


def _record(ws: Workspace, delivery_id: int, outcome: sender.Outcome, *, release: bool) -> None:
    _retrying(lambda: _record_once(ws, delivery_id, outcome, release=release))


def _record_once(ws: Workspace, delivery_id: int, outcome: sender.Outcome, *, release: bool) -> None:
    now = _now()
    delay = dt.timedelta(seconds=outcome.next_delay_s or 0.0)
    with connect(ws.db_path) as con:
        con.execute(
            "UPDATE deliveries SET status = ?, attempts = ?, last_error = ?, last_http_status = ?, "
            "next_attempt_at = ?, delivered_at = ?, "
            "leased_until = CASE WHEN ? THEN NULL ELSE leased_until END WHERE id = ?",
            [
                outcome.status,
                outcome.attempts,
                None if outcome.status == "delivered" else outcome.last_error,
                outcome.last_http_status,
                now + delay,
                now if outcome.status == "delivered" else None,
                release or outcome.status != "pending",
                delivery_id,
            ],
        )


def _hold_back(ws: Workspace, delivery_id: int, error: str) -> None:
    """A delivery that cannot be attempted now (no secret): say why, and let go of the lease."""

    def write() -> None:
        with connect(ws.db_path) as con:
            con.execute(
                "UPDATE deliveries SET last_error = ?, leased_until = NULL WHERE id = ?", [error, delivery_id]
            )

    _retrying(write)


def _send_webhook(
    ws: Workspace,
    config: NotifyConfig,
    hook: Webhook,
    rows: list[dict[str, Any]],
    *,
    flush: bool,
    budget: _Budget,
    sleep: sender.Sleep,
    rand: sender.Rand,
    now: dt.datetime,
) -> list[DeliveryResult]:
    """Send ``hook``'s pending deliveries in order, stopping at the first that has to wait."""
    results: list[DeliveryResult] = []
    secret = hook.resolve_secret()
    for row in rows:
        if not flush and row["next_attempt_at"] > now:
            break  # its retry is not due, and the later ones keep their place behind it
        lease_s = budget.seconds + config.max_attempts * 2 * config.timeout_s + LEASE_MARGIN_S
        if not _claim(ws, row["id"], lease_s):
            break  # another dispatcher is sending this webhook's queue right now
        result = DeliveryResult(
            id=row["id"],
            event_id=row["event_id"],
            webhook=hook.name,
            kind=row["kind"],
            system=row["system"],
            status="pending",
            attempts=row["attempts"],
        )
        results.append(result)
        if secret is None:
            result.last_error = (
                f"environment variable {hook.secret_env} is not set: nothing signed, nothing sent"
            )
            _hold_back(ws, row["id"], result.last_error)
            break
        body = encode(build_payload({**row, "id": row["event_id"]}, row["kind"]))
        outcome = sender.deliver(
            hook.url,
            secret,
            body,
            headers={
                DELIVERY_HEADER: str(row["id"]),
                EVENT_HEADER: row["kind"],
                EVENT_ID_HEADER: str(row["event_id"]),
            },
            timeout_s=config.timeout_s,
            max_attempts=config.max_attempts,
            backoff_s=config.backoff_s,
            max_backoff_s=config.max_backoff_s,
            jitter=config.jitter,
            attempts_done=row["attempts"],
            wait_s=budget.seconds,
            sleep=sleep,
            rand=rand,
            on_attempt=lambda _attempt, so_far, d=row["id"]: _record(ws, d, so_far, release=False),
        )
        budget.take(outcome.spent_s)
        if outcome.status == "pending":
            _record(ws, row["id"], outcome, release=True)
        result.status, result.attempts = outcome.status, outcome.attempts
        result.last_error, result.delays = outcome.last_error, outcome.delays
        if outcome.status == "pending":
            break  # keep the order: the rest wait for this one's retry
    return results


def dispatch(
    ws: Workspace,
    *,
    flush: bool = False,
    wait_s: float | None = None,
    config: NotifyConfig | None = None,
    sleep: sender.Sleep = time.sleep,
    rand: sender.Rand = random.random,
) -> DispatchReport:
    """Enqueue new events for every webhook, send what is due, record each outcome.

    ``flush`` sends every pending delivery now, even those whose retry is not
    due yet, and waits up to ``flush_wait_s`` instead of ``wait_s``. Raises
    InputError for a malformed ``notify.toml`` (the ``notify`` command shows
    it); :func:`dispatch_quietly` is the variant that never raises.
    """
    config = config if config is not None else load_config(ws)
    report = DispatchReport(problems=config.problems(notify_path(ws)))
    if not config.webhooks or not ws.db_path.exists():
        return report
    now = _now()
    report.enqueued, pending = _queue(ws, config, now)
    budget = _Budget(wait_s if wait_s is not None else config.flush_wait_s if flush else config.wait_s)
    for hook in config.webhooks:
        rows = pending.filter(pl.col("webhook") == hook.name).to_dicts()
        if rows:
            report.results += _send_webhook(
                ws, config, hook, rows, flush=flush, budget=budget, sleep=sleep, rand=rand, now=now
            )
    return report


def dispatch_quietly(ws: Any) -> DispatchReport | None:
    """:func:`dispatch` after a change, for the use cases and the CLI: cheap when there is no
    ``notify.toml``, and never raises (a problem is logged; the deliveries wait for the next one)."""
    try:
        if not isinstance(ws, Workspace) or not notify_path(ws).is_file() or not ws.db_path.exists():
            return None
        return dispatch(ws)
    except Exception as exc:  # noqa: BLE001 - a notification problem must never fail the change itself
        log.warning("notifications not sent now (they wait for the next dispatch): %s", exc)
        return None


# --------------------------------------------------------------------------- reading and re-queueing


def list_deliveries(
    con: duckdb.DuckDBPyConnection, *, statuses: list[str] | None = None, limit: int | None = 100
) -> pl.DataFrame:
    """Deliveries newest first, with the event's system and action."""
    params: list[Any] = [list(statuses or STATUSES)]
    sql = (
        "SELECT d.id, d.created_at, d.webhook, d.kind, e.system, e.action, d.status, d.attempts, "
        "d.last_error, d.last_http_status, d.next_attempt_at, d.delivered_at, d.event_id "
        "FROM deliveries d LEFT JOIN events e ON e.id = d.event_id "
        "WHERE list_contains(?, d.status) ORDER BY d.id DESC"
    )
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return query_frame(con, sql, params)


def status_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    frame = query_frame(con, "SELECT status, count(*) AS n FROM deliveries GROUP BY status")
    found = dict(zip(frame["status"].to_list(), frame["n"].to_list(), strict=True))
    return {s: int(found.get(s, 0)) for s in STATUSES}


def requeue_failed(con: duckdb.DuckDBPyConnection, webhooks: list[str]) -> int:
    """Give failed deliveries to these webhooks a fresh set of attempts (after the receiver is fixed)."""
    now = _now()
    return len(
        con.execute(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
            "leased_until = NULL WHERE status = 'failed' AND list_contains(?, webhook) RETURNING id",
            [now, webhooks],
        ).fetchall()
    )
