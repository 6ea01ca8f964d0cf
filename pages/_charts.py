"""Plotly figures more than one page draws. Data comes computed from the engine; this only draws it."""

from __future__ import annotations

import datetime as dt

import plotly.express as px
import plotly.graph_objects as go
import polars as pl

from engine.kpi.metrics import MigrationMetrics
from engine.kpi.timeline import Forecast

PLAN_COLOUR, ACTUAL_COLOUR, FORECAST_COLOUR = "#90a4ae", "#1565c0", "#ef6c00"


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
            hovertext=[p.formula for p in parts],
            marker_color=[_part_colour(p.value) for p in parts],
        )
    )
    fig.update_layout(
        height=260,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"range": [min(0.0, *[p.value for p in parts]), 1]},  # the rollback part can go below 0
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def _part_colour(value: float) -> str:
    return "#2e7d32" if value >= 0.8 else "#ef6c00" if value >= 0.5 else "#c62828"


def now_line(fig: go.Figure, moment: dt.datetime) -> None:
    """A vertical 'today' marker (shapes, since add_vline mis-handles datetime axes with annotations)."""
    fig.add_shape(
        type="line", x0=moment, x1=moment, yref="paper", y0=0, y1=1, line={"color": "#c62828", "dash": "dot"}
    )


def gantt_figure(bars: pl.DataFrame, as_of: dt.datetime, *, height: int) -> go.Figure:
    """Plan and actual bars per label (columns label, kind, start, end), with a 'now' marker."""
    fig = px.timeline(
        bars.to_pandas(),
        x_start="start",
        x_end="end",
        y="label",
        color="kind",
        color_discrete_map={"plan": PLAN_COLOUR, "actual": ACTUAL_COLOUR},
    )
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_layout(
        barmode="group", height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend_title=None
    )
    now_line(fig, as_of.astimezone(dt.UTC).replace(tzinfo=None))
    return fig
