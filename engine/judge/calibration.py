"""The measurement's own bias and noise, read from an A/A run, and how a verdict takes it into account.

An A/A run mirrors one copy of the old version to another (as Diffy compares two
primaries): the versions are identical, so whatever the judge reads between them
is the measurement itself (the gateway, the workload, the machine). Switchyard
keeps the newest one per system (:func:`latest_calibration`; a run of kind
``calibration`` and a ``calibration:measured`` event with who and when).

A verdict on a real run uses it on its latency changes (:func:`correct`): what
the same measurement reads between two identical versions is taken out, and
its uncertainty added to the interval.
"""

from __future__ import annotations

import datetime as dt
import math

import duckdb
from pydantic import BaseModel, Field

from engine.judge.stats import Interval
from engine.store.events import latest_after
from engine.units import change

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

    def describe(self) -> str:
        """One line for the CLI and the page: the A/A figure with its interval and its provenance."""
        if self.latency_change is None or self.low is None or self.high is None:
            figure = "latency not measured"
        else:
            figure = f"latency {change(self.latency_change)} [{change(self.low)}, {change(self.high)}]"
        return (
            f"A/A (old against a copy of old): {figure}, {self.verdict}, {self.pairs:,} pairs "
            f"at {self.rps:g} req/s; run {self.run_id} by {self.actor}, {self.measured_at:%Y-%m-%d %H:%M} UTC"
        )


def correct(interval: Interval, calibration: Calibration | None) -> Interval:
    """A latency change of a real run with the measurement's own bias taken out, and its noise added.

    The A/A run reads ``latency_change`` between two identical versions, with
    the shadow in the very position the new version has in a real run (called
    after the primary has answered), so that reading is the bias of the
    position and the machine. On the ratio scale the run's ratio is divided by
    the A/A ratio, and the two intervals' half-widths add in quadrature (the two
    runs are independent measurements): a difference the measurement also
    reads between identical versions no longer counts against new, and the
    A/A run's own uncertainty makes the interval wider, never narrower.

    No calibration, or one without a latency figure, leaves the interval as it is.
    """
    c = calibration
    if c is None or c.latency_change is None or c.low is None or c.high is None:
        return interval
    if not all(math.isfinite(v) and v > -1 for v in (interval.estimate, interval.low, interval.high)):
        return interval
    log = math.log1p
    bias = log(c.latency_change)
    centre = log(interval.estimate) - bias
    below = math.hypot(log(interval.estimate) - log(interval.low), log(c.high) - bias)
    above = math.hypot(log(interval.high) - log(interval.estimate), bias - log(c.low))
    return Interval(math.expm1(centre), math.expm1(centre - below), math.expm1(centre + above))


def latest_calibration(con: duckdb.DuckDBPyConnection, system: str) -> Calibration | None:
    """The newest calibration of ``system``, or None."""
    after = latest_after(con, system, MEASURED)
    return Calibration.model_validate(after) if after else None
