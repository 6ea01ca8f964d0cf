"""What a client sent during a real parallel run is replayed by the gate the next time round (issue 15 pt 3).

On real processes: the hand-written bakery is deployed and run in parallel
while a shop tablet sends a regular customer's order through the gateway
beside the run's own workload. The gateway (configured by the supervisor
from the policy) keeps that order; after the rollback the system is
converted again and its v2 changed so it greets that customer its own way.
Only the recorded order names the customer: the gate blocks the system on
it and names the run it came from.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from engine import access, services
from engine.deploy.supervisor import gateway_port, post_json
from engine.store import recorded_requests
from engine.workspace import Workspace
from tests.validate.test_replay import FLEETS, SYSTEM, TABLET_ORDERS, regular_greeted_differently

REGULAR = TABLET_ORDERS[1]


def test_an_order_a_client_sent_in_a_run_blocks_a_later_v2_that_answers_it_differently(
    tmp_path: Path,
) -> None:
    ws = Workspace(tmp_path / "ws")
    services.init_workspace(ws, FLEETS / "bakery", actor="lead")
    access.write_roles(ws, access.Roles(operators=["lead", services.default_actor()]))
    services.convert_systems(ws, [SYSTEM], actor="lead")
    assert services.validate_systems_v2(ws, [SYSTEM], actor="lead").systems[0].passed
    services.checklist(ws, SYSTEM, actor="lead", ack="team_notified", note="told the shop")
    try:
        services.deploy(ws, SYSTEM, "blue_green", actor="lead", reason="replay journey")
        port = gateway_port(ws)
        assert port is not None
        stop, answers = threading.Event(), []

        def tablet() -> None:  # a real client beside the run's workload
            while not stop.wait(0.3):
                answers.append(post_json(port, f"/s/{SYSTEM}/call/order", REGULAR))

        client = threading.Thread(target=tablet)
        client.start()
        try:
            run = services.parallel_run(ws, SYSTEM, actor="lead", duration_s=2, bucket_s=1, rps=10)
        finally:
            stop.set()
            client.join()
        assert run.status == "completed" and answers
        services.rollback(ws, SYSTEM, actor="lead", reason="the shop asked to wait")
    finally:
        services.down(ws, actor="lead")
    kept = recorded_requests.read(recorded_requests.run_file(ws.samples_dir, SYSTEM, run.run_id))
    counted = sum(per.requests for per in kept.endpoints.values())
    # the run's own requests, and the tablet's sent while the run recorded (it also sent before and after)
    assert run.summary["sent"] < counted <= run.summary["sent"] + len(answers)
    assert REGULAR in [json.loads(k.body) for k in kept.endpoints["order"].kept.values()]

    services.convert_systems(ws, [SYSTEM], actor="lead")  # rolled back -> converted again
    regular_greeted_differently(ws.v2_dir / SYSTEM / "components")
    gate = services.validate_systems_v2(ws, [SYSTEM], actor="lead").systems[0]
    assert not gate.passed and gate.requests_sent()["recorded"] >= 1
    failed = gate.failures()
    assert [(c.name, c.target) for c in failed] == [("equivalence", "counter.order")]
    evidence = failed[0].evidence or []
    assert evidence and all(e["source"] == "recorded" and e["run_id"] == run.run_id for e in evidence)
    assert evidence[0]["request"] == REGULAR
    assert "Servus, Café Luitpold!" in json.dumps(evidence[0]["v2"], ensure_ascii=False)
