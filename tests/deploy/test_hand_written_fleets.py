"""Fleets a team wrote by hand migrate end to end on real processes, answering exactly as before.

tests/data/fleets/{bakery,clinic,ledger} are written unlike the sample
generator's code: logic in the modules, free-form configuration (lists,
strings, nested mappings), stateful components, a router with several
callees, non-ASCII text, money rounded in code (Decimal and round), METHODS
tables with Python types or none at all, no SENDS, inherited methods,
component types no recipe knows. Each goes init -> convert -> validate ->
checklist -> deploy -> parallel run -> judge, and must end with every declared
call bound and not one response that differs between old and new.

The parallel runs are short (3 s at 20 requests/s): the verdict itself is
then INCONCLUSIVE for want of samples, which is not what is tested here.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from engine import access, services
from engine.models import load_v1_blueprint
from engine.store.samples import read_run_samples
from engine.workspace import Workspace

FLEETS = Path(__file__).resolve().parents[1] / "data" / "fleets"


@pytest.mark.parametrize(
    ("fleet", "system"), [("bakery", "orders_desk"), ("clinic", "appointments"), ("ledger", "wallet_api")]
)
def test_a_hand_written_fleet_migrates_with_every_call_bound_and_no_answer_changed(
    tmp_path: Path, fleet: str, system: str
) -> None:
    ws = Workspace(tmp_path / "ws")
    imported = services.init_workspace(ws, FLEETS / fleet, actor="lead").imported
    assert imported.loaded == [system] and not imported.rejected
    access.write_roles(ws, access.Roles(operators=["lead", services.default_actor()]))
    declared = sum(
        len(set(c.calls))
        for c in load_v1_blueprint(FLEETS / fleet / system / "blueprint.yaml").system.components
    )
    try:
        converted = services.convert_systems(ws, [system], actor="lead")[0]
        assert (converted.bindings, converted.errors) == (declared, 0)  # every declared call bound
        gate = services.validate_systems_v2(ws, [system], actor="lead").systems[0]
        assert gate.passed, gate.failures()
        assert {c.name for c in gate.checks} >= {"import", "smoke", "equivalence"}
        ready = services.checklist(ws, system, actor="lead", ack="team_notified", note="told the shop")
        assert ready.ready_to_migrate, ready.missing()
        services.deploy(ws, system, "blue_green", actor="lead", reason="hand-written fleet")
        run = services.parallel_run(ws, system, actor="lead", duration_s=3, bucket_s=1, rps=20)
        assert run.status == "completed" and run.summary["lost"] == 0, run.summary
        samples = read_run_samples(ws, system, run.run_id, all_columns=True)
        new = samples.filter(pl.col("version") == "new")
        assert new.height == run.summary["sent"] > 0
        assert new["match"].sum() == new.height  # mismatch rate 0: every answer the same, byte for byte
        assert (new["status"] == 200).all() and (
            samples.filter(pl.col("version") == "old")["status"] == 200
        ).all()
        verdict = services.judge_system(ws, system, actor="lead")
        mismatch = next(c for c in verdict.criteria if c.name == "mismatch_rate")
        assert mismatch.observed == 0
        assert services.status(ws, system).state == "judged"
    finally:
        services.down(ws, actor="lead")
