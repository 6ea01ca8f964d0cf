"""engine.units: every figure a person reads is written on one scale with its unit."""

from __future__ import annotations

import math

import pytest

from engine import units


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.00106, "0.00106 ms"), (0.853, "0.853 ms"), (1.85, "1.85 ms"), (18.54, "18.5 ms"), (1850, "1,850 ms")],
)
def test_latency_reads_in_ms_with_three_significant_digits(value: float, text: str) -> None:
    assert units.ms(value) == text


def test_rates_and_changes_read_in_percent() -> None:
    assert units.share(0.0011) == "0.11%"
    assert units.share(0.8) == "80.0%"
    assert units.share(0.0) == "0.0%"
    assert units.change(0.165) == "+16.5%"
    assert units.change(-0.05) == "-5.0%"
    assert units.points(0.005) == "+0.50 pp"
    assert units.ratio(2.0) == "2.00x"
    assert units.hours(1.5) == "1.50 h"
    assert [units.duration(s) for s in (28, 270, 7560)] == ["28 s", "4.5 min", "2.1 h"]


@pytest.mark.parametrize("missing", [None, math.nan, math.inf])
def test_a_missing_figure_is_a_dash_never_none(missing: float | None) -> None:
    for unit in units.FORMATS:
        assert units.fmt(missing, unit) == units.NONE


def test_stored_verdicts_without_units_are_read_by_criterion_name() -> None:
    assert units.criterion_unit({"name": "error_rate_increase"}) == "points"
    assert units.criterion_unit({"name": "mismatch_rate"}) == "share"
    assert units.criterion_unit({"name": "latency_increase"}) == "change"
    assert units.criterion_unit({"name": "whatever_new", "unit": "points"}) == "points"
    assert units.as_percent(0.1, "change") == pytest.approx(10.0)
