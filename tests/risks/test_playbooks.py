"""Playbook ticks are audit events: operators only, the newest event per step is its state."""

from __future__ import annotations

import json

import pytest

from engine import services
from engine.cli import main
from engine.errors import AccessDeniedError, InputError
from engine.workspace import Workspace

ACTION = "playbook:data_corruption:stop_migration"


def step(ws: Workspace, checklist: str, step_id: str):
    book = next(c for c in services.playbooks(ws) if c.id == checklist)
    return next(s for s in book.steps if s.id == step_id)


def test_fresh_checklists_are_the_seeds_and_nothing_is_ticked(sample_ws: Workspace) -> None:
    books = services.playbooks(sample_ws)
    assert [(c.id, c.kind) for c in books] == [
        ("data_corruption", "playbook"),
        ("performance_degradation", "playbook"),
        ("mass_failure", "playbook"),
        ("cleanup", "cleanup"),
    ]
    assert all(not s.done and s.actor is None for c in books for s in c.steps)
    assert books[2].steps[0].text == "Initiate emergency rollback"


def test_tick_then_untick_are_two_events_and_the_newest_wins(sample_ws: Workspace) -> None:
    ticked = services.tick_playbook(
        sample_ws, "data_corruption", "stop_migration", True, actor="lead", reason="incident 42"
    )
    assert ticked.done and ticked.actor == "lead" and ticked.reason == "incident 42"
    assert step(sample_ws, "data_corruption", "stop_migration").done
    assert not step(sample_ws, "data_corruption", "isolate_systems").done

    with pytest.raises(InputError, match="untick needs a reason"):
        services.tick_playbook(sample_ws, "data_corruption", "stop_migration", False, actor="lead")
    assert step(sample_ws, "data_corruption", "stop_migration").done

    unticked = services.tick_playbook(
        sample_ws, "data_corruption", "stop_migration", False, actor="tester", reason="ticked by mistake"
    )
    assert not unticked.done and unticked.actor == "tester"
    events = services.list_events(sample_ws, action=ACTION)  # newest first
    assert events["actor"].to_list() == ["tester", "lead"]
    assert events["reason"].to_list() == ["ticked by mistake", "incident 42"]
    assert [json.loads(b) for b in events["before"]] == [{"done": True}, {"done": False}]
    assert [json.loads(a)["done"] for a in events["after"]] == [False, True]
    assert not step(sample_ws, "data_corruption", "stop_migration").done


def test_ticking_a_ticked_step_again_writes_nothing(sample_ws: Workspace) -> None:
    services.tick_playbook(sample_ws, "cleanup", "archive_old_logs", True, actor="lead")
    again = services.tick_playbook(sample_ws, "cleanup", "archive_old_logs", True, actor="tester")
    assert again.done and again.actor == "lead"
    assert services.list_events(sample_ws, action="playbook:cleanup:archive_old_logs").height == 1
    cleanup = next(c for c in services.playbooks(sample_ws) if c.id == "cleanup")
    assert cleanup.done_count == 1


def test_a_viewer_cannot_tick(sample_ws: Workspace) -> None:
    with pytest.raises(AccessDeniedError, match="may not tick playbooks"):
        services.tick_playbook(sample_ws, "mass_failure", "emergency_rollback", True, actor="visitor")
    assert services.list_events(sample_ws, action_prefix="playbook:").height == 0
    assert not step(sample_ws, "mass_failure", "emergency_rollback").done


@pytest.mark.parametrize(
    ("playbook", "step_id", "location", "got"),
    [
        ("data_corruption", "nope", "data_corruption step id", "'nope'"),
        ("nope", "stop_migration", "playbook id", "'nope'"),
        ("cleanup", "stop_migration", "cleanup step id", "'stop_migration'"),
    ],
)
def test_unknown_ids_are_bad_input(
    sample_ws: Workspace, playbook: str, step_id: str, location: str, got: str
) -> None:
    with pytest.raises(InputError) as err:
        services.tick_playbook(sample_ws, playbook, step_id, True, actor="lead")
    assert (err.value.location, err.value.got) == (location, got)
    assert services.list_events(sample_ws, action_prefix="playbook:").height == 0


def test_cli_ticks_unticks_and_refuses_bad_input(
    sample_ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = ["--workspace", str(sample_ws.root)]
    assert main([*ws, "playbook", "--tick", "data_corruption:stop_migration", "--actor", "lead"]) == 0
    assert "[x] data_corruption:stop_migration" in capsys.readouterr().out
    assert main([*ws, "playbook", "--untick", "data_corruption:stop_migration", "--actor", "lead"]) == 2
    assert "untick needs a reason" in capsys.readouterr().err
    code = main(
        [*ws, "playbook", "--untick", "data_corruption:stop_migration", "--reason", "wrong one", "--json"]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["changed"]["done"] is False
    first = next(c for c in data["playbooks"] if c["id"] == "data_corruption")["steps"][0]
    assert (first["id"], first["done"], first["reason"]) == ("stop_migration", False, "wrong one")
    assert main([*ws, "playbook", "--tick", "stop_migration"]) == 2
    assert "PLAYBOOK:STEP" in capsys.readouterr().err
    assert main([*ws, "playbook", "--tick", "mass_failure:restore_all", "--actor", "visitor"]) == 2
    assert "viewer" in capsys.readouterr().err
    assert main([*ws, "playbook", "--reason", "why"]) == 2
