"""The seed's MigrationMetrics and success score, every field measured from the store.

Definitions (the seed names the fields; where it is silent about how to count,
this is what Switchyard counts, and the page says so):

* ``systems_migrated``: systems whose state is promoted, monitoring or done.
* ``migration_rate``: systems migrated per day since the migration started
  (the plan's start date or the first deployment, whichever came first), at
  least one day of elapsed time so the first morning does not divide by hours.
* ``validation_success_rate``: share of systems validated on v2 whose every
  check passed, newest result per system (the PortBasedValidationGate rate).
* ``rollback_count``: transitions into ``rolled_back``.
* ``failed_migrations``: systems that reached ``emergency`` (a rollback that
  could not verify the old version): a migration that failed, not one that was
  safely undone.
* ``avg_throughput_improvement``: mean capacity change, new over old, over the
  migrated systems' newest capacity probes (``capacity NAME``: each version's
  sustainable requests per second under closed-loop load, measured side by side;
  :mod:`engine.parallel.capacity`). Not the parallel run's throughput: there
  both versions are offered the same load, so each serves what it is sent and the
  seed's "+20 % throughput" cannot show. Systems without a probe are not counted
  (``systems_with_capacity`` says how many are).
* ``avg_latency_change``: mean of the judge's latency change over the migrated
  systems' newest verdicts (fractions: 0.2 = +20 %).
* ``avg_migration_time_hours``: from deployment to promotion, minus the time
  spent in the parallel run (an observation window the policy sets, not work).
* ``total_downtime_minutes``: seconds in which every request served to users
  failed, measured from the gateway's samples, plus time spent in emergency.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import polars as pl
from pydantic import BaseModel, Field

from engine import units
from engine.kpi.facts import Facts
from engine.state import MIGRATED_STATES, State

MIGRATED = sorted(str(s) for s in MIGRATED_STATES)


GOOD_PART, FAIR_PART = 0.8, 0.5
"""How a score part is drawn (the Standup page and the post-mortem alike): good from 0.8, fair from 0.5."""


class ScorePart(BaseModel):
    """One of the six terms the seed averages into the success score."""

    name: str
    formula: str
    value: float

    @property
    def level(self) -> str:
        """good, fair or poor (:data:`GOOD_PART`, :data:`FAIR_PART`): the colour it is drawn in."""
        return "good" if self.value >= GOOD_PART else "fair" if self.value >= FAIR_PART else "poor"


class Target(BaseModel):
    """A KPI beside its target, and whether it is met."""

    field: str
    label: str
    value: float
    target: float
    direction: Literal[">=", "<=", "<", "=="]
    met: bool
    unit: Literal["count", "ratio", "change", "hours", "minutes", "per_day"]
    measured: bool = True
    """False while nothing it averages exists yet (no verdict, no capacity probe, nothing migrated): its
    ``value`` is then the seed's 0, no measurement, and ``met`` is False; pages say "not measured yet"."""

    def shown(self) -> str:
        """The value in its unit, or "not measured yet"."""
        return units.kpi(self.value, self.unit) if self.measured else NOT_MEASURED

    def verdict(self) -> str:
        """ "met", "not met" or "not measured yet"."""
        return NOT_MEASURED if not self.measured else "met" if self.met else "not met"


NOT_MEASURED = "not measured yet"


class MigrationMetrics(BaseModel):
    """The seed's KPIs at ``as_of``, plus how many measurements each average rests on."""

    as_of: dt.datetime
    systems_migrated: int = 0
    systems_total: int = 52
    migration_rate: float = 0.0
    validation_success_rate: float = 0.0
    rollback_count: int = 0
    failed_migrations: int = 0
    avg_throughput_improvement: float = 0.0
    avg_latency_change: float = 0.0
    avg_migration_time_hours: float = 0.0
    total_downtime_minutes: float = 0.0
    systems_validated_v2: int = 0
    systems_with_verdict: int = 0
    systems_with_capacity: int = Field(0, description="Migrated systems with a capacity probe.")
    migration_started: dt.datetime | None = Field(None, description="Plan start or first deployment.")

    def score_parts(self) -> list[ScorePart]:
        """The six terms of the seed's ``calculate_success_score``, in its order."""
        return [
            ScorePart(
                name="progress",
                formula="systems_migrated / systems_total",
                value=self.systems_migrated / self.systems_total if self.systems_total else 0.0,
            ),
            ScorePart(
                name="validation", formula="validation_success_rate", value=self.validation_success_rate
            ),
            ScorePart(
                name="rollbacks",
                formula="1 - rollback_count / max(systems_migrated, 1)",
                value=1.0 - self.rollback_count / max(self.systems_migrated, 1),
            ),
            ScorePart(
                name="failures",
                formula="1 if failed_migrations == 0 else 0.5",
                value=1.0 if self.failed_migrations == 0 else 0.5,
            ),
            ScorePart(
                name="throughput",
                formula="min(1, max(0, avg_throughput_improvement + 1))",
                value=min(1.0, max(0.0, self.avg_throughput_improvement + 1.0)),
            ),
            ScorePart(
                name="downtime",
                formula="1 if total_downtime_minutes == 0 else 0.8",
                value=1.0 if self.total_downtime_minutes == 0 else 0.8,
            ),
        ]

    def caveats(self) -> list[str]:
        """What a reader must know to read the figures right (the standup page and digest say it)."""
        notes = []
        if self.systems_validated_v2 == 0:
            notes.append("no system validated on v2 yet")
        if self.systems_with_verdict == 0:
            notes.append(f"no migrated system has a verdict yet, so the latency change is {NOT_MEASURED}")
        if self.systems_with_capacity == 0:
            notes.append(
                f"no migrated system has a capacity probe yet, so the throughput change is {NOT_MEASURED} "
                "(the success score counts it as no change, as the seed does)"
            )
        return notes

    @property
    def success_score(self) -> float:
        parts = self.score_parts()
        return sum(p.value for p in parts) / len(parts)

    def targets(self) -> list[Target]:
        """The seed's targets beside each figure."""

        def t(field: str, label: str, target: float, direction: str, unit: str, measured: int = 1) -> Target:
            value = float(getattr(self, field))
            met = {
                ">=": value >= target,
                "<=": value <= target,
                "<": value < target,
                "==": value == target,
            }[direction]
            return Target(
                field=field,
                label=label,
                value=value,
                target=target,
                direction=direction,
                met=met and measured > 0,
                unit=unit,
                measured=measured > 0,
            )

        capacity = self.systems_with_capacity
        return [  # an average of nothing is not measured (the seed's 0 is no measurement)
            t("validation_success_rate", "Validation success", 0.8, ">=", "ratio", self.systems_validated_v2),
            t("rollback_count", "Rollbacks", 5, "<", "count"),
            t("failed_migrations", "Failed migrations", 0, "==", "count"),
            t("avg_throughput_improvement", "Throughput change", 0.2, ">=", "change", capacity),
            t("avg_latency_change", "Latency change", 0.1, "<", "change", self.systems_with_verdict),
            t("avg_migration_time_hours", "Migration time", 2, "<", "hours", self.systems_migrated),
            t("total_downtime_minutes", "Downtime", 0, "==", "minutes"),
        ]


def compute_metrics(facts: Facts, plan_start: dt.date | None = None) -> MigrationMetrics:
    """MigrationMetrics from the history in ``facts``; nothing is typed in."""
    states = facts.state_at()
    migrated = states.filter(pl.col("state").is_in(MIGRATED))["name"].to_list()
    transitions = facts.transitions

    started = _migration_started(transitions, plan_start)
    elapsed_days = (
        max((facts.as_of - started).total_seconds() / 86400, 1.0)
        if started and started <= facts.as_of
        else 1.0
    )
    verdicts = (
        facts.verdicts.filter(pl.col("system").is_in(migrated))
        .group_by("system")
        .agg(pl.col("throughput_change").last(), pl.col("latency_increase").last())
    )
    capacity = (
        facts.capacity.filter(pl.col("system").is_in(migrated))
        .group_by("system")
        .agg(pl.col("change").last())
    )
    emergency_s = _emergency_seconds(transitions, facts.as_of)
    down_s = float(facts.downtime["down_seconds"].sum() or 0)
    validations = facts.validations
    return MigrationMetrics(
        as_of=facts.as_of,
        systems_migrated=len(migrated),
        systems_total=facts.systems.height,
        migration_rate=len(migrated) / elapsed_days,
        validation_success_rate=float(validations["passed"].mean() or 0.0) if validations.height else 0.0,
        rollback_count=transitions.filter(pl.col("to_state") == State.ROLLED_BACK).height,
        failed_migrations=transitions.filter(pl.col("to_state") == State.EMERGENCY)["system"].n_unique(),
        avg_throughput_improvement=_mean(capacity["change"]),
        avg_latency_change=_mean(verdicts["latency_increase"]),
        avg_migration_time_hours=_mean(_migration_hours(transitions, migrated)),
        total_downtime_minutes=(down_s + emergency_s) / 60,
        systems_validated_v2=validations.height,
        systems_with_verdict=verdicts["latency_increase"].drop_nulls().len(),
        systems_with_capacity=capacity["change"].drop_nulls().len(),
        migration_started=started,
    )


def _mean(series: pl.Series) -> float:
    value = series.drop_nulls().mean()
    return float(value) if value is not None else 0.0  # type: ignore[arg-type]


def _migration_started(transitions: pl.DataFrame, plan_start: dt.date | None) -> dt.datetime | None:
    deployed = transitions.filter(pl.col("to_state") == State.GREEN_DEPLOYED)["ts"]
    candidates = [deployed.min()] if deployed.len() else []
    if plan_start is not None:
        candidates.append(dt.datetime.combine(plan_start, dt.time(), tzinfo=dt.UTC))
    return min(candidates) if candidates else None  # type: ignore[type-var]


def _migration_hours(transitions: pl.DataFrame, migrated: list[str]) -> pl.Series:
    """Per migrated system: last deployment to first promotion after it, minus parallel-run time."""
    hours: list[float] = []
    for _, group in transitions.filter(pl.col("system").is_in(migrated)).group_by("system"):
        rows = group.sort("ts").to_dicts()
        promoted_at = next((i for i, r in enumerate(rows) if r["to_state"] in MIGRATED), None)
        deployed_at = max(
            (i for i, r in enumerate(rows[: promoted_at or 0]) if r["to_state"] == State.GREEN_DEPLOYED),
            default=None,
        )
        if promoted_at is None or deployed_at is None:
            continue
        window = rows[deployed_at : promoted_at + 1]
        observing = sum(
            (b["ts"] - a["ts"]).total_seconds()
            for a, b in zip(window, window[1:], strict=False)
            if a["to_state"] == State.PARALLEL_RUN
        )
        total = (rows[promoted_at]["ts"] - rows[deployed_at]["ts"]).total_seconds()
        hours.append(max(total - observing, 0.0) / 3600)
    return pl.Series("hours", hours, dtype=pl.Float64)


def _emergency_seconds(transitions: pl.DataFrame, as_of: dt.datetime) -> float:
    """Time systems spent in emergency (old version not verified serving), up to ``as_of``."""
    spells = (
        transitions.sort("system", "ts")
        .with_columns(pl.col("ts").shift(-1).over("system").alias("left_at"))
        .filter(pl.col("to_state") == State.EMERGENCY)
    )
    if not spells.height:
        return 0.0
    seconds = (pl.col("left_at").fill_null(pl.lit(as_of)) - pl.col("ts")).dt.total_microseconds() / 1e6
    return float(spells.select(seconds.sum()).item())
