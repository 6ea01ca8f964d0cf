"""Everything a post-mortem says, gathered from the store in one pass.

A post-mortem is what a lead hands their director at the end of a phase: what
happened when (the timeline), who decided what on which evidence (state
changes beside the newest verdict at that moment), what went wrong (rollbacks
and their failure documents), where the migration stands (the seed's KPIs and
success score for the scope) and which risks materialised. The renderers
(Markdown, HTML, PDF) only lay this out; nothing here is typed in.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from engine.errors import NotFoundError
from engine.kpi.facts import criterion_sql, load_facts
from engine.kpi.metrics import MigrationMetrics, compute_metrics
from engine.kpi.plan_file import workspace_plan
from engine.kpi.timeline import Forecast, PhaseWindow, build_timeline, burn_up, system_schedule
from engine.report.scope import Scope
from engine.risks.register import RiskView, risk_register
from engine.state import State
from engine.store.db import query_frame
from engine.workspace import Workspace

DECISION_STATES = (State.PROMOTED, State.ROLLED_BACK, State.EMERGENCY, State.DONE, State.GREEN_DEPLOYED)
"""Transitions a post-mortem lists as decisions (the in-between steps are in the audit log)."""


@dataclass(frozen=True)
class FailureDocument:
    """One ``migration/failures/<name>_<ts>.json`` as the rollback manager wrote it."""

    file: str
    system: str
    timestamp: str
    reason: str
    actor: str
    trigger: str | None


@dataclass(frozen=True)
class PostMortem:
    scope: Scope
    as_of: dt.datetime
    generated_by: str
    systems: pl.DataFrame
    """name, category, priority, phase, state, due, deployed_at, migrated_at, overdue."""
    metrics: MigrationMetrics
    phases: list[PhaseWindow]
    forecast: Forecast | None
    burn_up: pl.DataFrame
    decisions: pl.DataFrame
    """ts, system, actor, from_state, to_state, reason, evidence: the decisive state changes."""
    verdicts: pl.DataFrame
    """ts, system, run_id, verdict, actor, throughput_change, latency_increase, reasons, result (JSON)."""
    failures: list[FailureDocument]
    risks: list[RiskView] = field(default_factory=list)
    """Risks of the register that materialised within the scope."""
    old_defects: list[str] = field(default_factory=list)
    """What the register found in the old systems themselves (their own bugs): not the migration's."""

    @property
    def title(self) -> str:
        return f"Post-mortem: {self.scope.label}"

    @property
    def rollbacks(self) -> pl.DataFrame:
        return self.decisions.filter(pl.col("to_state") == State.ROLLED_BACK)

    def summary(self) -> list[str]:
        """The few sentences a director reads first."""
        m = self.metrics
        lines = [
            f"{m.systems_migrated} of {m.systems_total} systems migrated; "
            f"success score {m.success_score:.2f} (the seed's average of six parts).",
            f"{m.rollback_count} rollback(s), {m.failed_migrations} failed migration(s), "
            f"{m.total_downtime_minutes:.1f} min of downtime.",
        ]
        if m.systems_with_verdict:
            lines.append(
                f"Across {m.systems_with_verdict} migrated system(s) with a verdict: latency "
                f"{m.avg_latency_change:+.1%}."
            )
        if m.systems_with_capacity:
            lines.append(
                f"Across {m.systems_with_capacity} migrated system(s) with a capacity probe: throughput "
                f"(sustainable req/s, new over old) {m.avg_throughput_improvement:+.1%}."
            )
        if self.forecast is not None:
            lines.append(f"Forecast: {self.forecast.explanation}" + _slip(self.forecast))
        if self.risks:
            lines.append("Materialised risks: " + ", ".join(r.description for r in self.risks) + ".")
        if self.old_defects:
            lines.append("Found in the old systems, not caused by the migration: " + self.old_defects[0])
        return lines


def _slip(forecast: Forecast) -> str:
    if forecast.forecast_finish is None or forecast.slip_days is None:
        return "."
    when = "late" if forecast.slip_days > 0 else "early" if forecast.slip_days < 0 else "on plan"
    days = f"{abs(forecast.slip_days)} day(s) {when}" if forecast.slip_days else when
    return f", finishing {forecast.forecast_finish.isoformat()} ({days})."


def collect(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    scope: Scope,
    *,
    generated_by: str,
    as_of: dt.datetime | None = None,
) -> PostMortem:
    """The post-mortem for ``scope`` as the store knew it at ``as_of`` (default now)."""
    plan = workspace_plan(con, ws)
    everything = load_facts(con, ws, as_of)
    names = _scope_systems(everything.systems, scope, [p.number for p in plan.phases])
    facts = everything if scope.kind == "migration" else everything.restricted(names)
    metrics = compute_metrics(facts, plan.start_date)
    schedule = system_schedule(facts, plan)
    timeline = build_timeline(facts, plan, metrics)
    phases = [p for p in timeline.phases if scope.kind != "phase" or p.number == scope.phase]
    verdicts = _verdicts(con, names, facts.as_of)
    restrict = None if scope.kind == "migration" else names
    register = risk_register(con, ws, facts.as_of, systems=restrict)
    return PostMortem(
        scope=scope,
        as_of=facts.as_of,
        generated_by=generated_by,
        systems=schedule.select(
            "name", "category", "priority", "phase", "state", "due", "deployed_at", "migrated_at", "overdue"
        ),
        metrics=metrics,
        phases=phases if scope.kind != "system" else [],
        forecast=timeline.forecast if scope.kind == "migration" else None,
        burn_up=burn_up(schedule, plan, facts.as_of),
        decisions=_decisions(facts.transitions, verdicts),
        verdicts=verdicts,
        failures=[f for f in read_failure_documents(ws.failures_dir) if f.system in set(names)],
        risks=[r for r in register if r.materialised],
        old_defects=[line for r in register for line in r.old_system],
    )


def _scope_systems(systems: pl.DataFrame, scope: Scope, phases: list[int]) -> list[str]:
    if scope.kind == "phase":
        if scope.phase not in phases:
            raise NotFoundError(f"report scope phase:{scope.phase}: the plan has phases {phases}")
        return systems.filter(pl.col("phase") == scope.phase)["name"].to_list()
    if scope.kind == "system":
        if scope.system not in systems["name"]:
            raise NotFoundError(f"report scope system:{scope.system}: no such system in the inventory")
        return [str(scope.system)]
    return systems["name"].to_list()


def _verdicts(con: duckdb.DuckDBPyConnection, names: list[str], as_of: dt.datetime) -> pl.DataFrame:
    """Every verdict on the scope's systems up to ``as_of``, with its headline figures and reasons."""
    return query_frame(
        con,
        f"""
        SELECT ts, system, run_id, verdict, actor,
               {criterion_sql("throughput_change")} AS throughput_change,
               {criterion_sql("latency_increase")} AS latency_increase,
               CAST(result->'$.reasons' AS VARCHAR[]) AS reasons,
               CAST(result AS VARCHAR) AS result
        FROM verdicts WHERE system IN (SELECT unnest(?::VARCHAR[])) AND ts <= ?
        ORDER BY ts, id
        """,  # noqa: S608 - the interpolated parts are constant criterion names, not values
        [names, as_of],
    )


def _decisions(transitions: pl.DataFrame, verdicts: pl.DataFrame) -> pl.DataFrame:
    """The decisive state changes, each beside the newest verdict on that system at that moment."""
    decisive = transitions.filter(pl.col("to_state").is_in([str(s) for s in DECISION_STATES])).sort("ts")
    evidence = verdicts.select(
        "system",
        pl.col("ts").alias("verdict_ts"),
        pl.format(
            "{} (throughput {}, latency {})",
            "verdict",
            _percent("throughput_change"),
            _percent("latency_increase"),
        ).alias("evidence"),
    ).sort("verdict_ts")
    joined = decisive.join_asof(  # both sorted by time, so by time within each system too
        evidence,
        left_on="ts",
        right_on="verdict_ts",
        by="system",
        strategy="backward",
        check_sortedness=False,
    )
    return joined.select(
        "ts",
        "system",
        "actor",
        "from_state",
        "to_state",
        "reason",
        pl.col("evidence").fill_null("no verdict yet"),
    )


def _percent(column: str) -> pl.Expr:
    value = pl.col(column) * 100
    signed = pl.when(value >= 0).then(pl.lit("+")).otherwise(pl.lit(""))
    return (
        pl.when(pl.col(column).is_null())
        .then(pl.lit("n/a"))
        .otherwise(pl.concat_str(signed, value.round(1).cast(pl.String), pl.lit(" %")))
    )


def read_failure_documents(folder: Path) -> list[FailureDocument]:
    """The rollback manager's failure documents, oldest first; an unreadable one is listed as such."""
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            out.append(
                FailureDocument(path.name, path.stem.rsplit("_", 2)[0], "", f"unreadable: {exc}", "", None)
            )
            continue
        trigger = doc.get("trigger")
        out.append(
            FailureDocument(
                file=path.name,
                system=str(doc.get("system", "")),
                timestamp=str(doc.get("timestamp", "")),
                reason=str(doc.get("reason", "")),
                actor=str(doc.get("actor", "")),
                trigger=str(trigger.get("name")) if isinstance(trigger, dict) else None,
            )
        )
    return sorted(out, key=lambda f: f.timestamp)
