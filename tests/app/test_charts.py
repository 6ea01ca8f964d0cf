"""pages/_charts.py glance_figure: built in one go and unvalidated, it is the figure plotly validates,
and the one ``make_subplots`` + ``add_shape(row=i)`` drew (kept here as the reference)."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from engine.judge import present
from pages._charts import GLANCE_GAP_PX, GLANCE_STRIP_PX, glance_figure


def criterion(name: str, **fields) -> dict:  # noqa: ANN003 - the stored JSON's fields
    base = {"name": name, "threshold": 0.1, "direction": "<=", "n_old": 900, "n_new": 900}
    return (
        base
        | {"observed": 0.02, "ci_low": -0.01, "ci_high": 0.05, "passed": True, "conclusive": True}
        | fields
    )


CRITERIA = [
    criterion("latency_increase"),
    criterion(
        "latency_p95_increase", observed=0.12, ci_low=0.08, ci_high=0.2, passed=False, conclusive=False
    ),
    criterion("throughput_change", direction=">=", threshold=-0.05, observed=-0.3, ci_low=-0.4, ci_high=-0.2),
    criterion("error_rate_increase[/users]", unit="points", observed=0.004, ci_low=-0.001, ci_high=0.012),
    criterion("validation_rate", direction=">=", threshold=0.8, observed=1.0, ci_low=None, ci_high=None),
    criterion("latency_drift", observed=None, ci_low=None, ci_high=None, passed=False),
    criterion("brand_new_check", threshold=None, direction=""),
]


def reference(rows: list[dict]) -> go.Figure:
    """The figure as glance_figure built it one call at a time (plotly validating each)."""
    n = max(len(rows), 1)
    plot_px = n * GLANCE_STRIP_PX + (n - 1) * GLANCE_GAP_PX
    fig = make_subplots(rows=n, cols=1, vertical_spacing=GLANCE_GAP_PX / plot_px if n > 1 else 0.0)
    for i, row in enumerate(rows, start=1):
        colour = present.STATUS_COLOURS[row["status"]]
        bad = present.failing_side(row)
        common = {"y0": -1, "y1": 1, "row": i, "col": 1}
        if bad is not None:
            fig.add_shape(
                type="rect",
                name="failing side",
                x0=bad[0],
                x1=bad[1],
                fillcolor=present.STATUS_COLOURS["fail"],
                opacity=0.10,
                line={"width": 0},
                layer="below",
                **common,
            )
        if row["unit"] in ("change", "points"):
            fig.add_shape(
                type="line",
                name="no change",
                x0=0,
                x1=0,
                line={"color": "#8c959f", "width": 1, "dash": "dot"},
                layer="below",
                **common,
            )
        if row["observed"] is not None:
            fig.add_scatter(
                x=[row["low"], row["high"]],
                y=[0, 0],
                mode="lines",
                line={"color": colour, "width": 12},
                hoverinfo="skip",
                row=i,
                col=1,
            )
            fig.add_scatter(
                x=[row["observed"]],
                y=[0],
                mode="markers",
                marker={"color": "white", "size": 13, "line": {"color": colour, "width": 3}},
                hovertemplate=f"{row['label']}: {row['text']} (limit {row['limit']})<extra></extra>",
                row=i,
                col=1,
            )
        if row["threshold"] is not None:
            line = {"color": "#24292f", "width": 2}
            fig.add_shape(
                type="line", name="threshold", x0=row["threshold"], x1=row["threshold"], line=line, **common
            )
        fig.update_xaxes(
            range=list(present.axis_range(row)), ticksuffix=present.percent_suffix(row["unit"]), row=i, col=1
        )
        fig.update_yaxes(visible=False, range=[-1, 1], row=i, col=1)
        fig.add_annotation(
            text=f"<b>{row['label']}</b>  {row['text']}  (limit {row['limit']})  "
            f"<span style='color:{colour}'><b>{row['mark']}</b></span>",
            xref="x domain" if i == 1 else f"x{i} domain",
            yref="y domain" if i == 1 else f"y{i} domain",
            x=0,
            y=1.15,
            xanchor="left",
            yanchor="bottom",
            showarrow=False,
            align="left",
            font={"size": 13},
        )
    fig.update_layout(
        height=plot_px + 34 + 26,
        margin={"l": 10, "r": 10, "t": 34, "b": 26},
        showlegend=False,
        plot_bgcolor="#f6f8fa",
    )
    return fig


def same(a: object, b: object, path: str = "") -> None:
    """Equal JSON, floats to 1e-12 (the strips' domains are summed in another order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (path, set(a) ^ set(b))  # type: ignore[arg-type]
        for key in a:
            same(a[key], b[key], f"{path}.{key}")  # type: ignore[index]
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (path, a, b)  # type: ignore[arg-type]
    else:
        assert a == b, (path, a, b)


@pytest.mark.parametrize("count", [0, 1, 2, len(CRITERIA), 3 * len(CRITERIA)])
def test_the_glance_figure_is_the_one_plotly_validates_and_the_one_subplots_drew(count: int) -> None:
    criteria = [
        c | {"name": f"{c['name']}{'' if i < len(CRITERIA) else i}"} for i, c in enumerate(CRITERIA * 3)
    ]
    rows = present.glance_rows({"criteria": criteria[:count]})
    fig = glance_figure(rows).to_plotly_json()
    validated = go.Figure(fig).to_plotly_json()  # raises on any property plotly does not know
    same(fig, validated)
    same(fig, reference(rows).to_plotly_json())
