"""What a verdict is made of: criteria with their evidence, the seed's triggers, the verdict itself.

Stored as JSON in the verdicts table and read back by the page, the
post-mortem, the KPIs and re-judgement, so every field added later has a
default: a verdict stored by an earlier version still loads.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from pydantic import BaseModel, Field

from engine import units
from engine.judge.calibration import Calibration, LatencyMeasure
from engine.judge.policy import Policy
from engine.judge.stats import Interval
from engine.judge.to_decide import MoreEvidence

VerdictName = Literal["GO", "NO_GO", "INCONCLUSIVE"]


def _num(value: float | None) -> float | None:
    """JSON-safe float: NaN and infinities become None."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


class Criterion(BaseModel):
    """One criterion of the verdict with its evidence."""

    name: str
    observed: float | None = Field(description="Point estimate (a change is relative: 0.1 = +10 %).")
    threshold: float
    direction: Literal[">=", "<="] = Field(description="observed must be >= or <= threshold to pass")
    passed: bool
    conclusive: bool = Field(description="The whole interval lies on one side of the threshold.")
    ci_low: float | None
    ci_high: float | None
    n_old: int
    n_new: int
    detail: dict[str, float | None] = Field(default_factory=dict)
    explanation: str = ""
    unit: str = Field(
        "change",
        description="How observed, threshold and interval read (engine.units): change (relative, "
        "0.1 = +10 %), points (a difference of two shares), share (a fraction of a whole).",
    )
    method: str = Field("", description="How the estimate and its interval were made, in a few words.")
    endpoint: str | None = Field(None, description="The endpoint this criterion judges alone (None: all).")
    role: Literal["primary", "guard"] = Field(
        "primary",
        description="primary: GO needs its whole interval within the limit. guard (a criterion that cannot "
        "be proven at the run's size): it stops a GO only when its evidence points beyond the limit "
        "(NO_GO when its whole interval is beyond), it need not be proven within.",
    )

    guard_clear: bool | None = Field(
        None,
        description="A guard only: no evidence that it is beyond its limit at the policy's guard_confidence "
        "(one-sided), so it lets a GO through; None for a primary criterion.",
    )

    @property
    def holds_up_go(self) -> bool:
        """Whether this criterion alone keeps the verdict from GO (unsure or failing primary; a guard
        beyond its limit with evidence, or failing)."""
        if self.role == "guard":
            if self.conclusive and not self.passed:
                return True
            if self.guard_clear is None:  # not weighed (unmeasured): by its estimate
                return not self.passed
            return not self.guard_clear
        return not (self.passed and self.conclusive)


class Trigger(BaseModel):
    """One automatic rollback trigger of the seed."""

    name: str
    fired: bool
    observed: float | None
    threshold: float
    explanation: str = ""


class Verdict(BaseModel):
    verdict: VerdictName
    new_better: bool = Field(description="The seed's rule on point estimates, as the seed defines it.")
    criteria: list[Criterion]
    triggers: list[Trigger]
    reasons: list[str]
    confidence_level: float
    n_old: int
    n_new: int
    judged_at: dt.datetime
    policy: Policy
    to_decide: list[MoreEvidence] = Field(
        default_factory=list,
        description="INCONCLUSIVE only: per unsure criterion, about how much longer to run to decide it.",
    )
    duration_s: float | None = Field(None, description="Seconds the judged samples span (None: unknown).")
    paired: bool = Field(False, description="Judged on mirrored requests paired by request_id.")
    calibration: Calibration | None = Field(
        None, description="The A/A reading the latency change was corrected by (None: not calibrated)."
    )
    interval_level: float | None = Field(
        None,
        description="Two-sided level of the criteria's intervals: each end a one-sided bound at the "
        "confidence level (0.9 for 0.95). None: a verdict from before, whose intervals were at the "
        "confidence level two-sided.",
    )
    latency_measure: LatencyMeasure = Field(
        "round_trip",
        description="own_time: the latency criteria judged each version's own time (its Server-Timing span, "
        "CPU wait excluded) and the round trip is a guard beside them; round_trip: the samples had no own "
        "time, the latency criteria judged the round trip.",
    )


def _criterion(
    name: str,
    interval: Interval,
    threshold: float,
    direction: Literal[">=", "<="],
    n_old: int,
    n_new: int,
    what: str,
    detail: dict[str, float | None] | None = None,
    unit: str = "change",
    method: str = "",
    endpoint: str | None = None,
    role: Literal["primary", "guard"] = "primary",
) -> Criterion:
    est, low, high = interval.estimate, interval.low, interval.high
    if not math.isfinite(est):
        return Criterion(
            name=name,
            observed=None,
            threshold=threshold,
            direction=direction,
            passed=False,
            conclusive=False,
            ci_low=None,
            ci_high=None,
            n_old=n_old,
            n_new=n_new,
            detail=detail or {},
            explanation=f"{what}: not enough data to measure",
            unit=unit,
            method=method,
            endpoint=endpoint,
            role=role,
        )
    if direction == ">=":
        passed, conclusive = est >= threshold, (low >= threshold if est >= threshold else high < threshold)
    else:
        passed, conclusive = est <= threshold, (high <= threshold if est <= threshold else low > threshold)

    def fmt(v: float) -> str:
        return units.fmt(v, unit)

    side = "within" if passed else "outside"
    certainty = "" if conclusive else " (interval crosses the threshold)"
    interval = f"[{fmt(low)}, {fmt(high)}]"
    explanation = f"{what} {fmt(est)} {interval} is {side} the limit {direction} {fmt(threshold)}{certainty}"
    return Criterion(
        name=name,
        observed=_num(est),
        threshold=threshold,
        direction=direction,
        passed=bool(passed),
        conclusive=bool(conclusive),
        ci_low=_num(low),
        ci_high=_num(high),
        n_old=n_old,
        n_new=n_new,
        detail=detail or {},
        explanation=explanation,
        unit=unit,
        method=method,
        endpoint=endpoint,
        role=role,
    )
