"""Validation page under AppTest: how many generated and recorded requests the gate sent, and from which run.

The bakery fleet's v2 greets one regular customer differently; only a request
the gateway recorded in an earlier run names that customer (see
tests/validate/test_replay.py for the gate and CLI side).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import access, services
from engine.workspace import Workspace
from tests.app.conftest import open_page
from tests.validate.test_replay import (
    FLEETS,
    RUN,
    SYSTEM,
    TABLET_ORDERS,
    bakery_with_a_recorded_regular,
    record,
)


def test_the_page_says_what_was_sent_and_which_run_recorded_the_differing_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = bakery_with_a_recorded_regular(tmp_path / "ws")
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(ws.root))
    at = open_page("validation.py")
    at.button(key="validate_v2").click().run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert any(
        c.startswith("Equivalence: ") and " generated and 3 recorded requests sent" in c for c in captions
    )
    shown = [m.value for m in at.markdown]
    assert f"`counter.order` · recorded request #1 · sent by a client in run `{RUN}`" in shown
    request, old, new = (json.loads(j.value) for j in at.json[:3])
    assert request == TABLET_ORDERS[1]
    assert old["hello"] == "Grüß Gott, Café Luitpold!" and new["hello"] == "Servus, Café Luitpold!"


def test_what_is_kept_is_listed_and_deleted_with_a_reason_and_a_confirmation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace(tmp_path / "ws")
    services.init_workspace(ws, FLEETS / "bakery", actor="tester")
    access.write_roles(ws, access.Roles(operators=["tester", services.default_actor()]))
    record(ws, TABLET_ORDERS)
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(ws.root))
    at = open_page("validation.py")
    kept = at.dataframe[-1].value
    assert kept["kept"].sum() == 4 and set(kept["run_id"]) == {RUN}
    at.button(key="forget").click().run()
    assert any("Give a reason and tick" in e.value for e in at.error)
    assert services.recorded_requests(ws, SYSTEM).height == 2  # nothing deleted yet
    at.text_input(key="forget-reason").input("customer asked")
    at.checkbox(key="forget-sure").check()
    at.button(key="forget").click().run()
    assert not at.exception, at.exception
    assert any("Deleted 4 request bodies of 1 run(s)" in s.value for s in at.success)
    assert services.recorded_requests(ws, SYSTEM).height == 0
