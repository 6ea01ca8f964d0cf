"""Words the CLI and the pages both put on the same facts, so that they read alike.

A verdict's criteria have theirs in :mod:`engine.judge.present`; this is for
what is not the judge's: the inventory's v1 result. Streamlit and terminal
colours stay with their drawers (pages/_shared.py, pages/_charts.py).
"""

from __future__ import annotations

import polars as pl

V1_LABELS = ("pass", "fail", "not run")
"""A system's newest v1 validation in words: every check passed, one failed, never validated."""
TERMINAL_V1_LABELS = ("pass", "FAIL", "-")
"""The same in the CLI's plain-text tables: a failure stands out without colour, a blank is a dash."""


def v1_result(column: str = "v1_passed", labels: tuple[str, str, str] = V1_LABELS) -> pl.Expr:
    """The v1 result of each inventory row (``column`` true, false or null) in words: ``labels``."""
    passed, failed, missing = labels
    return (
        pl.when(pl.col(column))
        .then(pl.lit(passed))
        .when(pl.col(column).not_())
        .then(pl.lit(failed))
        .otherwise(pl.lit(missing))
    )
