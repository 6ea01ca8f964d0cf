"""The post-mortem laid out once, as a format-neutral document the three renderers share.

Sections hold paragraphs, bullet lists, tables (every cell already a string)
and images. Markdown, HTML and PDF differ only in how they draw these four
things, so the report says the same in every format and the content is
written in one place. Text here is plain: each renderer escapes it for its
own format.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from engine import units
from engine.report.charts import Chart, glance_charts, report_charts
from engine.report.collect import PostMortem


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    empty: str = "None."


@dataclass(frozen=True)
class Image:
    chart: Chart


Block = Paragraph | Bullets | Table | Image


@dataclass
class Section:
    heading: str
    blocks: list[Block] = field(default_factory=list)


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    sections: list[Section]


def cell(value: Any) -> str:
    """One table cell as text: times to the minute in UTC, ratios as given, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "; ".join(cell(v) for v in value)
    return str(value)


def table(
    frame: pl.DataFrame,
    columns: dict[str, str],
    empty: str = "None.",
    units_of: dict[str, str] | None = None,
) -> Table:
    """A frame's chosen columns (name -> heading) as a Table; ``units_of`` names the unit
    (engine.units) of numeric columns, which are then written in it ("+16.5%", "0.853 ms")."""
    units_of = units_of or {}
    rows = [
        [units.fmt(v, units_of[c]) if c in units_of else cell(v) for c, v in zip(columns, row, strict=True)]
        for row in frame.select(list(columns)).iter_rows()
    ]
    return Table(list(columns.values()), rows, empty)


def _target_rows(post: PostMortem) -> list[list[str]]:
    rows = [["Systems migrated", f"{post.metrics.systems_migrated} / {post.metrics.systems_total}", "", ""]]
    rows.append(["Migration rate", f"{post.metrics.migration_rate:.2f} per day", "", ""])
    for t in post.metrics.targets():
        target = units.kpi(t.target, t.unit)
        mark = "missed" if t.measured and not t.met else t.verdict()
        rows.append([t.label, t.shown(), f"{t.direction} {target}", mark])
    return rows


def build_document(post: PostMortem) -> Document:
    """Lay the post-mortem out: summary, KPIs, timeline, decisions, rollbacks, risks, verdicts, systems."""
    charts = report_charts(post.burn_up, post.metrics, post.verdicts)
    summary = Section("Summary", [Bullets(post.summary())])
    kpis = Section(
        "KPIs and success score",
        [
            Paragraph(
                f"Success score {post.metrics.success_score:.2f}. Figures as of {cell(post.as_of)} UTC."
            ),
            Table(["KPI", "Value", "Target", ""], _target_rows(post)),
            Table(
                ["Score part", "Formula", "Value"],
                [[p.name, p.formula, f"{p.value:.2f}"] for p in post.metrics.score_parts()],
            ),
            *[Image(c) for c in charts[:2]],
        ],
    )
    timeline = Section("Timeline")
    if post.phases:
        timeline.blocks.append(
            Table(
                ["Phase", "Planned", "Actual", "Migrated"],
                [
                    [
                        f"{p.number}. {p.name}",
                        f"{cell(p.planned_start)} – {cell(p.planned_end)}",
                        f"{cell(p.actual_start)} – {cell(p.actual_end) if p.actual_end else 'open'}",
                        f"{p.migrated} / {p.systems}",
                    ]
                    for p in post.phases
                ],
            )
        )
    if post.forecast is not None:
        timeline.blocks.append(Paragraph(f"Forecast: {post.forecast.explanation}."))
    timeline.blocks.append(
        table(
            post.systems,
            {
                "name": "System",
                "phase": "Phase",
                "state": "State",
                "due": "Due",
                "deployed_at": "Deployed",
                "migrated_at": "Migrated",
            },
        )
    )
    decisions = Section(
        "Decisions and their evidence",
        [
            table(
                post.decisions,
                {
                    "ts": "When (UTC)",
                    "system": "System",
                    "to_state": "Decision",
                    "actor": "Who",
                    "reason": "Why",
                    "evidence": "Evidence (newest verdict)",
                },
                "No decisions recorded yet.",
            )
        ],
    )
    rollbacks = Section(
        "Rollbacks and failure documents",
        [
            table(
                post.rollbacks,
                {"ts": "When (UTC)", "system": "System", "actor": "Who", "reason": "Why"},
                "No rollbacks.",
            ),
            Table(
                ["Failure document", "System", "When", "Reason", "Trigger"],
                [[f.file, f.system, f.timestamp, f.reason, f.trigger or "–"] for f in post.failures],
                "No failure documents.",
            ),
        ],
    )
    risks = Section(
        "Risks that materialised",
        [
            Table(
                ["Risk", "Level", "Owner", "Evidence", "Systems", "Mitigation"],
                [
                    [
                        r.description,
                        r.level,
                        r.owner,
                        "; ".join(r.evidence),
                        ", ".join(r.systems),
                        r.mitigation,
                    ]
                    for r in post.risks
                ],
                "None of the register's risks materialised.",
            ),
            *(
                [Paragraph("Defects of the old systems (theirs, not caused by the migration):")]
                + [Bullets(post.old_defects)]
                if post.old_defects
                else []
            ),
        ],
    )
    verdicts = Section(
        "Verdicts",
        [
            table(
                post.verdicts,
                {
                    "ts": "When (UTC)",
                    "system": "System",
                    "verdict": "Verdict",
                    "throughput_change": "Throughput",
                    "latency_increase": "Latency",
                    "reasons": "Reasons",
                },
                "No parallel run judged yet.",
                units_of={"throughput_change": "change", "latency_increase": "change"},
            ),
            *[Image(c) for c in charts[2:]],
            *[Image(c) for c in glance_charts(post.verdicts)],
        ],
    )
    subtitle = f"As of {cell(post.as_of)} UTC · generated by {post.generated_by} · Switchyard"
    return Document(post.title, subtitle, [summary, kpis, timeline, decisions, rollbacks, risks, verdicts])
