"""The outbox against a real receiver on 127.0.0.1: signed, once per webhook, retried, failed, in order."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from engine.notify import outbox
from engine.notify.config import load_config
from engine.store import connect
from engine.workspace import Workspace
from tests.notify.conftest import (
    SECRET,
    Receiver,
    Sleeps,
    hook,
    promoted,
    record,
    rolled_back,
    write_config,
)


def deliveries(ws: Workspace) -> list[dict]:
    with connect(ws.db_path) as con:
        return outbox.list_deliveries(con, limit=None).sort("id").to_dicts()


def test_a_promotion_is_posted_once_signed_with_the_secret(store_ws: Workspace, receiver: Receiver) -> None:
    write_config(store_ws, [hook("team", receiver.url)])
    record(store_ws, promoted())
    report = outbox.dispatch(store_ws)
    assert (report.enqueued, report.count("delivered")) == (1, 1)
    [got] = receiver.requests
    assert got.verifies(SECRET)
    assert not got.verifies("another secret")
    assert got.headers["Content-Type"].startswith("application/json")
    body = got.json
    assert body["kind"] == "promoted"
    assert (body["system"], body["actor"], body["action"]) == ("todo_api_system", "ann", "state:promoted")
    assert body["reason"] == "GO, p50 +1 %"
    assert body["before"] == {"state": "judged", "version": 7}
    assert body["after"]["state"] == "promoted"
    assert body["summary"] == "todo_api_system promoted by ann: GO, p50 +1 %"
    assert "http" not in body["summary"]
    assert got.headers["X-Switchyard-Event-Id"] == str(body["event_id"])
    [row] = deliveries(store_ws)
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 1, None)
    assert row["delivered_at"] is not None


def test_a_tampered_or_stale_request_does_not_verify(store_ws: Workspace, receiver: Receiver) -> None:
    write_config(store_ws, [hook("team", receiver.url)])
    record(store_ws, promoted())
    outbox.dispatch(store_ws)
    [got] = receiver.requests
    ts, sig = got.headers["X-Switchyard-Timestamp"], got.headers["X-Switchyard-Signature"]
    assert sig.startswith("sha256=") and len(sig) == len("sha256=") + 64
    from engine.notify.sign import verify

    assert verify(SECRET, got.body, ts, sig)
    assert not verify(SECRET, got.body.replace(b"ann", b"eve"), ts, sig)  # body changed
    assert not verify(SECRET, got.body, str(int(ts) + 1), sig)  # timestamp changed
    assert not verify(SECRET, got.body, ts, sig, now=int(ts) + 3600)  # replayed an hour later


def test_a_receiver_that_refuses_the_signature_fails_the_delivery_at_once(
    store_ws: Workspace, receiver: Receiver
) -> None:
    receiver.require_secret = "what the receiver expects"
    write_config(store_ws, [hook("team", receiver.url, secret="a wrong secret")])
    record(store_ws, promoted())
    sleeps = Sleeps()
    report = outbox.dispatch(store_ws, sleep=sleeps)
    assert report.count("failed") == 1
    [row] = deliveries(store_ws)
    assert (row["status"], row["attempts"], row["last_http_status"]) == ("failed", 1, 401)
    assert "HTTP 401" in row["last_error"]
    assert sleeps.delays == []  # a refusal is final: no retries


def test_each_event_is_delivered_once_per_subscribed_webhook(store_ws: Workspace, receiver: Receiver) -> None:
    write_config(
        store_ws,
        [
            hook("all", receiver.url + "/all"),
            hook("promotions", receiver.url + "/promotions", kinds=["promoted"]),
            hook("verdicts", receiver.url + "/verdicts", kinds=["verdict"]),
        ],
    )
    record(store_ws, promoted(), rolled_back(), {"actor": "ann", "system": "x", "action": "checklist"})
    first = outbox.dispatch(store_ws)
    assert first.enqueued == 3
    paths = sorted(r.path for r in receiver.requests)
    assert paths == ["/hook/all", "/hook/all", "/hook/promotions"]
    # dispatching again, and again, sends nothing twice
    for _ in range(2):
        again = outbox.dispatch(store_ws)
        assert (again.enqueued, again.results) == (0, [])
    assert len(receiver.requests) == 3
    assert len(deliveries(store_ws)) == 3
    kinds = {(r["webhook"], r["kind"]) for r in deliveries(store_ws)}
    assert kinds == {("all", "promoted"), ("all", "rolled_back"), ("promotions", "promoted")}


def test_kinds_filter_names_the_kind_the_webhook_asked_for(store_ws: Workspace, receiver: Receiver) -> None:
    write_config(store_ws, [hook("triggers", receiver.url, kinds=["trigger"])])
    record(
        store_ws,
        promoted(),  # a person's promotion: not a trigger
        rolled_back(),  # by trigger:error_rate
        {
            "actor": "ann",
            "system": "hello_world_api",
            "action": "run:parallel:triggered",
            "reason": "error rate 9.0 % > 5 %",
        },
    )
    outbox.dispatch(store_ws)
    bodies = receiver.bodies()
    assert [b["kind"] for b in bodies] == ["trigger", "trigger"]
    assert bodies[0]["kinds"] == ["rolled_back", "trigger"]
    assert bodies[0]["summary"].startswith("hello_world_api rolled back by trigger error_rate: automatic")
    assert bodies[1]["summary"] == (
        "hello_world_api: an automatic trigger fired and stopped the parallel run: error rate 9.0 % > 5 %"
    )


def test_failures_are_retried_with_growing_backoff(store_ws: Workspace, receiver: Receiver) -> None:
    receiver.fail_first = 3
    write_config(store_ws, [hook("team", receiver.url)], max_attempts=5, backoff_s=0.5)
    record(store_ws, promoted())
    sleeps = Sleeps()
    report = outbox.dispatch(store_ws, sleep=sleeps, wait_s=600)
    assert [r.status for r in report.results] == ["delivered"]
    assert len(receiver.requests) == 4
    assert sleeps.delays == [0.5, 1.0, 2.0]
    assert report.results[0].delays == sleeps.delays
    [row] = deliveries(store_ws)
    assert (row["status"], row["attempts"]) == ("delivered", 4)
    # every retry is the same body, signed afresh
    assert len({r.body for r in receiver.requests}) == 1
    assert all(r.verifies(SECRET) for r in receiver.requests)


def test_jitter_shortens_each_delay_but_they_still_grow(store_ws: Workspace, receiver: Receiver) -> None:
    receiver.fail_first = 100
    write_config(store_ws, [hook("team", receiver.url)], max_attempts=6, backoff_s=1.0, jitter=0.5)
    record(store_ws, promoted())
    sleeps = Sleeps()
    values = iter([0.9, 0.0, 0.9, 0.0, 0.9])
    outbox.dispatch(store_ws, sleep=sleeps, rand=lambda: next(values), wait_s=600)
    assert sleeps.delays == pytest.approx([0.55, 2.0, 2.2, 8.0, 8.8])
    assert all(later > earlier for earlier, later in zip(sleeps.delays, sleeps.delays[1:], strict=False))


def test_a_delivery_fails_after_max_attempts_with_the_last_error(
    store_ws: Workspace, receiver: Receiver
) -> None:
    receiver.fail_first, receiver.fail_status = 100, 503
    write_config(store_ws, [hook("team", receiver.url)], max_attempts=4, backoff_s=1.0)
    record(store_ws, promoted())
    sleeps = Sleeps()
    report = outbox.dispatch(store_ws, sleep=sleeps, wait_s=600)
    assert [r.status for r in report.results] == ["failed"]
    assert sleeps.delays == [1.0, 2.0, 4.0]
    [row] = deliveries(store_ws)
    assert (row["status"], row["attempts"], row["last_http_status"]) == ("failed", 4, 503)
    assert "HTTP 503" in row["last_error"] and "gave up after 4 attempts" in row["last_error"]
    # failed is final: later dispatches do not try again
    outbox.dispatch(store_ws, sleep=sleeps, wait_s=600)
    outbox.dispatch(store_ws, sleep=sleeps, flush=True)
    assert len(receiver.requests) == 4


def test_a_retry_not_due_waits_for_a_later_dispatch_and_keeps_the_order(
    store_ws: Workspace, receiver: Receiver
) -> None:
    receiver.fail_first = 1
    write_config(store_ws, [hook("team", receiver.url)], max_attempts=3, backoff_s=30.0, wait_s=0)
    record(store_ws, promoted("a_system"))
    record(store_ws, promoted("b_system"))
    report = outbox.dispatch(store_ws)
    assert [r.status for r in report.results] == [
        "pending"
    ]  # the first failed once; the second waits behind it
    rows = deliveries(store_ws)
    assert [r["status"] for r in rows] == ["pending", "pending"]
    assert rows[0]["attempts"] == 1 and "HTTP 500" in rows[0]["last_error"]
    assert rows[0]["next_attempt_at"] > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
    assert outbox.dispatch(store_ws).results == []  # not due yet: nothing is sent
    assert len(receiver.requests) == 1
    flushed = outbox.dispatch(store_ws, flush=True)  # a flush does not wait for the due time
    assert [r.status for r in flushed.results] == ["delivered", "delivered"]
    assert [b["system"] for b in receiver.bodies()] == ["a_system", "a_system", "b_system"]


def test_a_hung_receiver_times_out_quickly_and_is_recorded_failed(
    store_ws: Workspace, silent_url: str
) -> None:
    write_config(store_ws, [hook("hung", silent_url)], timeout_s=0.3, max_attempts=2, backoff_s=0.1)
    record(store_ws, promoted())
    start = time.monotonic()
    report = outbox.dispatch(store_ws, flush=True)
    assert time.monotonic() - start < 5
    assert [r.status for r in report.results] == ["failed"]
    [row] = deliveries(store_ws)
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert "timed out after 0.3 s" in row["last_error"]


def test_a_refused_connection_never_raises_into_the_caller(store_ws: Workspace, closed_url: str) -> None:
    write_config(store_ws, [hook("gone", closed_url)], timeout_s=0.5, max_attempts=3, wait_s=0)
    record(store_ws, promoted())
    report = outbox.dispatch_quietly(store_ws)
    assert report is not None and [r.status for r in report.results] == ["pending"]
    [row] = deliveries(store_ws)
    assert row["attempts"] == 1 and "cannot connect" in row["last_error"]


def test_a_broken_notify_toml_never_raises_from_the_quiet_dispatch(store_ws: Workspace) -> None:
    (store_ws.root / "notify.toml").write_text('[[webhooks]]\nname = "x"\nurl = "ftp://x"\nsecret = "s"\n')
    record(store_ws, promoted())
    assert outbox.dispatch_quietly(store_ws) is None


def test_a_secret_from_the_environment(store_ws: Workspace, receiver: Receiver, monkeypatch) -> None:
    write_config(store_ws, [{"name": "team", "url": receiver.url, "secret_env": "SY_TEST_HOOK_SECRET"}])
    monkeypatch.delenv("SY_TEST_HOOK_SECRET", raising=False)
    record(store_ws, promoted())
    report = outbox.dispatch(store_ws)
    assert receiver.requests == []  # nothing unsigned leaves
    assert report.problems and "SY_TEST_HOOK_SECRET is not set" in report.problems[0]
    [row] = deliveries(store_ws)
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert "SY_TEST_HOOK_SECRET is not set" in row["last_error"]
    monkeypatch.setenv("SY_TEST_HOOK_SECRET", "from-the-env")
    outbox.dispatch(store_ws)
    [got] = receiver.requests
    assert got.verifies("from-the-env")


def test_a_new_webhook_hears_of_events_after_it_was_configured(
    store_ws: Workspace, receiver: Receiver
) -> None:
    record(store_ws, {**promoted("old_system"), "ts": dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)})
    write_config(store_ws, [hook("team", receiver.url)])
    record(store_ws, promoted("new_system"))
    outbox.dispatch(store_ws)
    assert [b["system"] for b in receiver.bodies()] == ["new_system"]


def test_an_event_committed_late_with_a_lower_id_is_not_skipped(
    store_ws: Workspace, receiver: Receiver
) -> None:
    write_config(store_ws, [hook("team", receiver.url)])
    record(store_ws, promoted("first"), promoted("second"))
    with connect(store_ws.db_path) as con:  # as if "first" committed after a dispatch had seen "second"
        con.execute("DELETE FROM events WHERE system = 'first'")
        low = con.execute("SELECT min(id) FROM events").fetchone()[0] - 1
    outbox.dispatch(store_ws)
    with connect(store_ws.db_path) as con:
        con.execute(
            "INSERT INTO events (id, ts, actor, system, action, reason) VALUES (?, now(), 'ann', 'first', "
            "'state:promoted', 'late')",
            [low],
        )
    outbox.dispatch(store_ws)
    assert sorted(b["system"] for b in receiver.bodies()) == ["first", "second"]


def test_two_dispatchers_at_once_send_each_delivery_once(store_ws: Workspace, receiver: Receiver) -> None:
    write_config(store_ws, [hook("a", receiver.url + "/a"), hook("b", receiver.url + "/b")])
    record(store_ws, *[promoted(f"system_{i}") for i in range(6)])
    config = load_config(store_ws)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            outbox.dispatch(store_ws, config=config)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    outbox.dispatch(store_ws, config=config)  # whatever a lost race left pending
    assert not errors, errors
    sent = sorted((r.path, r.json["event_id"]) for r in receiver.requests)
    assert len(sent) == 12 and len(set(sent)) == 12
    assert {r["status"] for r in deliveries(store_ws)} == {"delivered"}
