"""The seed's pre-migration checklist: six items, ``ready_to_migrate`` when all hold.

As in the seed, checking ``backup_exists`` makes today's backup when there is
none, and ``rollback_plan`` writes the plan from the template when the user
has not written one; the other items only look. ``team_notified`` is an
acknowledgement a person records (``checklist NAME --ack team_notified``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.errors import InputError
from engine.judge.policy import Policy
from engine.rollback.backups import ensure_backup, ensure_rollback_plan
from engine.runtime.legacy import RpcError
from engine.store import conversions as conversions_store
from engine.store import deployments as deploy_store
from engine.store import validations as validations_store
from engine.validate.gate import gate_outcome
from engine.validate.v1 import entry_endpoints
from engine.workspace import Workspace, safe_child

ITEMS = (
    "backup_exists",
    "tests_passing",
    "dependencies_mapped",
    "rollback_plan",
    "monitoring_setup",
    "team_notified",
)
ACKNOWLEDGED_ITEMS = frozenset({"team_notified"})
LABELS = {
    "backup_exists": "backup made",
    "tests_passing": "v2 gate passes",
    "dependencies_mapped": "dependencies mapped",
    "rollback_plan": "rollback plan written",
    "monitoring_setup": "monitoring set up",
    "team_notified": "team notified",
}
"""Each item as people say it (the seed's names stay the keys: audit events, --ack, JSON)."""


def label(item: str) -> str:
    return LABELS.get(item, item.replace("_", " "))


class ChecklistItem(BaseModel):
    name: str
    ok: bool
    detail: str

    @property
    def label(self) -> str:
        return label(self.name)


class Checklist(BaseModel):
    system: str
    items: list[ChecklistItem]
    ready_to_migrate: bool

    def missing(self) -> list[ChecklistItem]:
        return [i for i in self.items if not i.ok]

    def as_flags(self) -> dict[str, bool]:
        """The seed's shape: each item's flag plus ``ready_to_migrate``."""
        return {**{i.name: i.ok for i in self.items}, "ready_to_migrate": self.ready_to_migrate}


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def run_checklist(con: Any, ws: Workspace, system: dict[str, Any], policy: Policy) -> Checklist:
    """Check (and, for backup and plan, make) every item for one system row."""
    name = system["name"]
    source = Path(system["source_path"])
    items: list[ChecklistItem] = []

    try:
        backup = ensure_backup(ws, name, source)
        items.append(ChecklistItem(name="backup_exists", ok=True, detail=str(backup.relative_to(ws.root))))
    except (OSError, FileNotFoundError) as exc:
        backup = None
        items.append(ChecklistItem(name="backup_exists", ok=False, detail=f"backup failed: {exc}"))

    v2 = validations_store.latest_validation(con, name, "v2")
    if v2 is None:
        items.append(ChecklistItem(name="tests_passing", ok=False, detail="v2 never validated"))
    else:
        outcome = gate_outcome(v2, policy.gate)  # what the gate decided, so a system it passed can deploy
        failed = [c.name for c in v2.checks if not c.passed]
        if not outcome.success:
            detail = "the gate blocked it: " + "; ".join(outcome.blocked_by[:5])
        elif failed:
            detail = f"the gate passed it (not blocking: {', '.join(sorted(set(failed))[:5])})"
        else:
            detail = "every gate check passes"
        items.append(ChecklistItem(name="tests_passing", ok=outcome.success, detail=detail))

    latest = conversions_store.latest_report(con, name)
    if latest is None:
        items.append(ChecklistItem(name="dependencies_mapped", ok=False, detail="not converted"))
    else:
        report, _ = latest
        dropped = [
            d.message for d in report.decisions if d.kind == "binding_dropped" and d.severity == "error"
        ]
        bindings = sum(d.kind in ("binding", "binding_alias") for d in report.decisions)
        items.append(
            ChecklistItem(
                name="dependencies_mapped",
                ok=not dropped,
                detail=f"{bindings} calls became bindings" if not dropped else "; ".join(dropped[:3]),
            )
        )

    try:  # the team's code: loaded in the sandbox, never in this process
        endpoints = ", ".join(sorted(entry_endpoints(source, policy.sandbox))) or "none"
    except (RpcError, InputError, OSError) as exc:  # a broken v1 folder is reported, not raised
        endpoints = f"unknown ({exc})"
    plan = ensure_rollback_plan(
        ws,
        name,
        {
            "backup": backup.relative_to(ws.root) if backup else "(no backup)",
            "v2_dir": safe_child(ws.v2_dir, name).relative_to(ws.root.resolve()),
            "category": system["category"],
            "priority": system["priority"],
            "phase": system["phase"],
            "endpoints": endpoints,
            "min_validation": policy.triggers.min_validation_success_rate,
            "max_error_rate": policy.triggers.max_error_rate,
            "max_p95_ratio": policy.triggers.max_p95_ratio,
            "min_throughput_ratio": policy.triggers.min_throughput_ratio,
            "max_health": policy.triggers.max_failed_health_checks,
        },
    )
    items.append(
        ChecklistItem(name="rollback_plan", ok=plan.is_file(), detail=str(plan.relative_to(ws.root)))
    )

    monitoring_ok = (
        _writable(ws.samples_dir) and os.access(ws.logs_dir, os.W_OK) and endpoints[:7] != "unknown"
    )
    items.append(
        ChecklistItem(
            name="monitoring_setup",
            ok=monitoring_ok,
            detail=(
                f"samples and logs writable; triggers from the policy; entry endpoints: {endpoints}"
                if monitoring_ok
                else "samples/logs folder not writable or the v1 system does not load"
            ),
        )
    )

    ack = deploy_store.latest_ack(con, name, "team_notified")
    items.append(
        ChecklistItem(
            name="team_notified",
            ok=ack is not None,
            detail=(
                f"acknowledged by {ack['actor']} at {ack['ts']:%Y-%m-%d %H:%M}"
                + (f": {ack['note']}" if ack["note"] else "")
                if ack
                else "no one has acknowledged that the team was told"
            ),
        )
    )
    return Checklist(system=name, items=items, ready_to_migrate=all(i.ok for i in items))
