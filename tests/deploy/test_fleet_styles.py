"""Every system of a hand-written fleet that passes the gate deploys, runs in parallel and is judged.

tests/data/fleets/styles holds systems written unlike the generator's (METHODS built in code, entry
and callee types no recipe knows, state kept in a file in the working folder). On today's main before
issue 15 two of them passed the gate and then could not deploy (green listed no endpoints). A system
the gate blocks is refused by deploy with a one-line reason, never half-deployed.
"""

from __future__ import annotations

import pytest

from engine import access, services
from engine.deploy import supervisor
from engine.errors import StateConflictError
from engine.models import load_v1_blueprint
from engine.workspace import REPO_ROOT, Workspace

FLEET = REPO_ROOT / "tests" / "data" / "fleets" / "styles"
ACTOR = "lead"


@pytest.fixture
def ws(tmp_path) -> Workspace:
    workspace = Workspace(tmp_path / "ws")
    services.init_workspace(workspace, FLEET, actor=ACTOR)
    access.write_roles(workspace, access.Roles(operators=[ACTOR, services.default_actor()]))
    yield workspace
    services.down(workspace, actor=ACTOR)


def test_every_system_through_the_gate_deploys_runs_and_is_judged(ws: Workspace) -> None:
    names = services.system_names(ws)
    assert sorted(names) == ["computed_api", "cwd_writer", "frontend_api"]
    for converted in services.convert_systems(ws, names, actor=ACTOR):  # every declared call bound
        blueprint = load_v1_blueprint(FLEET / converted.system / "blueprint.yaml")
        declared = sum(len(set(c.calls)) for c in blueprint.system.components)
        assert (converted.bindings, converted.errors) == (declared, 0), converted
    gate = services.validate_systems_v2(ws, names, actor=ACTOR)
    passed = [s.system for s in gate.systems if services.status(ws, s.system).state == "validated"]
    assert sorted(passed) == sorted(names)  # cwd_writer too: each side of the gate starts from a fresh folder
    for name in names:
        if name not in passed:  # blocked at the gate: deploy says why in one line, starts nothing
            with pytest.raises(StateConflictError, match=f"{name} is validation_failed"):
                services.deploy(ws, name, actor=ACTOR)
            assert services.status(ws, name).processes == []
            continue
        checklist = services.checklist(ws, name, actor=ACTOR, ack="team_notified", note="told the team")
        assert checklist.ready_to_migrate, checklist.missing()
        deployed = services.deploy(ws, name, actor=ACTOR)
        assert supervisor.healthy(deployed.green_port) and supervisor.healthy(deployed.blue_port)
        run = services.parallel_run(ws, name, actor=ACTOR, duration_s=3, bucket_s=1, rps=20)
        assert run.status == "completed" and run.summary["lost"] == 0, run.summary
        verdict = services.judge_system(ws, name, actor=ACTOR)
        mismatch = next(c for c in verdict.criteria if c.name == "mismatch_rate")
        assert mismatch.observed == 0, (name, mismatch)
