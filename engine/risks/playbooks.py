"""Contingency playbooks and the cleanup checklist as ticks in the audit log.

A tick is a decision someone made under pressure ("we stopped the
migration", "backups restored"), so it is recorded like every other change:
an append-only event ``playbook:<checklist>:<step>`` with actor, reason and
before/after. There is no table of ticks to drift from the log: the current
state of a step is its newest event. Unticking is a tick back to "not done",
also recorded, and needs a reason (someone undoing a step should say why).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Literal

import duckdb
from pydantic import BaseModel

from engine.errors import InputError
from engine.risks.catalog import Checklist, RiskCatalog
from engine.store.events import append_events, list_events

ACTION_PREFIX = "playbook:"
MAX_REASON = 500


class StepView(BaseModel):
    """One step with its current tick (who, when, why), read back from the audit log."""

    checklist: str
    id: str
    text: str
    group: str | None
    done: bool
    actor: str | None = None
    ts: dt.datetime | None = None
    reason: str | None = None


class ChecklistView(BaseModel):
    id: str
    title: str
    when: str
    kind: Literal["playbook", "cleanup"]
    steps: list[StepView]

    @property
    def done_count(self) -> int:
        return sum(s.done for s in self.steps)


def action(checklist_id: str, step_id: str) -> str:
    """The audit action of a tick; ids are plain identifiers, so the ':' split is unambiguous."""
    return f"{ACTION_PREFIX}{checklist_id}:{step_id}"


def tick_state(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """The newest tick event per action (``playbook:<checklist>:<step>``), newest wins."""
    events = list_events(con, action_prefix=ACTION_PREFIX)  # newest first
    latest: dict[str, dict] = {}
    for row in events.iter_rows(named=True):
        latest.setdefault(row["action"], row)
    return latest


def _step_view(checklist: Checklist, step_id: str, latest: dict[str, dict]) -> StepView:
    step = checklist.step(step_id)
    assert step is not None
    event = latest.get(action(checklist.id, step.id))
    done = bool(json.loads(event["after"] or "{}").get("done")) if event else False
    return StepView(
        checklist=checklist.id,
        id=step.id,
        text=step.text,
        group=step.group,
        done=done,
        actor=event["actor"] if event else None,
        ts=event["ts"] if event else None,
        reason=event["reason"] if event else None,
    )


def checklist_views(con: duckdb.DuckDBPyConnection, catalog: RiskCatalog) -> list[ChecklistView]:
    """The playbooks, then the cleanup checklist, each step with its current tick."""
    latest = tick_state(con)
    return [
        ChecklistView(
            id=c.id,
            title=c.title,
            when=c.when,
            kind="cleanup" if catalog.cleanup is not None and c.id == catalog.cleanup.id else "playbook",
            steps=[_step_view(c, s.id, latest) for s in c.steps],
        )
        for c in catalog.checklists()
    ]


def find_step(catalog: RiskCatalog, checklist_id: str, step_id: str) -> Checklist:
    """The checklist holding ``step_id``; InputError naming the known ids otherwise."""
    checklist = catalog.checklist(checklist_id)
    if checklist is None:
        known = ", ".join(c.id for c in catalog.checklists())
        raise InputError("playbook", "playbook id", f"one of {known}", repr(checklist_id))
    if checklist.step(step_id) is None:
        known = ", ".join(s.id for s in checklist.steps)
        raise InputError("playbook", f"{checklist_id} step id", f"one of {known}", repr(step_id))
    return checklist


def record_tick(
    con: duckdb.DuckDBPyConnection,
    catalog: RiskCatalog,
    checklist_id: str,
    step_id: str,
    done: bool,
    *,
    actor: str,
    reason: str = "",
) -> tuple[StepView, bool]:
    """Tick (``done=True``) or untick a step; returns its state and whether an event was written.

    Ticking a step that is already ticked (someone else was quicker) writes
    nothing: the log keeps decisions, not double clicks.
    """
    checklist = find_step(catalog, checklist_id, step_id)
    reason = (reason or "").strip()
    if not done and not reason:
        raise InputError(
            "--reason", "value", "why the step is no longer done (an untick needs a reason)", "''"
        )
    if len(reason) > MAX_REASON:
        raise InputError("--reason", "value", f"at most {MAX_REASON} characters", f"{len(reason)} characters")
    current = _step_view(checklist, step_id, tick_state(con))
    if current.done == done:
        return current, False
    append_events(
        con,
        [
            {
                "actor": actor,
                "system": None,
                "action": action(checklist_id, step_id),
                "reason": reason or None,
                "before": {"done": current.done},
                "after": {"done": done, "step": current.text},
            }
        ],
    )
    return _step_view(checklist, step_id, tick_state(con)), True
