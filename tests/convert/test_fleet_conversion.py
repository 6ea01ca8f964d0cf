"""On the whole sample fleet: v2 beats v1, every failure is explained, clean systems answer as v1 does."""

from __future__ import annotations

import json

import anyio
import pytest

from engine.convert.converter import convert_blueprint
from engine.fleet.generator import PILOT
from engine.models import load_v1_blueprint
from engine.runtime.legacy import LegacySystem, example_message
from engine.runtime.port_system import PortSystem
from engine.validate.gate import gate_outcome, validate_v2
from engine.validate.v1 import validate_v1_fleet
from engine.workspace import SAMPLE_FLEET_DIR


@pytest.fixture(scope="module")
def converted():
    return {
        d.name: convert_blueprint(load_v1_blueprint(d / "blueprint.yaml"), d)
        for d in sorted(SAMPLE_FLEET_DIR.iterdir())
        if d.is_dir()
    }


def test_v2_rate_beats_v1_and_calls_to_nothing_stay_broken(converted) -> None:
    results = [validate_v2(r.blueprint) for r in converted.values()]
    v2_rate = sum(r.passed for r in results) / len(results)
    v1_rate = validate_v1_fleet(SAMPLE_FLEET_DIR).validation_success_rate
    assert v2_rate > v1_rate
    dropped = [d for r in converted.values() for d in r.report.decisions if d.kind == "binding_dropped"]
    assert dropped and all(d.severity == "error" for d in dropped)  # v1's calls to nothing, reported
    for r in results:
        if not r.passed:  # what still fails names a real reason
            assert all(c.message for c in r.failures())
            found = {c.name for c in r.failures()}
            assert found & {"schema_compatible", "port_bound", "binding_valid", "smoke"}


@pytest.mark.parametrize("name", PILOT)
def test_faithful_conversion_answers_like_v1(converted, name: str) -> None:
    system_dir = SAMPLE_FLEET_DIR / name
    legacy = LegacySystem.load(system_dir, load_v1_blueprint(system_dir / "blueprint.yaml"))
    port = PortSystem(converted[name].blueprint)

    async def both() -> list[tuple[dict, dict]]:
        pairs = []
        async with port.running():
            for _ in range(3):
                for endpoint, shape in sorted(port.endpoints().items()):
                    message = example_message(shape)
                    pairs.append((legacy.handle(endpoint, message), await port.handle(endpoint, message)))
        return pairs

    for old, new in anyio.run(both):
        assert json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def test_unmapped_type_changes_answers(converted) -> None:
    """A defaulted recipe really behaves differently: the parallel run will see it."""
    name = "monitoring_alert_router"
    system_dir = SAMPLE_FLEET_DIR / name
    legacy = LegacySystem.load(system_dir, load_v1_blueprint(system_dir / "blueprint.yaml"))
    port = PortSystem(converted[name].blueprint)

    async def ask() -> dict:
        async with port.running():
            return await port.handle("alert", {"message": "disk full"})

    assert legacy.handle("alert", {"message": "disk full"})["data"]["sent"] is True
    assert "sent" not in anyio.run(ask)["data"]


def test_gate_outcome_follows_the_seed() -> None:
    from engine.models.validation import Check, SystemValidation

    low = SystemValidation(
        system="s",
        blueprint_version="v2",
        checks=[Check(name="a", passed=True), Check(name="b", passed=False)],
    )
    assert gate_outcome(low).model_dump() == {
        "success": False,
        "reason": "Validation failed",
        "rollback_needed": False,
    }
    high = SystemValidation(
        system="s", blueprint_version="v2", checks=[Check(name=str(i), passed=i > 0) for i in range(5)]
    )
    assert gate_outcome(high).success
