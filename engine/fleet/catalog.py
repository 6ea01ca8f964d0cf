"""Category, priority and phase of each system, from the seed's rules in ``plan.toml``.

The seed names a few systems outright (``todo_api_system`` is P0,
``simple_rest_api`` and ``hello_world_api`` P1) and the rest by pattern
(``data_processing_*`` P2, ``monitoring_*`` P3, ``experimental_*`` P4).
Systems no rule names take their category's default level.

Phases take systems in *migration order*: priority first, then the systems
the plan names outright (the seed picks them as best understood), then the
simplest (fewest components), then name. The seed puts systems 1-3 in the pilot,
4-15 in expansion, 16-40 in the majority phase and 41-52 in completion; a
fleet of another size keeps the same proportions.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from engine.models.common import LocatedError, load_toml_model
from engine.workspace import DEFAULT_PLAN

SEED_FLEET_SIZE = 52
CATEGORY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("todo", "todo"),
    ("data_processing", "data_processing"),
    ("monitoring", "monitoring"),
    ("experimental", "experimental"),
)
API_MARKERS = ("api", "rest", "service", "gateway")


Level = Annotated[str, StringConstraints(pattern=r"^P[0-9]$")]


class PriorityRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Level
    patterns: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(min_length=1)


class PhasePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: int = Field(ge=1, le=99)
    name: str = Field(min_length=1, max_length=100)
    duration_days: int = Field(ge=1, le=3650)
    first: int = Field(ge=1)
    last: int = Field(ge=1)
    goal: str = ""
    rollback: str = ""

    @field_validator("last")
    @classmethod
    def _not_before_first(cls, last: int, info: ValidationInfo) -> int:
        first = info.data.get("first")
        if first is not None and last < first:
            raise ValueError(f"a last position at or after first ({first})")
        return last


class Plan(BaseModel):
    """The migration plan file: start date, priority rules, phases."""

    model_config = ConfigDict(extra="forbid")
    start_date: dt.date = Field(ge=dt.date(2000, 1, 1), le=dt.date(2100, 1, 1))
    priority: list[PriorityRule]
    category_priority: dict[str, Level]
    phases: list[PhasePlan] = Field(min_length=1)

    @field_validator("phases")
    @classmethod
    def _numbers_unique(cls, phases: list[PhasePlan]) -> list[PhasePlan]:
        seen: dict[int, int] = {}
        for i, phase in enumerate(phases):
            if phase.number in seen:
                raise LocatedError(
                    (i, "number"),
                    f"each phase number once; {phase.number} is phases[{seen[phase.number]}] too",
                )
            seen[phase.number] = i
        return phases


def load_plan(path: Path = DEFAULT_PLAN) -> Plan:
    """Read ``plan.toml``; a bad file raises InputError naming the file and the key."""
    return load_toml_model(Plan, path)


def category_for(name: str, declared: str | None = None) -> str:
    """The fleet category: declared in the blueprint, else read from the name."""
    if declared:
        return declared
    for prefix, category in CATEGORY_PREFIXES:
        if name.startswith(prefix):
            return category
    if any(marker in name for marker in API_MARKERS):
        return "api"
    return "other"


def priority_for(name: str, category: str, plan: Plan) -> str:
    """First matching priority rule, else the category default (P2 if none)."""
    for rule in plan.priority:
        if any(fnmatch.fnmatchcase(name, pat) for pat in rule.patterns):
            return rule.level
    return plan.category_priority.get(category, plan.category_priority.get("other", "P2"))


@dataclass(frozen=True)
class Placement:
    """Where a system sits in the migration plan."""

    priority: str
    phase: int
    migration_order: int


def phase_for_position(position: int, fleet_size: int, plan: Plan) -> int:
    """Phase of the system at 1-based ``position``, scaling the seed's bounds to the fleet size."""
    scale = fleet_size / SEED_FLEET_SIZE
    for phase in sorted(plan.phases, key=lambda p: p.last):
        if position <= math.ceil(phase.last * scale - 1e-9):
            return phase.number
    return max(p.number for p in plan.phases)


def named_outright(name: str, plan: Plan) -> bool:
    """Whether a priority rule names this system exactly (not by a wildcard)."""
    return any(name in rule.patterns for rule in plan.priority)


def place_fleet(systems: list[tuple[str, str, int]], plan: Plan) -> dict[str, Placement]:
    """Priority, phase and order for ``(name, category, component_count)`` triples."""
    keyed = sorted(
        (priority_for(n, c, plan), not named_outright(n, plan), count, n) for n, c, count in systems
    )
    size = len(keyed)
    return {
        key[-1]: Placement(key[0], phase_for_position(i, size, plan), i)
        for i, key in enumerate(keyed, start=1)
    }
