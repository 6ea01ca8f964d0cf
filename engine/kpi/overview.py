"""Everything the standup and timeline pages show, computed in one pass over the store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from engine.fleet.catalog import Plan
from engine.kpi.facts import load_facts
from engine.kpi.metrics import MigrationMetrics, compute_metrics
from engine.kpi.plan_file import workspace_plan
from engine.kpi.standup import Blocker, blockers, next_due, recent_changes
from engine.kpi.timeline import Timeline, build_timeline, burn_up, system_schedule
from engine.workspace import Workspace

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Overview:
    """The fleet at ``as_of`` and a day earlier, with the plan it is measured against."""

    as_of: dt.datetime
    plan: Plan
    metrics: MigrationMetrics
    yesterday: MigrationMetrics
    timeline: Timeline
    schedule: pl.DataFrame
    burn_up: pl.DataFrame
    changes: pl.DataFrame
    blockers: list[Blocker]
    next_due: pl.DataFrame


def metrics_as_of(
    con: duckdb.DuckDBPyConnection, ws: Workspace, as_of: dt.datetime | None
) -> MigrationMetrics:
    return compute_metrics(load_facts(con, ws, as_of), workspace_plan(con, ws).start_date)


def build_overview(
    con: duckdb.DuckDBPyConnection, ws: Workspace, as_of: dt.datetime | None = None
) -> Overview:
    plan = workspace_plan(con, ws)
    facts = load_facts(con, ws, as_of)
    metrics = compute_metrics(facts, plan.start_date)
    yesterday = compute_metrics(load_facts(con, ws, facts.as_of - DAY), plan.start_date)
    schedule = system_schedule(facts, plan)
    return Overview(
        as_of=facts.as_of,
        plan=plan,
        metrics=metrics,
        yesterday=yesterday,
        timeline=build_timeline(facts, plan, metrics),
        schedule=schedule,
        burn_up=burn_up(schedule, plan, facts.as_of),
        changes=recent_changes(facts),
        blockers=blockers(con, facts),
        next_due=next_due(schedule),
    )
