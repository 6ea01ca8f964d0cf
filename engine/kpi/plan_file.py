"""The workspace's migration plan: its own ``plan.toml`` once edited, else the bundled one.

Until a lead sets the start date, the plan starts on the day the workspace was
created (its first audit event), not on the date printed in the bundled file:
a fresh workspace should not open weeks behind a plan nobody chose. Setting
the start date writes ``<workspace>/plan.toml`` (the bundled text with the
new date), so the file stays the one place the plan lives and can be edited.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb

from engine.errors import InputError
from engine.fleet.catalog import Plan, load_plan
from engine.store.db import first_row, query_frame
from engine.workspace import DEFAULT_PLAN, Workspace

START_LINE = re.compile(r"^start_date\s*=.*$", re.MULTILINE)


def plan_path(ws: Workspace) -> Path:
    return ws.root / "plan.toml"


def workspace_plan(con: duckdb.DuckDBPyConnection, ws: Workspace) -> Plan:
    """The plan in force for this workspace."""
    path = plan_path(ws)
    if path.exists():
        plan = load_plan(path)
        placed = query_frame(con, "SELECT DISTINCT phase FROM systems WHERE phase > ? ORDER BY phase", [0])
        missing = sorted(set(placed["phase"].to_list()) - {p.number for p in plan.phases})
        if missing:
            raise InputError(
                path,
                "phases",
                "a phase for every phase number the inventory uses",
                f"no phase numbered {', '.join(map(str, missing))}",
            )
        return plan
    plan = load_plan(DEFAULT_PLAN)
    created = first_row(con, "SELECT min(ts) FROM events")
    if created and created[0] is not None:
        plan = plan.model_copy(update={"start_date": created[0].date()})
    return plan


def write_start_date(ws: Workspace, start: dt.date) -> Plan:
    """Write the workspace plan with ``start`` as its start date (temp file, then rename)."""
    if not dt.date(2000, 1, 1) <= start <= dt.date(2100, 1, 1):
        raise InputError(
            "--start", "start_date", "a date between 2000-01-01 and 2100-01-01", start.isoformat()
        )
    path = plan_path(ws)
    text = (path if path.exists() else DEFAULT_PLAN).read_text(encoding="utf-8")
    text, count = START_LINE.subn(f"start_date = {start.isoformat()}", text, count=1)
    if count != 1:
        raise InputError(path, "start_date", "a 'start_date = YYYY-MM-DD' line to update")
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    plan = load_plan(tmp)  # never install a file that does not load
    tmp.replace(path)
    return plan
