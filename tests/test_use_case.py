"""After a use case that changed something, the hooks run: one explicit list, once per outermost call.

``operator_only`` only checks the role; the engine's own work acts as an
engine actor that no page, CLI argument or file can spell.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import access, migration, services, use_case
from engine.errors import AccessDeniedError, StateConflictError
from engine.workspace import Workspace

NAME = "hello_world_api"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What ran after each change, by hook, in order (the real hooks replaced by recorders)."""
    ran: list[str] = []
    monkeypatch.setattr(
        use_case,
        "AFTER_CHANGE",
        (lambda ws: ran.append("snapshot"), lambda ws: ran.append("outbox")),
    )
    return ran


def test_every_guarded_use_case_runs_the_hooks_after_a_change() -> None:
    guarded = {
        name: fn
        for module in (services, migration)
        for name, fn in vars(module).items()
        if callable(fn) and hasattr(fn, "requires_operator")
    }
    assert len(guarded) >= 25
    assert [name for name, fn in guarded.items() if not getattr(fn, "changes_state", False)] == []


def test_hooks_run_once_in_order_and_only_when_the_audit_log_grew(
    sample_ws: Workspace, hooks: list[str]
) -> None:
    services.hold(sample_ws, NAME, actor="lead", reason="orders table migrated")
    assert hooks == ["snapshot", "outbox"]
    with pytest.raises(StateConflictError, match="already held"):  # refused before writing anything
        services.hold(sample_ws, NAME, actor="lead", reason="again")
    assert hooks == ["snapshot", "outbox"]
    services.convert_systems(sample_ws, [NAME, "simple_rest_api"], actor="lead")  # two systems, one use case
    assert hooks == ["snapshot", "outbox"] * 2


def test_a_failing_hook_fails_nothing_and_the_next_still_runs(
    sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = []

    def broken(ws: Workspace) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(use_case, "AFTER_CHANGE", (broken, lambda ws: ran.append("outbox")))
    held = services.hold(sample_ws, NAME, actor="lead", reason="orders table migrated")
    assert held.system == NAME and ran == ["outbox"]


def test_the_first_start_acts_as_the_engine_and_its_hooks_run_once(
    empty_ws: Workspace, hooks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHYARD_ACTOR", "server-owner")
    assert services.ensure_initialised(empty_ws)  # import and validate inside: one use case for the hooks
    assert hooks == ["snapshot", "outbox"]
    assert services.list_events(empty_ws, action="imported", limit=1)["actor"][0] == "switchyard"


def test_nobody_borrows_the_engine_by_its_name(sample_ws: Workspace) -> None:
    with pytest.raises(AccessDeniedError):
        services.hold(sample_ws, NAME, actor="switchyard", reason="a name is not the engine")
    assert (
        services.hold(sample_ws, NAME, actor=access.engine_actor(), reason="the engine").placed_by
        == "switchyard"
    )


def test_no_code_skips_a_use_case_check_through_wrapped() -> None:
    files = [
        *(ROOT / "engine").rglob("*.py"),
        *(ROOT / "pages").rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
    ]
    found = [
        str(path.relative_to(ROOT))
        for path in files
        if path.name != "test_use_case.py" and ".__wrapped__(" in path.read_text(encoding="utf-8")
    ]
    assert found == []
