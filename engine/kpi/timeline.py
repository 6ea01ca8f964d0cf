"""The plan against what happened: phase windows, per-system due dates, burn-up and forecast.

The plan is the seed's: phases back to back from the plan's start date (pilot
3 days, expansion 1 week, majority 1 week, completion 3 days), systems taken in
migration order. Inside a phase, the k-th of n systems is due k/n of the way
through it, so the planned burn-up rises evenly within each phase.

The forecast extends the *measured* migration rate: remaining systems divided
by systems per day, from ``as_of``. With nothing migrated yet there is no
rate, so there is no forecast (and the page says so instead of guessing).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from pydantic import BaseModel

from engine.fleet.catalog import Plan
from engine.kpi.facts import Facts
from engine.kpi.metrics import MIGRATED, MigrationMetrics
from engine.state import State


class PhaseWindow(BaseModel):
    number: int
    name: str
    goal: str
    rollback: str
    planned_start: dt.date
    planned_end: dt.date
    systems: int
    migrated: int
    actual_start: dt.datetime | None
    actual_end: dt.datetime | None
    """When the phase's last system was migrated; None while any is left."""


class Forecast(BaseModel):
    planned_finish: dt.date
    forecast_finish: dt.date | None
    slip_days: int | None
    """Forecast minus plan, in days: positive is late."""
    rate_per_day: float
    remaining: int
    explanation: str


class Timeline(BaseModel):
    as_of: dt.datetime
    phases: list[PhaseWindow]
    forecast: Forecast


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def phase_bounds(plan: Plan) -> dict[int, tuple[dt.date, dt.date]]:
    """Planned [start, end) of each phase, back to back from the plan's start date."""
    bounds, start = {}, plan.start_date
    for phase in sorted(plan.phases, key=lambda p: p.number):
        end = start + dt.timedelta(days=phase.duration_days)
        bounds[phase.number] = (start, end)
        start = end
    return bounds


def system_schedule(facts: Facts, plan: Plan) -> pl.DataFrame:
    """Per system: plan (phase, due) and actual (deployed, migrated, state), in migration order."""
    bounds = phase_bounds(plan)
    systems = facts.systems.sort("migration_order")
    systems = systems.with_columns(
        (pl.int_range(pl.len()).over("phase") + 1).alias("k"), pl.len().over("phase").alias("n")
    )
    due = [
        _midnight(bounds[p][0]) + dt.timedelta(days=(bounds[p][1] - bounds[p][0]).days * k / n)
        for p, k, n in zip(systems["phase"], systems["k"], systems["n"], strict=True)
    ]
    t = facts.transitions
    first_deploy = (
        t.filter(pl.col("to_state") == State.GREEN_DEPLOYED).group_by("system").agg(pl.col("ts").min())
    )
    first_migrated = t.filter(pl.col("to_state").is_in(MIGRATED)).group_by("system").agg(pl.col("ts").min())
    states = facts.state_at()
    return (
        systems.with_columns(
            pl.Series("due", due, dtype=pl.Datetime("us", "UTC")),
            pl.col("phase")
            .replace_strict({n: _midnight(b[0]) for n, b in bounds.items()})
            .alias("phase_start"),
        )
        .join(first_deploy.rename({"ts": "deployed_at"}), left_on="name", right_on="system", how="left")
        .join(first_migrated.rename({"ts": "migrated_at"}), left_on="name", right_on="system", how="left")
        .join(states, on="name", how="left")
        # a promotion that was rolled back later is not a migration (the KPIs agree)
        .with_columns(
            pl.when(pl.col("state").is_in(MIGRATED)).then(pl.col("migrated_at")).alias("migrated_at")
        )
        .with_columns((pl.col("migrated_at").is_null() & (pl.col("due") < facts.as_of)).alias("overdue"))
        .drop("k", "n")
    )


def burn_up(schedule: pl.DataFrame, plan: Plan, as_of: dt.datetime) -> pl.DataFrame:
    """day, planned, actual: cumulative systems migrated per day, from plan start to plan end or today."""
    bounds = phase_bounds(plan)
    first = min([plan.start_date, *(d.date() for d in schedule["migrated_at"].drop_nulls())])
    last = max(max(end for _, end in bounds.values()), as_of.date())
    days = pl.date_range(first, last, "1d", eager=True).alias("day")
    ends = days.cast(pl.Datetime("us")).dt.replace_time_zone("UTC") + pl.duration(days=1)
    due = schedule["due"].sort()
    migrated = schedule["migrated_at"].drop_nulls().sort()
    return pl.DataFrame(
        {
            "day": days,
            "planned": due.search_sorted(ends, side="right").cast(pl.Int64),
            "actual": migrated.search_sorted(ends, side="right").cast(pl.Int64),
        }
    ).with_columns(pl.when(pl.col("day") <= as_of.date()).then(pl.col("actual")).otherwise(None))


def build_timeline(facts: Facts, plan: Plan, metrics: MigrationMetrics) -> Timeline:
    """Phase windows plan vs actual, and the forecast finish from the measured rate."""
    schedule = system_schedule(facts, plan)
    bounds = phase_bounds(plan)
    phases = []
    for phase in sorted(plan.phases, key=lambda p: p.number):
        rows = schedule.filter(pl.col("phase") == phase.number)
        migrated = rows["migrated_at"].drop_nulls()
        done = rows.height > 0 and migrated.len() == rows.height
        phases.append(
            PhaseWindow(
                number=phase.number,
                name=phase.name,
                goal=phase.goal,
                rollback=phase.rollback,
                planned_start=bounds[phase.number][0],
                planned_end=bounds[phase.number][1],
                systems=rows.height,
                migrated=migrated.len(),
                actual_start=rows["deployed_at"].min(),  # type: ignore[arg-type]
                actual_end=migrated.max() if done else None,  # type: ignore[arg-type]
            )
        )
    return Timeline(as_of=facts.as_of, phases=phases, forecast=forecast(metrics, plan))


def forecast(metrics: MigrationMetrics, plan: Plan) -> Forecast:
    planned_finish = max(end for _, end in phase_bounds(plan).values())
    remaining = metrics.systems_total - metrics.systems_migrated
    rate = metrics.migration_rate
    if remaining == 0:
        finish = metrics.as_of.date()
        why = "every system is migrated"
    elif rate <= 0:
        return Forecast(
            planned_finish=planned_finish,
            forecast_finish=None,
            slip_days=None,
            rate_per_day=0.0,
            remaining=remaining,
            explanation="no system migrated yet, so there is no measured rate to forecast from",
        )
    else:
        finish = (metrics.as_of + dt.timedelta(days=remaining / rate)).date()
        why = f"{remaining} systems left at the measured {rate:.2f} systems/day"
    return Forecast(
        planned_finish=planned_finish,
        forecast_finish=finish,
        slip_days=(finish - planned_finish).days,
        rate_per_day=rate,
        remaining=remaining,
        explanation=why,
    )


def _naive(moment: dt.date | dt.datetime) -> dt.datetime:
    """A UTC moment without tzinfo, as chart libraries want it (a date is its midnight)."""
    if not isinstance(moment, dt.datetime):
        return dt.datetime.combine(moment, dt.time())
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def phase_bars(timeline: Timeline) -> pl.DataFrame:
    """label, kind (plan|actual), start, end: one plan bar per phase, one actual bar once it started."""
    rows = []
    for ph in timeline.phases:
        label = f"{ph.number}. {ph.name} ({ph.migrated}/{ph.systems})"
        rows.append((label, "plan", _naive(ph.planned_start), _naive(ph.planned_end)))
        if ph.actual_start is not None:
            end = ph.actual_end or timeline.as_of
            rows.append((label, "actual", _naive(ph.actual_start), _naive(end)))
    return pl.DataFrame(rows, schema=["label", "kind", "start", "end"], orient="row")


def system_bars(schedule: pl.DataFrame, as_of: dt.datetime) -> pl.DataFrame:
    """label, kind, start, end: plan (phase start to due) and actual (deployed to migrated, or now)."""
    plan = schedule.select(
        pl.col("name").alias("label"),
        pl.lit("plan").alias("kind"),
        pl.col("phase_start").alias("start"),
        pl.col("due").alias("end"),
    )
    actual = schedule.filter(pl.col("deployed_at").is_not_null()).select(
        pl.col("name").alias("label"),
        pl.lit("actual").alias("kind"),
        pl.col("deployed_at").alias("start"),
        pl.coalesce("migrated_at", pl.lit(as_of)).alias("end"),
    )
    return pl.concat([plan, actual]).with_columns(
        pl.col("start").dt.replace_time_zone(None), pl.col("end").dt.replace_time_zone(None)
    )
