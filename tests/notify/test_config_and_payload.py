"""notify.toml errors name the file and the field; events map to kinds by what the engine writes."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.errors import InputError
from engine.notify.config import load_config
from engine.notify.deliver import backoff_delay
from engine.notify.payload import build_payload, encode, kinds_of
from engine.workspace import Workspace


def test_no_file_means_no_webhooks(store_ws: Workspace) -> None:
    assert load_config(store_ws).webhooks == []


def test_a_good_file_with_defaults(store_ws: Workspace, monkeypatch) -> None:
    (store_ws.root / "notify.toml").write_text(
        '[[webhooks]]\nname = "chat"\nurl = "https://chat.example.com/hooks/T0/B0/XX"\nsecret_env = "SY_X"\n'
    )
    config = load_config(store_ws)
    [chat] = config.webhooks
    assert chat.kinds == [
        "verdict",
        "trigger",
        "promoted",
        "rolled_back",
        "hold",
        "approval_needed",
        "digest",
    ]
    assert (config.timeout_s, config.max_attempts) == (5.0, 5)
    assert chat.display_url() == "https://chat.example.com/…"  # the token in the path is not shown
    monkeypatch.setenv("SY_X", "k")
    assert chat.resolve_secret() == "k"


@pytest.mark.parametrize(
    ("body", "location", "expected"),
    [
        ('[[webhooks]]\nname = "a"\nurl = "ftp://x/y"\nsecret = "s"\n', "webhooks[0].url", "http"),
        ('[[webhooks]]\nname = "a"\nurl = "not a url"\nsecret = "s"\n', "webhooks[0].url", "http"),
        ('[[webhooks]]\nname = "a"\nurl = "https://x"\n', "webhooks[0].secret_env", "exactly one of secret"),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://x"\nsecret = "s"\nsecret_env = "V"\n',
            "webhooks[0].secret_env",
            "exactly one of secret",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://x"\nsecret_env = "not a name"\n',
            "webhooks[0].secret_env",
            "environment variable",
        ),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://x"\nsecret = "s"\nkinds = ["promoted", "deploys"]\n',
            "webhooks[0].kinds[1]",
            "'verdict'",
        ),
        ('[[webhooks]]\nname = "a"\nurl = "https://x"\nsecret = "s"\nkinds = []\n', "webhooks[0].kinds", ""),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://x"\nsecret = "s"\nsecrte = "t"\n',
            "webhooks[0].secrte",
            "",
        ),
        ('[[webhooks]]\nname = "a b"\nurl = "https://x"\nsecret = "s"\n', "webhooks[0].name", ""),
        ('timeout_s = 0\n[[webhooks]]\nname = "a"\nurl = "https://x"\nsecret = "s"\n', "timeout_s", ""),
        ("max_attempts = 0\n", "max_attempts", ""),
        (
            '[[webhooks]]\nname = "a"\nurl = "https://x"\nsecret = "s"\n'
            '[[webhooks]]\nname = "a"\nurl = "https://y"\nsecret = "s"\n',
            "webhooks",
            "unique",
        ),
        ("webhooks = [", "", "valid TOML"),
    ],
)
def test_a_bad_file_names_the_file_and_the_field(
    store_ws: Workspace, body: str, location: str, expected: str
) -> None:
    path = store_ws.root / "notify.toml"
    path.write_text(body)
    with pytest.raises(InputError) as caught:
        load_config(store_ws)
    err = caught.value
    assert err.source == str(path)
    assert err.location.startswith(location), err
    assert expected in str(err)
    assert "s3cret" not in str(err)


@pytest.mark.parametrize(
    ("action", "actor", "kinds"),
    [
        ("state:promoted", "ann", ["promoted"]),
        ("state:done", "ann", ["promoted"]),
        ("state:rolled_back", "ann", ["rolled_back"]),
        ("state:rolled_back", "trigger:error_rate", ["rolled_back", "trigger"]),
        ("state:emergency", "trigger:health_checks", ["rolled_back", "trigger"]),
        ("state:judged", "ann", ["verdict"]),
        ("verdict:rejudged", "ann", ["verdict"]),
        ("run:parallel:triggered", "ann", ["trigger"]),
        ("run:monitor:triggered", "ann", ["trigger"]),
        ("run:parallel:completed", "ann", []),
        ("trigger:error_rate", "trigger:error_rate", ["trigger"]),
        ("hold:placed", "ann", ["hold"]),
        ("hold:placed", "trigger:error_rate", ["hold", "trigger"]),
        ("hold:released", "ann", ["hold"]),
        ("state:hold", "ann", ["hold"]),
        ("approval:requested", "ann", ["approval_needed"]),
        ("approval:granted", "bob", []),
        ("notify:digest", "ann", ["digest"]),
        ("notify:test", "ann", []),
        ("checklist", "ann", []),
        ("state:green_deployed", "ann", []),
        ("imported", "fixture", []),
    ],
)
def test_kinds_follow_what_the_engine_writes(action: str, actor: str, kinds: list[str]) -> None:
    assert kinds_of(action, actor) == kinds


def test_payload_of_a_hold_and_an_approval_request() -> None:
    ts = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    hold = {
        "id": 41,
        "ts": ts,
        "actor": "ann",
        "system": "todo_api_system",
        "action": "hold:placed",
        "reason": "data migration cannot be undone\n<http://evil|click>",
        "before": '{"held": false, "state": "monitoring"}',
        "after": '{"held": true, "owner": "bob", "state": "monitoring"}',
    }
    payload = build_payload(hold, "hold")
    assert payload["ts"] == "2026-12-01T09:30:00+00:00"
    assert payload["after"] == {"held": True, "owner": "bob", "state": "monitoring"}
    assert payload["summary"] == (
        "todo_api_system placed on HOLD by ann (owner bob): data migration cannot be undone <http://evil|click>"
    )
    assert "<" not in payload["text"] and "&lt;http://evil|click&gt;" in payload["text"]
    request = {
        **hold,
        "id": 42,
        "action": "approval:requested",
        "reason": "ann wants to promote on verdict 7",
    }
    assert build_payload(request, "approval_needed")["summary"] == (
        "todo_api_system needs a second operator's approval to promote: ann wants to promote on verdict 7"
    )
    assert encode(payload) == encode(build_payload(hold, "hold"))  # the same bytes on every retry


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [backoff_delay(n, base_s=1.0, max_s=10.0, jitter=0.0) for n in range(1, 7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_delay(3, base_s=1.0, max_s=10.0, jitter=0.25, rand=lambda: 1.0) == 3.0


def test_summaries_of_verdicts_and_a_rejudgement() -> None:
    judged = {
        "id": 7,
        "actor": "ann",
        "system": "todo_api_system",
        "action": "state:judged",
        "reason": "verdict GO on run r1",
        "after": '{"state": "judged", "verdict": "GO", "verdict_id": 3, "run_id": "r1"}',
    }
    summary = build_payload(judged, "verdict")["summary"]
    assert summary == "todo_api_system: verdict GO on run r1, judged by ann"
    again = {
        **judged,
        "action": "verdict:rejudged",
        "reason": "what if p95 may grow 5 %",
        "before": '{"verdict_id": 3, "verdict": "GO"}',
        "after": '{"run_id": "r1", "verdict": "NO_GO"}',
    }
    assert build_payload(again, "verdict")["summary"] == (
        "todo_api_system judged again by ann on run r1: NO_GO (was GO): what if p95 may grow 5 %"
    )
