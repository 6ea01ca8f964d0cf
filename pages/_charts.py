"""Plotly figures the pages draw. Data comes computed from the engine; this only draws it.

Built with graph objects, not plotly express: express spends some 60 ms a
figure working out traces and templates, as much as a whole page may take.
"""

from __future__ import annotations

import datetime as dt
import functools
import json

import plotly.graph_objects as go
import polars as pl

from engine.judge.present import STATUS_COLOURS, axis_range, failing_side, percent_suffix
from engine.kpi.metrics import MigrationMetrics
from engine.kpi.timeline import Forecast

PLAN_COLOUR, ACTUAL_COLOUR, FORECAST_COLOUR = "#90a4ae", "#1565c0", "#ef6c00"
PART_COLOURS = {"good": "#2e7d32", "fair": "#ef6c00", "poor": "#c62828"}
"""A success-score part by its level (engine.kpi.metrics.ScorePart.level)."""


def burn_up_figure(burn: pl.DataFrame, metrics: MigrationMetrics, forecast: Forecast) -> go.Figure:
    """Migrated systems per day, plan against actual, with the forecast as a dashed line."""
    fig = go.Figure()
    fig.add_scatter(
        x=burn["day"].to_list(), y=burn["planned"].to_list(), name="plan", line={"color": PLAN_COLOUR}
    )
    fig.add_scatter(
        x=burn["day"].to_list(),
        y=burn["actual"].to_list(),
        name="migrated",
        mode="lines+markers",
        line={"color": ACTUAL_COLOUR, "width": 3},
    )
    if forecast.forecast_finish is not None:
        fig.add_scatter(
            x=[metrics.as_of.date(), forecast.forecast_finish],
            y=[metrics.systems_migrated, metrics.systems_total],
            name="forecast",
            line={"color": FORECAST_COLOUR, "dash": "dash"},
        )
    fig.add_hline(y=metrics.systems_total, line={"color": "#bdbdbd", "dash": "dot"})
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        yaxis_title="systems migrated",
        legend={"orientation": "h", "y": 1.12},
    )
    return fig


def score_parts_figure(metrics: MigrationMetrics) -> go.Figure:
    """The six terms of the seed's success score, each from 0 to 1."""
    parts = metrics.score_parts()
    fig = go.Figure(
        go.Bar(
            x=[p.value for p in parts],
            y=[p.name for p in parts],
            orientation="h",
            text=[f"{p.value:.2f}" for p in parts],
            textposition="outside",  # a part at 0 has no bar to write in: its "0.00" stands beside the axis
            cliponaxis=False,
            hovertext=[p.formula for p in parts],
            marker_color=[PART_COLOURS[p.level] for p in parts],
        )
    )
    fig.update_layout(
        height=260,
        margin={"l": 10, "r": 40, "t": 10, "b": 10},
        xaxis={"range": [min(0.0, *[p.value for p in parts]), 1.12]},  # the rollback part can go below 0
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def now_line(fig: go.Figure, moment: dt.datetime) -> None:
    """A vertical 'today' marker (shapes, since add_vline mis-handles datetime axes with annotations)."""
    fig.add_shape(
        type="line", x0=moment, x1=moment, yref="paper", y0=0, y1=1, line={"color": "#c62828", "dash": "dot"}
    )


def gantt_figure(bars: pl.DataFrame, as_of: dt.datetime, *, height: int) -> go.Figure:
    """Plan and actual bars per label (columns label, kind, start, end), with a 'now' marker."""
    fig = go.Figure()
    for kind, colour in (("plan", PLAN_COLOUR), ("actual", ACTUAL_COLOUR)):
        rows = bars.filter(pl.col("kind") == kind)
        if not rows.height:
            continue
        starts = rows["start"].cast(pl.Datetime("ms"))
        fig.add_bar(
            base=starts.to_list(),
            x=(rows["end"].cast(pl.Datetime("ms")) - starts).dt.total_milliseconds().to_list(),
            y=rows["label"].to_list(),
            orientation="h",
            name=kind,
            marker_color=colour,
            hovertemplate="%{y}<br>%{base|%Y-%m-%d %H:%M} to %{x}<extra>" + kind + "</extra>",
        )
    fig.update_xaxes(type="date")
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_layout(barmode="group", height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    now_line(fig, as_of.astimezone(dt.UTC).replace(tzinfo=None))
    return fig


# --------------------------------------------------------------------------- Go / No-Go: old vs new

VERSION_COLOURS = {"old": "#1f77b4", "new": "#2ca02c"}
QUANTILE_DASHES = {"p50": "solid", "p95": "dot", "p99": "dash"}


def latency_histogram(latencies: pl.DataFrame) -> go.Figure:
    """Latency distribution of ok requests (columns version, latency_ms), old over new."""
    fig = go.Figure()
    for version, colour in VERSION_COLOURS.items():
        fig.add_histogram(
            x=latencies.filter(pl.col("version") == version)["latency_ms"].to_numpy(),
            name=version,
            nbinsx=80,
            bingroup="x",
            marker={"color": colour, "opacity": 0.5},
        )
    fig.update_layout(
        barmode="overlay",
        title="Latency distribution (ok requests)",
        xaxis_title="latency (ms)",
        yaxis_title="requests",
        legend_title="version",
    )
    return fig


def per_bucket_figure(
    buckets: pl.DataFrame, columns: list[str], title: str, *, y_title: str, percent: bool = False
) -> go.Figure:
    """One line per version and column over the buckets (several columns: told apart by dash).

    ``percent``: the columns are shares (0..1), drawn on a percent axis from 0, so
    an error rate that stays at 0 reads as 0 %, not as a line across -1..1.
    """
    fig = go.Figure()
    top = 0.0
    for version, colour in VERSION_COLOURS.items():
        rows = buckets.filter(pl.col("version") == version)
        for column in columns:
            values = rows[column].to_numpy()  # numpy, not lists: plotly checks a list element by element
            top = max(top, float(rows[column].max() or 0.0)) if rows.height else top
            fig.add_scatter(
                x=rows["bucket"].to_numpy(),
                y=values,
                name=f"{version}, {column}" if len(columns) > 1 else version,
                mode="lines",
                line={"color": colour, "dash": QUANTILE_DASHES.get(column, "solid")},
            )
    fig.update_layout(title=title, xaxis_title="time (UTC)", yaxis_title=y_title, legend_title="version")
    if percent:
        fig.update_yaxes(tickformat=".1%", range=[0, max(top * 1.2, 0.01)])
    else:
        fig.update_yaxes(rangemode="tozero")
    return fig


GLANCE_STRIP_PX, GLANCE_GAP_PX, GLANCE_TOP_PX, GLANCE_BOTTOM_PX = 26, 58, 34, 26
"""Pixels of one criterion's strip, of the room between strips (its ticks and the next one's title)."""


@functools.lru_cache(maxsize=64)
def _glance_of(rows_json: str) -> go.Figure:
    return glance_figure(json.loads(rows_json))


def glance_chart(rows: list[dict]) -> go.Figure:
    """:func:`glance_figure`, built once per set of rows in this process and shared: not to be changed.

    A verdict's chart stays the same until it is judged again, and building it
    (10-60 ms here) was most of what a warm Post-mortem page spent (eight of
    them); ``st.plotly_chart`` copies the figure, never changes it.
    """
    return _glance_of(json.dumps(rows, sort_keys=True))


def glance_chart_cache_clear() -> None:
    """Forget the charts :func:`glance_chart` built (the page bench's cold runs start without them)."""
    _glance_of.cache_clear()


def glance_figure(rows: list[dict]) -> go.Figure:
    """Each criterion's interval against its threshold, in percent, coloured pass / unsure / fail.

    One thin strip per criterion (engine.judge.present.glance_rows), each on its
    own axis: a ±20 % latency change and a 100 % validation rate would crush
    each other on one. The bar is the interval, the dot the estimate, the black
    line the threshold with the side where the criterion fails shaded red, the
    dotted line no change; whatever criteria the verdict carries get a strip.
    Shapes are named (threshold, failing side, no change) for tests and hovers.

    The strips' axes, traces, shapes and notes are laid out as ``make_subplots``
    and ``add_shape(row=i)`` would (same figure, tests/app/test_charts.py), then
    given to plotly in one go and not validated: one by one, plotly re-validated
    every shape and axis already there (a verdict's 14 strips took 0.3-1.4 s a
    figure here, the Post-mortem page draws eight), and validating the whole
    still took 0.1-0.4 s. The test validates what this builds.
    """
    n = max(len(rows), 1)
    plot_px = n * GLANCE_STRIP_PX + (n - 1) * GLANCE_GAP_PX
    gap = GLANCE_GAP_PX / plot_px if n > 1 else 0.0
    strip = (1 - gap * (n - 1)) / n
    layout: dict = {}
    traces: list[dict] = []
    shapes: list[dict] = []
    notes: list[dict] = []
    for i in range(1, n + 1):  # make_subplots' grid: the first row at the top
        top = 1 - (i - 1) * (strip + gap)
        suffix = "" if i == 1 else str(i)
        layout[f"xaxis{suffix}"] = {"anchor": f"y{suffix}", "domain": [0.0, 1.0]}
        layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}", "domain": [max(top - strip, 0.0), top]}
    for i, row in enumerate(rows, start=1):
        suffix = "" if i == 1 else str(i)
        x, y = f"x{suffix}", f"y{suffix}"
        colour = STATUS_COLOURS[row["status"]]
        bad = failing_side(row)
        if bad is not None:
            shapes.append(
                {
                    "type": "rect",
                    "name": "failing side",
                    "x0": bad[0],
                    "x1": bad[1],
                    "y0": -1,
                    "y1": 1,
                    "fillcolor": STATUS_COLOURS["fail"],
                    "opacity": 0.10,
                    "line": {"width": 0},
                    "layer": "below",
                    "xref": x,
                    "yref": y,
                }
            )
        if row["unit"] in ("change", "points"):
            shapes.append(
                {
                    "type": "line",
                    "name": "no change",
                    "x0": 0,
                    "x1": 0,
                    "y0": -1,
                    "y1": 1,
                    "line": {"color": "#8c959f", "width": 1, "dash": "dot"},
                    "layer": "below",
                    "xref": x,
                    "yref": y,
                }
            )
        if row["observed"] is not None:
            traces.append(
                {
                    "type": "scatter",
                    "x": [row["low"], row["high"]],
                    "y": [0, 0],
                    "mode": "lines",
                    "line": {"color": colour, "width": 12},
                    "hoverinfo": "skip",
                    "xaxis": x,
                    "yaxis": y,
                }
            )
            traces.append(
                {
                    "type": "scatter",
                    "x": [row["observed"]],
                    "y": [0],
                    "mode": "markers",
                    "marker": {"color": "white", "size": 13, "line": {"color": colour, "width": 3}},
                    "hovertemplate": f"{row['label']}: {row['text']} (limit {row['limit']})<extra></extra>",
                    "xaxis": x,
                    "yaxis": y,
                }
            )
        if row["threshold"] is not None:
            shapes.append(
                {
                    "type": "line",
                    "name": "threshold",
                    "x0": row["threshold"],
                    "x1": row["threshold"],
                    "y0": -1,
                    "y1": 1,
                    "line": {"color": "#24292f", "width": 2},
                    "xref": x,
                    "yref": y,
                }
            )
        layout[f"xaxis{suffix}"] |= {
            "range": list(axis_range(row)),
            "ticksuffix": percent_suffix(row["unit"]),
        }
        layout[f"yaxis{suffix}"] |= {"visible": False, "range": [-1, 1]}
        mark = row["mark"]
        notes.append(
            {
                "text": f"<b>{row['label']}</b>  {row['text']}  (limit {row['limit']})  "
                f"<span style='color:{colour}'><b>{mark}</b></span>",
                "xref": f"{x} domain",
                "yref": f"{y} domain",
                "x": 0,
                "y": 1.15,
                "xanchor": "left",
                "yanchor": "bottom",
                "showarrow": False,
                "align": "left",
                "font": {"size": 13},
            }
        )
    layout |= {"shapes": shapes, "annotations": notes} if rows else {}
    layout |= {
        "height": plot_px + GLANCE_TOP_PX + GLANCE_BOTTOM_PX,
        "margin": {"l": 10, "r": 10, "t": GLANCE_TOP_PX, "b": GLANCE_BOTTOM_PX},
        "showlegend": False,
        "plot_bgcolor": "#f6f8fa",
    }
    return go.Figure(data=traces, layout=layout, _validate=False)  # validated in tests/app/test_charts.py


# --------------------------------------------------------------------------- counts and rates per category


def count_bars(
    frame: pl.DataFrame, x: str, colour_by: str, title: str, colours: dict[str, str] | None = None
) -> go.Figure:
    """How many rows per ``x``, stacked by ``colour_by`` (the colours' order first, then the rest)."""
    counts = frame.group_by(x, colour_by).len()
    groups = [*(colours or {}), *sorted(set(counts[colour_by].to_list()) - set(colours or {}))]
    fig = go.Figure()
    for group in groups:
        rows = counts.filter(pl.col(colour_by) == group)
        if rows.height:
            colour = (colours or {}).get(group)
            fig.add_bar(x=rows[x].to_list(), y=rows["len"].to_list(), name=str(group), marker_color=colour)
    fig.update_layout(
        barmode="stack", bargap=0.2, title=title, xaxis_title=x, yaxis_title="systems", legend_title=colour_by
    )
    fig.update_xaxes(categoryorder="category ascending")
    return fig


def rate_bars(rates: pl.DataFrame, title: str, colours: dict[str, str]) -> go.Figure:
    """Rates per category (columns category, rate, version), one bar per version side by side, as %."""
    fig = go.Figure()
    for version, colour in colours.items():
        rows = rates.filter(pl.col("version") == version)
        fig.add_bar(
            x=rows["category"].to_list(),
            y=rows["rate"].to_list(),
            name=version,
            marker_color=colour,
            text=[f"{r:.0%}" for r in rows["rate"]],
            textposition="outside",  # a rate of 0 has no bar to write in: its "0%" stands on the axis
            cliponaxis=False,
        )
    fig.update_layout(barmode="group", title=title, xaxis_title="category", legend_title="version")
    fig.update_yaxes(tickformat=".0%", range=[0, 1.05], title="rate")
    return fig
