"""Validation page under AppTest: how many generated and recorded requests the gate sent, and from which run.

The bakery fleet's v2 greets one regular customer differently; only a request
the gateway recorded in an earlier run names that customer (see
tests/validate/test_replay.py for the gate and CLI side).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.validate.test_replay import RUN, TABLET_ORDERS, bakery_with_a_recorded_regular

PAGES = Path(__file__).resolve().parents[2] / "pages"


def test_the_page_says_what_was_sent_and_which_run_recorded_the_differing_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = bakery_with_a_recorded_regular(tmp_path / "ws")
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(ws.root))
    at = AppTest.from_file(str(PAGES / "validation.py"), default_timeout=60)
    at.run()
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
