"""The standup digest, the use cases (with their role checks), the CLI and the Audit log page section."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from engine import services
from engine.cli import main
from engine.errors import AccessDeniedError, InputError
from engine.workspace import Workspace
from tests.app.conftest import open_page
from tests.histories import at, write_history
from tests.notify.conftest import SECRET, Receiver, hook, promoted, record, write_config


@pytest.fixture
def history(sample_ws: Workspace) -> Workspace:
    return write_history(sample_ws)


def test_digest_says_what_the_standup_page_says(history: Workspace) -> None:
    as_of = at(2, 0)
    markdown = services.standup_digest(history, as_of).markdown
    m = services.kpis(history, as_of)
    assert markdown.startswith(f"# Switchyard standup, {as_of:%a %d %b %Y}")
    assert f"**Systems migrated: {m.systems_migrated} / {m.systems_total}**" in markdown
    assert f"**Success score: {m.success_score:.2f}**" in markdown
    assert f"Migration rate: {m.migration_rate:.2f} systems / day" in markdown
    assert f"| Validation success | {m.validation_success_rate:.0%} | >= 80% | **not met** |" in markdown
    assert f"| Rollbacks | {m.rollback_count} | < 5 | met |" in markdown
    assert f"| Failed migrations | {m.failed_migrations} | == 0 | **not met** |" in markdown
    assert f"| Throughput change | {m.avg_throughput_improvement:+.1%} | >= +20.0% | met |" in markdown
    assert f"| Downtime | {m.total_downtime_minutes:.1f} min |" in markdown
    for part in m.score_parts():
        assert f"| {part.name} | {part.value:.3f} | `{part.formula}` |" in markdown
    # the blockers, the day's changes, and what is next
    assert "## Blockers (3)" in markdown  # two rolled back, waiting for a new attempt; one failed gate
    when = f"{at(1, 10, 20):%d %b %H:%M} UTC"  # the history is dated from tomorrow, whatever today is
    back = f"- rolled back `hello_world_api` (rolled_back): on {when} by trigger:error_rate"
    assert back in markdown
    assert "- validation `file_upload_api` (validation_failed): store smoke: no reply" in markdown
    assert "`hello_world_api` trigger fired, rolled back (by trigger:error_rate)" in markdown
    assert "`hello_world_api` NO_GO verdict (by ann): run r1" in markdown
    assert "## Next by the plan" in markdown


def test_digest_escapes_what_people_typed(history: Workspace) -> None:
    record(
        history,
        {
            "ts": at(1, 23),
            "actor": "eve",
            "system": "todo_api_system",
            "action": "state:rolled_back",
            "reason": "see [this](http://evil.example) | <img src=x> `rm`",
            "before": {"state": "done"},
            "after": {"state": "rolled_back"},
        },
    )
    markdown = services.standup_digest(history, at(2, 0)).markdown
    assert r"see \[this\](http://evil.example) \| \<img src=x\> \`rm\`" in markdown
    assert not re.search(r"(?<!\\)[\[\]<>|`]", markdown.split("(by eve): ", 1)[1].splitlines()[0])


def test_send_digest_posts_the_markdown_to_digest_subscribers(history: Workspace, receiver: Receiver) -> None:
    write_config(
        history,
        [
            hook("standup", receiver.url + "/standup", kinds=["digest"]),
            hook("ops", receiver.url + "/ops", ["hold"]),
        ],
    )
    sent = services.send_digest(history, at(2, 0), actor="lead")
    assert [(d.webhook, d.status) for d in sent.deliveries] == [("standup", "delivered")]
    [got] = receiver.requests
    assert got.path == "/hook/standup" and got.verifies(SECRET)
    body = got.json
    assert body["kind"] == "digest"
    assert body["markdown"] == sent.markdown == services.standup_digest(history, at(2, 0)).markdown
    assert body["summary"] == f"Switchyard standup digest as of {at(2, 0):%Y-%m-%d %H:%M} UTC"
    assert "markdown" not in body["after"]
    event = services.list_events(history, action="notify:digest").row(0, named=True)
    assert (event["actor"], event["id"]) == ("lead", sent.event_id)


def test_send_digest_without_a_subscriber_says_which_file_to_fix(
    history: Workspace, receiver: Receiver
) -> None:
    path = write_config(history, [hook("ops", receiver.url, kinds=["hold"])])
    with pytest.raises(InputError) as caught:
        services.send_digest(history, actor="lead")
    assert caught.value.source == str(path) and "digest" in str(caught.value)
    assert services.list_events(history, action="notify:digest").is_empty()


def test_a_change_made_through_a_use_case_is_announced_without_asking(
    sample_ws: Workspace, receiver: Receiver
) -> None:
    write_config(sample_ws, [hook("ops", receiver.url, kinds=["hold"])])
    services.hold(sample_ws, "todo_api_system", actor="lead", reason="data migration cannot be undone")
    [got] = receiver.requests  # the use case dispatched on its way out
    assert got.json["kind"] == "hold"
    assert got.json["summary"] == (
        "todo_api_system placed on HOLD by lead (owner lead): data migration cannot be undone"
    )
    services.release(sample_ws, "todo_api_system", actor="lead", reason="migration verified")
    assert [r.json["action"] for r in receiver.requests] == ["hold:placed", "hold:released"]


def test_flush_and_test_are_for_operators(sample_ws: Workspace, receiver: Receiver) -> None:
    write_config(sample_ws, [hook("ops", receiver.url)])
    with pytest.raises(AccessDeniedError):
        services.flush_notifications(sample_ws, actor="a viewer")
    with pytest.raises(AccessDeniedError):
        services.send_test_notification(sample_ws, "ops", actor="a viewer")
    with pytest.raises(AccessDeniedError):
        services.send_digest(sample_ws, actor="a viewer")
    assert receiver.requests == []


def test_flush_can_give_failed_deliveries_another_round(sample_ws: Workspace, receiver: Receiver) -> None:
    receiver.fail_first = 2
    write_config(sample_ws, [hook("ops", receiver.url)], max_attempts=2, backoff_s=0.01)
    record(sample_ws, promoted())
    first = services.flush_notifications(sample_ws, actor="lead")
    assert [r.status for r in first.report.results] == ["failed"]
    again = services.flush_notifications(sample_ws, actor="lead", retry_failed=True)
    assert again.requeued == 1 and [r.status for r in again.report.results] == ["delivered"]
    assert services.notifications(sample_ws).counts == {"pending": 0, "delivered": 1, "failed": 0}
    event = services.list_events(sample_ws, action="notify:requeued").row(0, named=True)
    assert event["actor"] == "lead"


def cli(ws: Workspace, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--workspace", str(ws.root), *args])
    return code, capsys.readouterr().out


def test_cli_notify_test_flush_and_status(
    sample_ws: Workspace, receiver: Receiver, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("SWITCHYARD_ACTOR", "lead")
    code, out = cli(sample_ws, "notify", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["configured"] is False
    write_config(sample_ws, [hook("ops", receiver.url)], wait_s=0)
    code, out = cli(sample_ws, "notify", "--test", "ops", "--json", capsys=capsys)
    data = json.loads(out)
    assert code == 0 and data["test"]["ok"] is True and data["test"]["signed"] is True
    [probe] = receiver.requests
    assert probe.json["kind"] == "test" and probe.verifies(SECRET)
    receiver.fail_first = 10  # the next deliveries fail, and wait (wait_s = 0) for a later dispatch
    record(sample_ws, promoted())
    code, out = cli(sample_ws, "notify", capsys=capsys)  # the CLI dispatched after the command
    code, out = cli(sample_ws, "notify", "--json", capsys=capsys)
    data = json.loads(out)
    assert data["counts"]["pending"] == 1
    assert data["webhooks"][0]["url"] == f"http://127.0.0.1:{urlsplit(receiver.url).port}/…"
    [row] = data["deliveries"]
    assert (row["kind"], row["status"], row["system"]) == ("promoted", "pending", "todo_api_system")
    receiver.fail_first = 0
    code, out = cli(sample_ws, "notify", "--flush", capsys=capsys)
    assert code == 0 and "flushed: 1 delivered, 0 failed, 0 still pending" in out
    assert "deliveries: 1 delivered, 0 pending, 0 failed" in out


def test_cli_digest_out_and_send(
    history: Workspace, receiver: Receiver, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SWITCHYARD_ACTOR", "lead")
    target = tmp_path / "standup.md"
    code, out = cli(history, "digest", "--as-of", at(2, 0).isoformat(), "--out", str(target), capsys=capsys)
    assert code == 0 and f"wrote {target}" in out
    assert target.read_text() == services.standup_digest(history, at(2, 0)).markdown
    code, out = cli(history, "digest", "--send", capsys=capsys)
    assert code == 2  # no notify.toml: nobody to send it to
    write_config(history, [hook("standup", receiver.url, kinds=["digest"])])
    code, out = cli(history, "digest", "--send", "--json", capsys=capsys)
    data = json.loads(out)
    assert code == 0 and data["sent"]["deliveries"][0]["status"] == "delivered"
    assert receiver.requests[0].json["markdown"] == data["markdown"]


def test_cli_bad_notify_toml_is_one_line_naming_the_field(
    sample_ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    (sample_ws.root / "notify.toml").write_text(
        '[[webhooks]]\nname = "x"\nurl = "gopher://x"\nsecret = "s"\n'
    )
    code = main(["--workspace", str(sample_ws.root), "notify", "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert json.loads(captured.out)["error"]["location"] == "webhooks[0].url"
    assert "notify.toml" in captured.err


def test_audit_page_lists_deliveries_and_sends_pending(
    sample_ws: Workspace, receiver: Receiver, monkeypatch
) -> None:
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(sample_ws.root))
    monkeypatch.setenv("SWITCHYARD_ACTOR", "fixture")
    write_config(sample_ws, [hook("ops", receiver.url)], wait_s=0)
    receiver.fail_first = 1
    record(sample_ws, promoted())
    services.notifications(sample_ws)  # nothing sent by reading
    from engine.notify.outbox import dispatch

    dispatch(sample_ws)  # one failed attempt; the retry is not due yet
    page = open_page("audit.py")
    assert any("Notifications" in h.value for h in page.subheader)
    shown = page.dataframe[-1].value
    assert list(shown["status"]) == ["pending"] and "HTTP 500" in shown["last_error"][0]
    button = next(b for b in page.button if b.label.startswith("Send pending now"))
    button.click().run()
    assert not page.exception, page.exception
    assert any("1 delivered" in s.value for s in page.success)
    assert list(page.dataframe[-1].value["status"]) == ["delivered"]
    assert len(receiver.requests) == 2


def test_a_recorded_history_is_announced_event_by_event(history: Workspace, receiver: Receiver) -> None:
    write_config(history, [hook("decisions", receiver.url, kinds=["promoted", "rolled_back"])])
    from engine.notify.outbox import dispatch

    dispatch(history)
    got = [(b["system"], b["kind"], b["after"]["state"]) for b in receiver.bodies()]
    assert got == [
        ("todo_api_system", "promoted", "promoted"),
        ("todo_api_system", "promoted", "done"),
        ("hello_world_api", "rolled_back", "rolled_back"),
        ("simple_rest_api", "promoted", "promoted"),
        ("simple_rest_api", "rolled_back", "emergency"),
        ("simple_rest_api", "rolled_back", "rolled_back"),
    ]
    assert receiver.bodies()[4]["summary"].startswith(
        "EMERGENCY: simple_rest_api: the rollback by trigger health_checks could not verify the old version"
    )
    assert dispatch(history).results == []
