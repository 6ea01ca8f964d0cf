"""A verdict as people read it: each criterion's status, its figures with units, the at-a-glance rows.

The judge records raw numbers (fractions, ratios); the Go / No-Go page, the
post-mortem and the CLI show them through here, so a criterion reads the same
in all three and whatever criteria a verdict carries (the judge adds new ones)
appear without a change here. Works on the verdict's JSON (``Verdict`` dumped,
or read back from the store), never on the samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import polars as pl

from engine import units

Status = Literal["pass", "unsure", "fail"]
STATUS_COLOURS: dict[str, str] = {"pass": "#1a7f37", "unsure": "#d29922", "fail": "#cf222e"}
"""Green, amber, red: the same in the page's chart and the report's."""

LABELS = {
    "validation_success_rate": "Validation pass rate",
    "throughput_change": "Throughput change",
    "latency_increase": "Latency change",
    "error_rate_increase": "Error rate change",
    "mismatch_rate": "Responses that differ",
    "latency_p95_increase": "p95 latency change",
    "latency_p99_increase": "p99 latency change",
    "latency_drift": "Latency drift over the run",
    "latency_round_trip_increase": "Round-trip latency change",
}


def label(criterion: Mapping[str, Any]) -> str:
    """A criterion's name for people ("Latency change"); an unknown one from its own name."""
    name = str(criterion.get("name", ""))
    base, _, endpoint = name.partition("[")
    if endpoint:  # a per-endpoint criterion: "Latency change /users"
        return f"{label({'name': base})} {endpoint.rstrip(']')}"
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def status(criterion: Mapping[str, Any]) -> Status:
    """pass: passed, whole interval on the good side; fail: the same on the bad side; else unsure.

    A guard (a tail or an endpoint with few samples, ``role`` guard) need not be proven within its
    limit to let a GO through, only clear of it at the policy's guard confidence (``guard_clear``):
    then it passes, and is never drawn as what holds GO up (the same as ``Criterion.holds_up_go``).
    """
    if criterion.get("conclusive"):
        return "pass" if criterion.get("passed") else "fail"
    guard_lets_go = criterion.get("role") == "guard" and criterion.get("guard_clear") is not False
    return "pass" if criterion.get("passed") and guard_lets_go else "unsure"  # as Criterion.holds_up_go


def mark(criterion: Mapping[str, Any]) -> str:
    """The status in words: pass, unsure, FAIL; a guard says so ("pass (guard, not proven)")."""
    said = {"pass": "pass", "unsure": "unsure", "fail": "FAIL"}[status(criterion)]
    if criterion.get("role") == "guard":
        said += ", guard" if criterion.get("conclusive") else " (guard, not proven)"
    return said


def _limit(criterion: Mapping[str, Any]) -> str:
    threshold = units.fmt(criterion.get("threshold"), units.criterion_unit(criterion))
    return f"{criterion.get('direction', '')} {threshold}"


def _interval(criterion: Mapping[str, Any]) -> str:
    unit = units.criterion_unit(criterion)
    low, high = criterion.get("ci_low"), criterion.get("ci_high")
    if low is None or high is None or low == high:
        return units.NONE
    return f"[{units.fmt(low, unit)}, {units.fmt(high, unit)}]"


def _samples(criterion: Mapping[str, Any]) -> str:
    """``1,000 / 1,000``; a dash for the validation rate: it counts the gate's checks, not run samples."""
    if criterion.get("name") == "validation_success_rate":
        return units.NONE
    return f"{units.count(criterion.get('n_old'))} / {units.count(criterion.get('n_new'))}"


def criteria_table(result: Mapping[str, Any]) -> pl.DataFrame:
    """One row per criterion: observed, interval and limit in the criterion's unit, status, samples."""
    rows = [
        {
            "criterion": label(c),
            "observed": units.fmt(c.get("observed"), units.criterion_unit(c)),
            "interval": _interval(c),
            "limit": _limit(c),
            "result": mark(c),
            "samples old / new": _samples(c),
        }
        for c in result.get("criteria") or []
    ]
    schema = ["criterion", "observed", "interval", "limit", "result", "samples old / new"]
    return pl.DataFrame(rows, schema={k: pl.String for k in schema})


def triggers_table(result: Mapping[str, Any]) -> pl.DataFrame:
    """One row per automatic rollback trigger: fired or quiet, observed and limit with units."""
    rows = []
    for t in result.get("triggers") or []:
        unit = units.trigger_unit(t)
        rows.append(
            {
                "trigger": str(t.get("name", "")).replace("_", " "),
                "state": "FIRED" if t.get("fired") else "quiet",
                "observed": units.fmt(t.get("observed"), unit),
                "limit": units.fmt(t.get("threshold"), unit),
                "explanation": str(t.get("explanation", "")),
            }
        )
    schema = ["trigger", "state", "observed", "limit", "explanation"]
    return pl.DataFrame(rows, schema={k: pl.String for k in schema})


def glance_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per criterion, in percent: the estimate, its interval and the threshold, with status and label.

    What the at-a-glance chart draws (page and post-mortem). A criterion that
    was not measured has no estimate and is drawn as a label with its threshold.
    """
    out = []
    for c in result.get("criteria") or []:
        unit = units.criterion_unit(c)
        observed = units.as_percent(c.get("observed"), unit)
        low = units.as_percent(c.get("ci_low"), unit)
        high = units.as_percent(c.get("ci_high"), unit)
        out.append(
            {
                "name": str(c.get("name", "")),
                "label": label(c),
                "unit": unit,
                "observed": observed,
                "low": low if low is not None else observed,
                "high": high if high is not None else observed,
                "threshold": units.as_percent(c.get("threshold"), unit),
                "direction": str(c.get("direction", "")),
                "status": status(c),
                "mark": mark(c),
                "text": units.fmt(c.get("observed"), unit),
                "limit": _limit(c),
            }
        )
    return out


def axis_range(row: Mapping[str, Any]) -> tuple[float, float]:
    """An x range holding the row's interval, estimate, threshold (and 0 for a change), with a margin."""
    values = [v for v in (row["low"], row["high"], row["observed"], row["threshold"]) if v is not None]
    if row["unit"] in ("change", "points"):
        values.append(0.0)
    low, high = min(values), max(values)
    pad = max((high - low) * 0.15, 0.5)
    return low - pad, high + pad


def failing_side(row: Mapping[str, Any]) -> tuple[float, float] | None:
    """The part of the row's x range (:func:`axis_range`) beyond its threshold, where the criterion
    fails: above it for a ``<=`` limit, below it for ``>=``; None without a threshold. The chart shades
    it, so which side of the line is bad reads without the limit's text."""
    threshold = row.get("threshold")
    if threshold is None or row.get("direction") not in ("<=", ">="):
        return None
    low, high = axis_range(row)
    return (threshold, high) if row["direction"] == "<=" else (low, threshold)


def percent_suffix(unit: str) -> str:
    """The axis unit of a glance row: percent for shares and changes, pp for points."""
    return " pp" if unit == "points" else "%"


def seed_rule(new_better: bool | None) -> str:
    """The seed's own rule in words, labelled as the seed's: it reads point estimates only, so it
    may say "better" beside an INCONCLUSIVE verdict without contradicting it."""
    says = "new is better" if new_better else "new is not better"
    return f"the seed's point-estimate rule says {says}"


def summary_table(summary: pl.DataFrame) -> pl.DataFrame:
    """A run's old / new summary (engine.parallel.compare.SUMMARY) with units: ms and percent.

    The old version is the baseline the new one's answers are compared with, so
    it has no mismatch rate of its own: it says so instead of "None".
    """
    if not summary.height:
        return pl.DataFrame()
    rows = []
    for r in summary.iter_rows(named=True):
        rows.append(
            {
                "version": r["version"],
                "requests": units.count(r["requests"]),
                "error rate": units.share(r["error_rate"]),
                "p50": units.ms(r["p50"]),
                "p95": units.ms(r["p95"]),
                "p99": units.ms(r["p99"]),
                "responses that differ": (
                    "baseline" if r["version"] == "old" else units.share(r["mismatch_rate"])
                ),
            }
        )
    return pl.DataFrame(rows)
