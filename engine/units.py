"""How Switchyard writes a number for a person: latency in ms, rates and changes in percent.

One place for the pages, the post-mortem (Markdown, HTML, PDF) and the CLI's
text output, so the same figure reads the same everywhere: a lead saw p50 as
``0.0011`` in one table, ``+16.5%`` in the sentence above it and ``0.00106``
in the PDF. JSON output keeps the raw numbers (fractions, milliseconds).

The scales:

* ``ms``: a latency in milliseconds, three significant digits (0.853 ms,
  18.5 ms, 1,850 ms): a sub-millisecond service and a slow one both read right;
* ``share``: a fraction of a whole (an error rate, a pass rate) as percent;
* ``change``: a relative change (new / old - 1) as a signed percent;
* ``points``: the difference of two shares, in percentage points (pp), which
  is what an error-rate "increase" is: 1.0 % -> 1.5 % is +0.5 pp, not +50 %;
* ``ratio``: new / old as a multiple (the seed's triggers: "p95 > 2x");
* ``count`` and ``hours``, ``minutes``, ``seconds``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

Unit = Literal["ms", "share", "change", "points", "ratio", "count", "hours", "minutes", "seconds", "duration"]
NONE = "–"
"""What a missing figure is written as (not "None", not "nan")."""


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _percent_digits(percent: float) -> int:
    """One decimal, two under 1 % (0.11 % must not read 0.1 %, nor 0.0 % for 0.04 %)."""
    return 2 if 0 < abs(percent) < 1 else 1


def ms(value: float | None) -> str:
    """A latency in milliseconds with three significant digits: 0.853 ms, 18.5 ms, 1,850 ms."""
    if not _finite(value):
        return NONE
    assert value is not None
    magnitude = abs(value)
    digits = 0 if magnitude >= 100 or magnitude == 0 else 2 - math.floor(math.log10(magnitude))
    return f"{value:,.{min(digits, 6)}f} ms"


def share(value: float | None) -> str:
    """A fraction of a whole as percent: 0.0123 -> 1.2%, 0.0011 -> 0.11%."""
    if not _finite(value):
        return NONE
    assert value is not None
    percent = value * 100
    return f"{percent:.{_percent_digits(percent)}f}%"


def change(value: float | None) -> str:
    """A relative change as a signed percent: 0.165 -> +16.5%."""
    if not _finite(value):
        return NONE
    assert value is not None
    percent = value * 100
    return f"{percent:+.{_percent_digits(percent)}f}%"


def points(value: float | None) -> str:
    """The difference of two shares in percentage points: 0.005 -> +0.50 pp."""
    if not _finite(value):
        return NONE
    assert value is not None
    percent = value * 100
    return f"{percent:+.{_percent_digits(percent)}f} pp"


def ratio(value: float | None) -> str:
    """new / old as a multiple: 1.234 -> 1.23x."""
    return f"{value:.2f}x" if _finite(value) else NONE  # type: ignore[str-format]


def count(value: float | None) -> str:
    return f"{value:,.0f}" if _finite(value) else NONE  # type: ignore[str-format]


def hours(value: float | None) -> str:
    return f"{value:.2f} h" if _finite(value) else NONE  # type: ignore[str-format]


def minutes(value: float | None) -> str:
    return f"{value:.1f} min" if _finite(value) else NONE  # type: ignore[str-format]


def seconds(value: float | None) -> str:
    return f"{value:,.0f} s" if _finite(value) else NONE  # type: ignore[str-format]


def duration(value_s: float | None) -> str:
    """A span of time in the unit that reads best: 28 s, 4.5 min, 2.1 h."""
    if not _finite(value_s):
        return NONE
    assert value_s is not None
    if abs(value_s) < 120:
        return seconds(value_s)
    if abs(value_s) < 7200:
        return minutes(value_s / 60)
    return f"{value_s / 3600:.1f} h"


FORMATS = {
    "ms": ms,
    "share": share,
    "change": change,
    "points": points,
    "ratio": ratio,
    "count": count,
    "hours": hours,
    "minutes": minutes,
    "seconds": seconds,
    "duration": duration,
}


def fmt(value: float | None, unit: str) -> str:
    """``value`` written in ``unit`` (one of :data:`Unit`)."""
    return FORMATS[unit](value)


def as_percent(value: float | None, unit: str) -> float | None:
    """A share, change or points value on the percent scale (charts draw in percent); else as is."""
    if not _finite(value):
        return None
    assert value is not None
    return value * 100 if unit in ("share", "change", "points") else value


# --------------------------------------------------------------------------- the judge's figures

CRITERION_UNITS: dict[str, Unit] = {
    "validation_success_rate": "share",
    "error_rate_increase": "points",
    "mismatch_rate": "share",
}
"""Units of the criteria recorded before a criterion carried its own (every other one is a change)."""

TRIGGER_UNITS: dict[str, Unit] = {
    "validation_success_rate": "share",
    "error_rate": "share",
    "latency_p95_ratio": "ratio",
    "throughput_ratio": "ratio",
    "failed_health_checks": "count",
}


def criterion_unit(criterion: Mapping[str, Any]) -> str:
    """The unit of a criterion (a Verdict's, or one read back from a stored verdict's JSON)."""
    return str(criterion.get("unit") or CRITERION_UNITS.get(str(criterion.get("name")), "change"))


def trigger_unit(trigger: Mapping[str, Any]) -> str:
    return TRIGGER_UNITS.get(str(trigger.get("name")), "ratio")


KPI_UNITS: dict[str, Unit] = {"ratio": "share", "change": "change", "count": "count", "hours": "hours"}
KPI_UNITS |= {"minutes": "minutes"}


def kpi(value: float | None, unit: str) -> str:
    """A KPI (engine.kpi.metrics.Target) in its unit: ratio as percent, hours, minutes, counts."""
    if unit == "per_day":
        return f"{value:.2f} / day" if _finite(value) else NONE  # type: ignore[str-format]
    return fmt(value, KPI_UNITS.get(unit, "count"))
