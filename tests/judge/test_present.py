"""engine.judge.present: any verdict's criteria read with units and a status, and draw at a glance."""

from __future__ import annotations

from engine.judge import present


def criterion(name: str, **fields) -> dict:  # noqa: ANN003 - the stored JSON's fields
    base = {"name": name, "threshold": 0.1, "direction": "<=", "n_old": 900, "n_new": 900}
    return base | fields


def test_status_is_pass_unsure_or_fail_and_a_guard_passes_on_its_estimate() -> None:
    assert present.status(criterion("x", passed=True, conclusive=True)) == "pass"
    assert present.status(criterion("x", passed=True, conclusive=False)) == "unsure"
    assert present.status(criterion("x", passed=False, conclusive=True)) == "fail"
    tail = criterion("latency_p99_increase", passed=True, conclusive=False, role="guard", guard_clear=True)
    assert present.status(tail) == "pass"  # does not hold GO up: never drawn as the amber blocker
    assert present.mark(tail) == "pass (guard, not proven)"
    assert present.status(tail | {"passed": False}) == "unsure"
    assert present.status(tail | {"guard_clear": False}) == "unsure"  # within, but not clearly: holds GO up


def test_a_criterion_the_judge_adds_later_is_laid_out_like_the_others() -> None:
    endpoint = criterion(
        "error_rate_increase[/users]",
        observed=0.004,
        ci_low=-0.001,
        ci_high=0.012,
        threshold=0.01,
        passed=True,
        conclusive=False,
        unit="points",
    )
    new = criterion("brand_new_check", observed=0.02, ci_low=0.01, ci_high=0.03, passed=True, conclusive=True)
    table = present.criteria_table({"criteria": [endpoint, new]})
    assert table["criterion"].to_list() == ["Error rate change /users", "Brand new check"]
    assert table.row(0, named=True) | {} == {
        "criterion": "Error rate change /users",
        "observed": "+0.40 pp",
        "interval": "[-0.10 pp, +1.2 pp]",
        "limit": "<= +1.0 pp",
        "result": "unsure",
        "samples old / new": "900 / 900",
    }
    rows = present.glance_rows({"criteria": [endpoint, new]})
    assert [(r["observed"], r["low"], r["high"], r["threshold"]) for r in rows][0] == (0.4, -0.1, 1.2, 1.0)
    low, high = present.axis_range(rows[1])
    assert low < 0 < 1.0 < 3.0 < high  # holds the interval, the threshold and zero


def test_the_validation_rate_counts_no_samples_of_the_run() -> None:
    """It is the gate's share of passing checks: its row said '0 / 0' samples beside 100.0 % (screenshot)."""
    validation = criterion("validation_success_rate", observed=1.0, threshold=0.8, passed=True, unit="share")
    validation |= {"n_old": 0, "n_new": 0}
    assert present.criteria_table({"criteria": [validation]})["samples old / new"].to_list() == ["–"]


def test_a_criterion_not_measured_has_no_bar_and_reads_as_a_dash() -> None:
    missing = criterion("latency_increase", observed=None, ci_low=None, ci_high=None, passed=False)
    row = present.glance_rows({"criteria": [missing]})[0]
    assert row["observed"] is None and row["status"] == "unsure" and row["text"] == "–"
    assert present.axis_range(row) == (-1.5, 11.5)  # zero and the threshold, 15 % of the span around
