"""The measurement's own bias and noise, read from an A/A run, and how a verdict takes it into account.

An A/A run mirrors one copy of the old version to another (as Diffy compares two
primaries): the versions are identical, so whatever the judge reads between them
is the measurement itself (the gateway, the workload, the machine). Switchyard
keeps the newest one per system (a run of kind ``calibration`` and a
``calibration:measured`` event with who and when; :func:`engine.judging.latest_calibration`
reads it).

A verdict on a real run uses it on its latency changes (:func:`correct`): what
the same measurement reads between two identical versions is taken out, and
its uncertainty added to the interval.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from pydantic import BaseModel, Field

from engine.judge.stats import Interval
from engine.units import change

LatencyMeasure = Literal["own_time", "round_trip"]
"""What the latency criteria judged: each version's own time (``service_ms``: its ``Server-Timing`` span
less its CPU wait) or the round trip through the gateway (``latency_ms``)."""

MEASURED = "calibration:measured"
"""The audit action that records a calibration (its ``after`` is a :class:`Calibration`)."""


class Calibration(BaseModel):
    """What the judge read between two copies of the old version, with where and when it was measured."""

    system: str
    run_id: str
    measured_at: dt.datetime
    actor: str
    pairs: int = Field(description="Mirrored requests answered by both copies.")
    rps: float
    duration_s: float
    verdict: str = Field(description="The judge's verdict on the A/A run (GO when the measurement is sound).")
    latency_change: float | None = Field(
        description="The judge's latency change between the copies (0.01 = +1 %): the bias."
    )
    low: float | None = Field(description="Low end of its interval (with ``high``: the noise).")
    high: float | None
    measure: LatencyMeasure = Field(
        "round_trip",
        description="What ``latency_change`` read: the versions' own time or the round trip (a calibration "
        "from before own time was read is a round trip's).",
    )
    round_trip_change: float | None = Field(
        None, description="The round trip's change between the copies when ``latency_change`` is own time."
    )
    round_trip_low: float | None = None
    round_trip_high: float | None = None

    def reading(self, measure: str) -> Interval | None:
        """The A/A change of ``measure`` (own time or round trip) with its interval; None if not read."""
        if measure == self.measure:
            values = (self.latency_change, self.low, self.high)
        elif measure == "round_trip":
            values = (self.round_trip_change, self.round_trip_low, self.round_trip_high)
        else:
            return None
        if any(v is None for v in values):
            return None
        return Interval(*values)  # type: ignore[arg-type]

    def describe(self) -> str:
        """One line for the CLI and the page: the A/A figure with its interval and its provenance."""
        if self.latency_change is None or self.low is None or self.high is None:
            figure = "latency not measured"
        else:
            figure = f"latency {change(self.latency_change)} [{change(self.low)}, {change(self.high)}]"
            if self.measure == "own_time":
                figure += " on the versions' own time"
                trip = self.reading("round_trip")
                if trip is not None:
                    figure += (
                        f", round trip {change(trip.estimate)} [{change(trip.low)}, {change(trip.high)}]"
                    )
        return (
            f"A/A (old against a copy of old): {figure}, {self.verdict}, {self.pairs:,} pairs "
            f"at {self.rps:g} req/s; run {self.run_id} by {self.actor}, {self.measured_at:%Y-%m-%d %H:%M} UTC"
        )


def correct(interval: Interval, calibration: Calibration | None, measure: str = "round_trip") -> Interval:
    """A latency change of a real run with the measurement's own bias taken out, and its noise added.

    The A/A run reads ``latency_change`` between two identical versions, with
    the shadow in the very position the new version has in a real run (called
    after the primary has answered), so that reading is the bias of the
    position and the machine. On the ratio scale the run's ratio is divided by
    the A/A ratio, and the two intervals' half-widths add in quadrature (the two
    runs are independent measurements): a difference the measurement also
    reads between identical versions no longer counts against new, and the
    A/A run's own uncertainty makes the interval wider, never narrower.

    ``measure`` is what ``interval`` read (own time or round trip): only the
    A/A reading of the same measure corrects it. No calibration, or none of
    that measure, leaves the interval as it is.
    """
    aa = None if calibration is None else calibration.reading(measure)
    if aa is None:
        return interval
    values = (interval.estimate, interval.low, interval.high, aa.estimate, aa.low, aa.high)
    if not all(math.isfinite(v) and v > -1 for v in values):
        return interval
    log = math.log1p
    bias = log(aa.estimate)
    centre = log(interval.estimate) - bias
    below = math.hypot(log(interval.estimate) - log(interval.low), log(aa.high) - bias)
    above = math.hypot(log(interval.high) - log(interval.estimate), bias - log(aa.low))
    return Interval(math.expm1(centre), math.expm1(centre - below), math.expm1(centre + above))
