"""The capacity probe: each version's sustainable requests per second, measured side by side.

Real served processes on loopback; what is checked is a ratio of two rates
measured in the same probe (turns alternate), never a rate on its own.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from bench.aa_calibration import SYSTEM, serve, slowed_copy
from engine import services
from engine.errors import InputError, StateConflictError
from engine.parallel import capacity
from engine.parallel.workload import request_mix

NAME = "hello_world_api"


def test_a_deliberately_slower_version_measures_a_lower_capacity(tmp_path: Path) -> None:
    """The copy sleeps 10 ms in every call: it cannot serve more than 100 req/s, the original several
    times that, so new/old is far below 1 in every round, whatever else the machine is doing."""
    procs = [serve(SYSTEM), serve(slowed_copy(SYSTEM, tmp_path / "slow", delay_s=0.010))]
    try:
        ports = {"old": procs[0][1], "new": procs[1][1]}
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['old']}/endpoints", timeout=5) as answer:
            mix = request_mix(json.loads(answer.read())["endpoints"])
        result = capacity.probe(ports, mix, system=NAME, actor="t", rounds=2, round_s=1.0, connections=4)
    finally:
        for proc, _ in procs:
            proc.terminate()
    assert result.valid, result.note
    assert [p.version for p in result.phases] == ["old", "new", "new", "old"]  # turns alternate
    assert result.change is not None and result.change < -0.5, result.describe()
    assert result.high is not None and result.high < -0.3  # in each round, not only on average
    assert all(p.errors == 0 for p in result.phases)


def test_a_probe_is_recorded_with_who_and_when_and_needs_both_versions(ready_ws) -> None:
    ws = ready_ws(NAME)
    with pytest.raises(StateConflictError, match="needs old and new running"):
        services.measure_capacity(ws, NAME, actor="lead")
    with pytest.raises(InputError, match="--rounds"):
        services.measure_capacity(ws, NAME, actor="lead", rounds=0)
    services.deploy(ws, NAME, actor="lead")

    result = services.measure_capacity(ws, NAME, actor="lead", rounds=1, round_s=0.5, connections=2)

    assert result.old_rps > 0 and result.new_rps > 0 and result.change is not None
    assert services.capacity(ws, NAME) == result  # the newest probe, kept per system
    events = services.list_events(ws, system=NAME, action=capacity.MEASURED)
    assert events.height == 1 and events["actor"][0] == "lead" and "req/s" in events["reason"][0]
    assert services.kpis(ws).systems_with_capacity == 0  # counted once the system is migrated
