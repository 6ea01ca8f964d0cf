"""Backups of v1 systems (``backups/<name>_<YYYYMMDD>``), restores, and the rollback plan document."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

from engine.workspace import REPO_ROOT, Workspace, safe_child

ROLLBACK_TEMPLATE = REPO_ROOT / "data" / "rollback_plan.md"


def backup_path(ws: Workspace, name: str, day: dt.date | None = None) -> Path:
    """The seed's path: ``backups/<name>_<YYYYMMDD>`` (today's, unless ``day`` says otherwise)."""
    stamp = (day or dt.date.today()).strftime("%Y%m%d")
    return safe_child(ws.backups_dir, name, f"_{stamp}")


def copy_tree_atomically(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` through a temp sibling, so ``target`` is whole or absent, never half."""
    temp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    if temp.exists():
        shutil.rmtree(temp)
    shutil.copytree(source, temp, ignore=shutil.ignore_patterns("__pycache__"))
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(temp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(temp, target)


def ensure_backup(ws: Workspace, name: str, source: Path) -> Path:
    """Today's backup of the v1 system, created from ``source`` if it is not there yet (as the seed does)."""
    target = backup_path(ws, name)
    if not target.exists():
        if not (source / "blueprint.yaml").is_file():
            raise FileNotFoundError(f"{source} has no blueprint.yaml to back up")
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_tree_atomically(source, target)
    return target


def latest_backup(ws: Workspace, name: str) -> Path | None:
    """The newest ``backups/<name>_<YYYYMMDD>`` folder, or None."""
    safe_child(ws.backups_dir, name)
    found = sorted(
        p for p in ws.backups_dir.glob(f"{name}_*") if p.is_dir() and p.name[len(name) + 1 :].isdigit()
    )
    return found[-1] if found else None


def rollback_plan_path(ws: Workspace, name: str) -> Path:
    return safe_child(ws.rollback_dir, name, ".md")


def ensure_rollback_plan(ws: Workspace, name: str, fields: dict[str, Any]) -> Path:
    """Write ``migration/rollback/<name>.md`` from the template unless the user already has one."""
    target = rollback_plan_path(ws, name)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        text = ROLLBACK_TEMPLATE.read_text().format(system=name, date=dt.date.today().isoformat(), **fields)
        temp = target.with_suffix(".md.tmp")
        temp.write_text(text)
        os.replace(temp, target)
    return target
