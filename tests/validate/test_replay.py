"""The gate replays requests real clients sent in earlier runs (issue 15 point 3), beside the generated ones.

On the hand-written bakery fleet: after conversion, v2's counter greets one
regular customer, "Café Luitpold", differently from v1. No request the gate
builds from the declared shapes names that customer, so without replay the
gate passes this v2; with the requests the gateway recorded in an earlier
run (written by the gateway's own recorder), it is blocked, and the check,
`validate` and `show` say which request it was, which run recorded it, and
how many requests of each kind were sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import access, services
from engine.cli import main
from engine.deploy.request_sample import RequestSample
from engine.judge.policy import RecordedRequestsPolicy, load_policy
from engine.store import connect, deployments, recorded_requests
from engine.workspace import Workspace

FLEETS = Path(__file__).resolve().parents[1] / "data" / "fleets"
SYSTEM = "orders_desk"
RUN = "r-20261204T170000-4f2a1c"
TABLET_ORDERS = [  # what the shop tablets sent during the run (one regular among them)
    {"item": "Brötchen", "qty": 6, "customer": "Frau Huber"},
    {"item": "Sahnetorte", "qty": 1, "customer": "Café Luitpold"},
    {"item": "Brötchen", "qty": 6, "customer": "Frau Huber"},
    {"item": "Laugenbrezel", "qty": 12, "customer": "Kindergarten St. Anna"},
]


def regular_greeted_differently(v2_components: Path) -> None:
    """v2 (not v1) greets one customer its own way: a value only real traffic carries."""
    counter = v2_components / "counter.py"
    text = counter.read_text(encoding="utf-8")
    old = "        return f\"{self._greeting}, {customer.strip() or 'Kundschaft'}!\""
    assert old in text
    new = '        if customer == "Café Luitpold":\n            return "Servus, Café Luitpold!"\n' + old
    counter.write_text(text.replace(old, new), encoding="utf-8")


def record(ws: Workspace, orders: list[dict[str, object]]) -> None:
    """What the gateway's recorder keeps and writes while a parallel run of the system records."""
    sample = RequestSample(ws.samples_dir)
    sample.configure({"per_endpoint": 50, "max_body_bytes": 8192}, {(SYSTEM, RUN)})
    for order in orders:
        sample.add(SYSTEM, RUN, "order", json.dumps(order, ensure_ascii=False).encode())
    sample.add(SYSTEM, RUN, "menu", b"{}")
    assert sample.write(sample.take(final=True)) == 4  # 3 distinct orders + the menu request


def bakery_with_a_recorded_regular(root: Path) -> Workspace:
    """The bakery converted, its v2 greeting the regular its own way, and a run's recorded orders."""
    ws = Workspace(root)
    services.init_workspace(ws, FLEETS / "bakery", actor="lead")
    access.write_roles(ws, access.Roles(operators=["lead", services.default_actor()]))
    services.convert_systems(ws, [SYSTEM], actor="lead")
    regular_greeted_differently(ws.v2_dir / SYSTEM / "components")
    record(ws, TABLET_ORDERS)
    return ws


def cli(capsys: pytest.CaptureFixture[str], ws: Workspace, *argv: str, code: int = 0) -> str:
    assert main(["--workspace", str(ws.root), *argv]) == code
    return capsys.readouterr().out


def test_a_difference_only_real_traffic_shows_is_found_by_a_recorded_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = bakery_with_a_recorded_regular(tmp_path / "ws")

    # replay off (policy): only generated requests are sent, and they never name that customer
    off = load_policy().model_copy(
        update={"recorded_requests": RecordedRequestsPolicy(replay_per_endpoint=0)}
    )
    with monkeypatch.context() as m:
        m.setattr(services, "load_policy", lambda *_: off)
        blind = services.validate_systems_v2(ws, [SYSTEM], actor="lead").systems[0]
    assert blind.passed, blind.failures()
    assert blind.requests_sent()["generated"] > 50 and blind.requests_sent().get("recorded", 0) == 0

    # replay on (the shipped policy): the recorded order finds it
    text = cli(capsys, ws, "validate", SYSTEM)
    assert services.status(ws, SYSTEM).state == "validation_failed"
    found = services.show_system(ws, SYSTEM).v2_validation
    assert found is not None
    sent = found.requests_sent()
    assert sent == {
        "generated": blind.requests_sent()["generated"],
        "recorded": 3,
    }  # the menu request {} is one the gate generates anyway
    failed = found.failures()
    assert [(c.name, c.target) for c in failed] == [("equivalence", "counter.order")]
    evidence = failed[0].evidence or []
    assert len(evidence) == 1 and evidence[0]["source"] == "recorded" and evidence[0]["run_id"] == RUN
    assert evidence[0]["request"] == TABLET_ORDERS[1]
    assert "Servus, Café Luitpold!" in json.dumps(evidence[0]["v2"], ensure_ascii=False)
    assert "Grüß Gott, Café Luitpold!" in json.dumps(evidence[0]["v1"], ensure_ascii=False)
    first = json.dumps(TABLET_ORDERS[1], ensure_ascii=False)
    assert failed[0].message.startswith(
        "1 of 31 requests (28 generated, 3 recorded from real traffic) answered differently, 1 of them "
        f"recorded; the first, {first} (recorded in run {RUN})"
    )
    assert f"equivalence: {sent['generated']} generated and 3 recorded requests sent to v1 and v2" in text
    assert "recorded request #1 order" in text and f"(run {RUN})" in text
    event = services.list_events(ws, system=SYSTEM, action="state:validation_failed", limit=1)
    assert json.loads(event["after"][0])["recorded_requests"] == {
        "sent": 3,
        "runs": [RUN],
        "unreadable_runs": [],
        "not_a_message": 0,
        "not_served": 0,
        "over_limit": 0,
    }  # the audit log says what was replayed from which run
    shown = cli(capsys, ws, "show", SYSTEM)
    assert f"equivalence: {sent['generated']} generated and 3 recorded requests" in shown
    assert "Servus, Café Luitpold!" in shown


def test_a_lead_sees_what_is_kept_and_can_forget_it_except_a_run_still_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path / "ws")
    services.init_workspace(ws, FLEETS / "bakery", actor="lead")
    access.write_roles(ws, access.Roles(operators=["lead", services.default_actor()]))
    record(ws, TABLET_ORDERS)
    recording = "r-20261204T190000-77aa01"
    sample = RequestSample(ws.samples_dir)
    sample.configure({"per_endpoint": 50}, {(SYSTEM, recording)})
    sample.add(SYSTEM, recording, "order", json.dumps(TABLET_ORDERS[0]).encode())
    sample.write(sample.take())
    with connect(ws.db_path) as con:  # a parallel run records now
        deployments.put_route(con, SYSTEM, strategy="blue_green", active_slot="blue", record_run=recording)

    listed = cli(capsys, ws, "recorded", SYSTEM)
    assert f"{RUN}  menu" in listed and f"{RUN}  order" in listed
    assert "5 request bodies kept" in listed and "in 2 runs" in listed
    assert main(["--workspace", str(ws.root), "recorded", SYSTEM, "--forget"]) == 2  # no reason given
    gone = cli(capsys, ws, "recorded", SYSTEM, "--forget", "--reason", "the shop's customers asked")
    assert f"deleted 4 request bodies of 1 run (kept, still recording: {recording})" in gone
    assert not recorded_requests.run_file(ws.samples_dir, SYSTEM, RUN).exists()
    assert recorded_requests.run_file(ws.samples_dir, SYSTEM, recording).exists()
    event = services.list_events(ws, action="recorded_requests:forgotten").row(0, named=True)
    assert event["actor"] == services.default_actor()  # who ran the CLI
    assert event["reason"] == "the shop's customers asked"
    assert json.loads(event["after"])["runs"] == [RUN]
