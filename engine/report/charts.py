"""The post-mortem's charts as PNG images, drawn with matplotlib's Agg backend.

Why matplotlib and not the app's plotly: a report must carry its charts as
plain images (a PDF page, an HTML file opened offline, a Markdown file), and
plotly's static export needs a browser process (kaleido). Agg draws in-process
with no display, in a few tens of milliseconds per chart. matplotlib is
imported on first use only, so the app's pages do not pay for it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import polars as pl

from engine.judge import present
from engine.kpi.metrics import MigrationMetrics

PLAN_COLOUR, ACTUAL_COLOUR, BAD_COLOUR, GOOD_COLOUR = "#9aa5b1", "#1f6feb", "#d1242f", "#1a7f37"


@dataclass(frozen=True)
class Chart:
    title: str
    caption: str
    png: bytes


def _figure(width: float = 7.0, height: float = 3.2):  # noqa: ANN202 - matplotlib types are optional
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # a Figure without pyplot: no global state between reports

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig, fig.add_subplot()


def _png(fig) -> bytes:  # noqa: ANN001
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def burn_up_chart(burn_up: pl.DataFrame) -> Chart:
    """Cumulative systems migrated per day, plan against actual."""
    fig, ax = _figure()
    days = burn_up["day"].to_list()
    ax.step(days, burn_up["planned"].to_list(), where="post", color=PLAN_COLOUR, label="plan")
    actual = burn_up.filter(pl.col("actual").is_not_null())
    ax.plot(
        actual["day"].to_list(), actual["actual"].to_list(), color=ACTUAL_COLOUR, marker="o", label="actual"
    )
    ax.set_ylabel("systems migrated")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    last = actual["actual"][-1] if actual.height else 0
    planned = burn_up["planned"][-1] if burn_up.height else 0
    return Chart(
        "Burn-up: plan vs actual", f"{last} migrated so far; {planned} planned by the plan's end.", _png(fig)
    )


def score_parts_chart(metrics: MigrationMetrics) -> Chart:
    """The six parts of the seed's success score, each 0..1."""
    parts = metrics.score_parts()
    fig, ax = _figure(height=2.8)
    names = [p.name for p in parts][::-1]
    values = [p.value for p in parts][::-1]
    colours = [GOOD_COLOUR if p.level == "good" else BAD_COLOUR for p in parts][::-1]
    ax.barh(names, values, color=colours)
    low = min(0.0, *values)  # the seed's rollback term goes below zero when rollbacks outnumber migrations
    ax.set_xlim(low, 1.0)
    ax.axvline(0, color="black", linewidth=0.8)
    for y, v in enumerate(values):
        ax.text(min(max(v, 0.0) + 0.01, 0.92), y, f"{v:.2f}", va="center")
    ax.set_xlabel("part of the success score")
    return Chart(
        "Success score parts",
        f"Success score {metrics.success_score:.2f}, the mean of the six parts.",
        _png(fig),
    )


def verdict_chart(verdicts: pl.DataFrame) -> Chart | None:
    """Per system, the newest verdict's throughput and latency change (the judge's observed values)."""
    latest = (
        verdicts.drop_nulls(["throughput_change", "latency_increase"])
        .group_by("system")
        .agg(pl.all().sort_by("ts").last())
        .sort("system")
    )
    if latest.height == 0:
        return None
    fig, ax = _figure(height=max(2.4, 0.45 * latest.height + 1))
    ys = list(range(latest.height))
    ax.barh([y - 0.2 for y in ys], (latest["throughput_change"] * 100).to_list(), 0.4, label="throughput")
    ax.barh([y + 0.2 for y in ys], (latest["latency_increase"] * 100).to_list(), 0.4, label="latency")
    ax.set_yticks(ys, latest["system"].to_list())
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("change new vs old, %")
    ax.legend(loc="best")
    verdict_text = ", ".join(f"{s}: {v}" for s, v in latest.select("system", "verdict").iter_rows())
    return Chart("Newest verdict per system", verdict_text, _png(fig))


GLANCE_LIMIT = 8
"""Systems whose newest verdict gets its at-a-glance chart in one report (the rest: in the table)."""


def criteria_chart(system: str, result: dict) -> Chart | None:
    """The Go / No-Go page's chart at a glance: each criterion's interval against its threshold, in
    percent, coloured pass / unsure / fail; one strip per criterion the verdict carries."""
    rows = present.glance_rows(result)
    if not rows:
        return None
    from matplotlib.ticker import FuncFormatter

    fig, _ = _figure(height=0.72 * len(rows) + 0.4)
    fig.clear()
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, row in zip(axes, rows, strict=True):
        colour = present.STATUS_COLOURS[row["status"]]
        bad = present.failing_side(row)
        if bad is not None:  # as on the page: the side of the threshold where the criterion fails
            ax.axvspan(*bad, color=present.STATUS_COLOURS["fail"], alpha=0.10, linewidth=0, zorder=0)
        if row["unit"] in ("change", "points"):
            ax.axvline(0, color="#8c959f", linestyle=":", linewidth=1, zorder=1)
        if row["observed"] is not None:
            ax.hlines(0, row["low"], row["high"], color=colour, linewidth=7)
            ax.plot(
                [row["observed"]], [0], "o", markerfacecolor="white", markeredgecolor=colour, markersize=8
            )
        if row["threshold"] is not None:
            ax.axvline(row["threshold"], color="#24292f", linewidth=1.5)
        ax.set_xlim(*present.axis_range(row))
        ax.set_ylim(-1, 1)
        ax.set_yticks([])
        suffix = present.percent_suffix(row["unit"])
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _, s=suffix: f"{v:g}{s}"))
        ax.tick_params(labelsize=7)
        mark = row["mark"]
        ax.set_title(
            f"{row['label']}: {row['text']} (limit {row['limit']}), {mark}",
            loc="left",
            fontsize=8,
            color=colour,
        )
    verdict = str(result.get("verdict", ""))
    reasons = [str(r) for r in result.get("reasons") or []][:3]
    caption = f"{verdict}. " + " ".join(f"{r[0].upper()}{r[1:]}." for r in reasons if r)
    return Chart(f"{system}: criteria at a glance ({verdict})", caption.strip(), _png(fig))


def newest_results(verdicts: pl.DataFrame) -> list[tuple[str, dict]]:
    """(system, verdict result) of each system's newest verdict with criteria, by system name, at most
    :data:`GLANCE_LIMIT`: what the report and the Post-mortem page draw at a glance."""
    if "result" not in verdicts.columns or not verdicts.height:
        return []
    newest = verdicts.sort("ts").group_by("system", maintain_order=True).last().sort("system")
    results = [(r["system"], json.loads(r["result"])) for r in newest.iter_rows(named=True) if r["result"]]
    return [(system, result) for system, result in results if result.get("criteria")][:GLANCE_LIMIT]


def glance_charts(verdicts: pl.DataFrame) -> list[Chart]:
    """:func:`criteria_chart` of each system's newest verdict (:func:`newest_results`)."""
    charts = [criteria_chart(system, result) for system, result in newest_results(verdicts)]
    return [c for c in charts if c is not None]


def report_charts(burn_up: pl.DataFrame, metrics: MigrationMetrics, verdicts: pl.DataFrame) -> list[Chart]:
    charts = [burn_up_chart(burn_up), score_parts_chart(metrics)]
    judged = verdict_chart(verdicts)
    return charts + ([judged] if judged else [])
