"""One place for which action may start in which state: engine.state.available_actions.

Every use case checks it, ``status`` (and ``status --json``) lists it, and no
module but engine/state.py spells a state as a string to decide something.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from engine import services
from engine.cli import main
from engine.errors import NotFoundError, StateConflictError
from engine.state import HOLD_FREEZES, ROLLBACK_STATES, Action, State, available_actions
from engine.store import connect
from engine.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
STATE_NAMES = {s.value for s in State}


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def state_literals(path: Path) -> list[str]:
    """Where ``path`` compares something named like a state to a state's name written as a string
    (``row["state"] == "ready"``, ``state in ("promoted", "monitoring")``), or keeps a set of two or
    more state names of its own (``{"green_deployed", "judged"}``)."""
    source = path.read_text(encoding="utf-8")
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            named = [v for side in sides for v in _strings(side) if v in STATE_NAMES]
            about_state = any(
                "state" in (ast.get_source_segment(source, side) or "").lower()
                for side in sides
                if not _strings(side)
            )
            if named and about_state:
                found.append(f"{where}:{node.lineno} compares a state to {named}")
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            values = _strings(node)
            if len(values) == len(node.elts) and len(set(values) & STATE_NAMES) >= 2:
                if set(values) <= STATE_NAMES:
                    found.append(f"{where}:{node.lineno} keeps the states {values}")
    return found


def test_no_module_outside_engine_state_compares_a_state_to_a_string() -> None:
    files = [*(ROOT / "engine").rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "app.py"]
    found = [
        hit for path in sorted(files) if path != ROOT / "engine" / "state.py" for hit in state_literals(path)
    ]
    assert found == [], "ask engine.state (State, available_actions) instead:\n" + "\n".join(found)


def test_the_check_finds_what_it_is_for(tmp_path: Path) -> None:
    """The check itself: a comparison and a private set are found, a category named like a state not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        'if row["state"] == "ready":\n    pass\n'
        "BOTH = {'green_deployed', 'judged'}\n"
        'if category == "monitoring":\n    pass\n',
        encoding="utf-8",
    )
    found = state_literals(sample)
    assert len(found) == 2 and "compares a state to ['ready']" in found[0] and "keeps the states" in found[1]


@pytest.mark.parametrize("state", list(State))
def test_available_actions_follow_the_state_machine(state: State) -> None:
    can = available_actions(state)
    assert (Action.DEPLOY in can) == (state == State.READY)
    assert (Action.START_RUN in can) == (state in (State.GREEN_DEPLOYED, State.JUDGED))
    assert (Action.JUDGE in can) == (state in (State.PARALLEL_RUN, State.JUDGED))
    assert (Action.ROLLBACK in can) == (state in ROLLBACK_STATES)
    assert Action.PROMOTE not in can or state in (State.PROMOTED, State.MONITORING)  # a window resumed
    assert Action.CHECKLIST in can  # it checks in any state and moves only validated -> ready
    held = available_actions(state, held=True)
    assert held == can - HOLD_FREEZES


def test_what_a_verdict_a_run_the_warm_window_and_direct_add() -> None:
    assert Action.PROMOTE in available_actions("judged", verdict="GO")
    assert Action.PROMOTE not in available_actions("judged", verdict="INCONCLUSIVE")
    assert Action.EXTEND in available_actions("judged", verdict="INCONCLUSIVE")
    assert Action.EXTEND not in available_actions("judged")
    assert Action.PROMOTE in available_actions("green_deployed", strategy="direct")
    assert Action.ROLLBACK in available_actions("done", warm=True)
    assert Action.ROLLBACK not in available_actions("done")
    running = available_actions("parallel_run", run_in_progress=True)
    assert Action.STOP_RUN in running and Action.START_RUN not in running
    assert Action.CALIBRATE not in running


def test_every_use_case_refuses_what_the_state_does_not_allow(sample_ws: Workspace) -> None:
    """An inventoried system: each use case that needs more says so and changes nothing."""
    name, ws = "hello_world_api", sample_ws
    with connect(ws.db_path) as con:
        before = con.execute("SELECT count(*) FROM events").fetchone()
    refused = {
        "deploy": lambda: services.deploy(ws, name, actor="tester"),
        "parallel run": lambda: services.parallel_run(ws, name, actor="tester", duration_s=5, bucket_s=1),
        "run longer": lambda: services.extend_run(ws, name, actor="tester", duration_s=5),
        "judge": lambda: services.judge_system(ws, name, actor="tester"),
        "promote": lambda: services.promote(ws, name, actor="tester", reason="r"),
        "roll back": lambda: services.rollback(ws, name, actor="tester", reason="r"),
        "validate": lambda: services.validate_systems_v2(ws, [name], actor="tester"),
        "capacity": lambda: services.measure_capacity(ws, name, actor="tester"),
    }
    for call in refused.values():
        with pytest.raises(StateConflictError):
            call()
    with pytest.raises(NotFoundError, match="no run is in progress"):
        services.stop_run(ws, name, actor="tester")
    with connect(ws.db_path) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone() == before


def test_status_lists_the_available_actions(sample_ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    name = "hello_world_api"
    code = main(["--workspace", str(sample_ws.root), "status", name, "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["available_actions"] == ["calibrate", "checklist", "convert"]
    assert data["next_step"]["available"] == data["available_actions"]
    services.hold(sample_ws, name, actor="tester", reason="data migration")
    services.convert_systems(sample_ws, [name], actor="tester")  # a hold freezes traffic, not conversion
    assert services.status(sample_ws, name).available_actions == [
        "calibrate",
        "checklist",
        "convert",
        "validate",
    ]
