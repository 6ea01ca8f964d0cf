"""How long to keep running: for each unsure criterion, about how many more samples would decide it.

An interval's half-width shrinks as one over the square root of the sample
size (every interval the judge builds does: order statistics, proportions,
paired ratios, bucket means). If the estimate stays where it is, the interval
stops crossing the threshold once its half-width on the threshold's side is
smaller than the distance from the estimate to the threshold:

    n_needed = n · (half-width / distance)²

That is the expected sample size, not a promise: the estimate moves as data
come in, and an estimate right on the limit needs unboundedly many. Minutes
follow from the rate at which the criterion's samples arrived during the run.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, Field


class MoreEvidence(BaseModel):
    """What would decide one unsure criterion (``None``: more traffic would not, or cannot be told)."""

    criterion: str
    more_samples: int | None = Field(description="About this many more samples per version.")
    more_seconds: float | None = Field(description="About this long at the run's observed rate.")
    explanation: str


def samples_to_decide(
    estimate: float, low: float, high: float, threshold: float, direction: str, n: int, floor: float = 0.0
) -> int | None:
    """More samples (beyond ``n``) for the interval to leave the threshold, if the estimate holds still.

    ``floor`` is the part of the half-width no sample size takes away (the
    spread two processes of the same code show, in quadrature). None when the
    estimate sits on the threshold, or within ``floor`` of it (no sample size
    decides it), or the interval is not a real one (infinite, or no data).
    """
    if n <= 0 or not all(math.isfinite(v) for v in (estimate, low, high)):
        return None
    good_side = estimate <= threshold if direction == "<=" else estimate >= threshold
    toward = (high - estimate) if (direction == "<=") == good_side else (estimate - low)
    distance = abs(threshold - estimate)
    sampled, reach = toward**2 - floor**2, distance**2 - floor**2
    if distance <= 0 or toward <= 0 or reach <= 0:
        return None
    needed = n * max(sampled, 0.0) / reach
    return max(1, math.ceil(needed - n - 1e-9))


def duration_text(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h`` or ``2.1 days``: a lead's unit."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def more_evidence(
    name: str,
    estimate: float | None,
    low: float | None,
    high: float | None,
    threshold: float,
    direction: str,
    n: int,
    duration_s: float | None,
    minimum: int,
    floor: float = 0.0,
) -> MoreEvidence:
    """The estimate for one unsure criterion measured on ``n`` samples over ``duration_s`` seconds.

    ``minimum`` is the policy's floor per version: a run below it needs at
    least the difference whatever the interval says. ``floor`` is the part of
    the interval's half-width no run length takes away (see
    :func:`samples_to_decide`).
    """
    short = max(0, minimum - n)
    if estimate is None or low is None or high is None:
        more = short or (minimum if n == 0 else None)
        why = "not enough data to measure it"
    else:
        more = samples_to_decide(estimate, low, high, threshold, direction, n, floor)
        if more is None and not short:
            said = "on the limit" if not floor else "within the spread of two processes of one version of it"
            return MoreEvidence(
                criterion=name,
                more_samples=None,
                more_seconds=None,
                explanation=f"the estimate sits {said}: no run length would decide it",
            )
        more = max(more or 0, short)
        why = "if the estimate holds, its interval then clears the limit"
    if more is None:
        return MoreEvidence(criterion=name, more_samples=None, more_seconds=None, explanation=why)
    rate = n / duration_s if duration_s and duration_s > 0 and n > 0 else None
    seconds = more / rate if rate else None
    when = f" (~{duration_text(seconds)} at the run's {rate:,.1f}/s)" if seconds is not None and rate else ""
    return MoreEvidence(
        criterion=name,
        more_samples=int(more),
        more_seconds=seconds,
        explanation=f"about {more:,} more samples per version{when}: {why}",
    )
