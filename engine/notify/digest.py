"""The daily standup digest: what the Standup page shows, as Markdown for a chat room or a mail.

It says what the page says, in the page's order: systems migrated, success
score and forecast; each KPI beside its target with its change since the same
moment yesterday; the success score part by part; what changed in the last
24 hours; the blockers; and what the plan wants next. Every figure comes from
:func:`engine.services.overview`, so the digest of a past day can be produced
again and reads the same.

Text that users typed (reasons, details) is escaped so that it cannot turn
into links, images, HTML, emphasis or table cells in the Markdown.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from pydantic import BaseModel

from engine.kpi.overview import Overview

MAX_ROWS = 12

FORMATS: dict[str, Callable[[float], str]] = {
    "ratio": lambda v: f"{v:.0%}",
    "change": lambda v: f"{v:+.1%}",
    "count": lambda v: f"{v:.0f}",
    "hours": lambda v: f"{v:.2f} h",
    "minutes": lambda v: f"{v:.1f} min",
    "per_day": lambda v: f"{v:.2f} / day",
}
DELTAS: dict[str, Callable[[float], str]] = {
    "ratio": lambda v: f"{v * 100:+.0f} pt",
    "change": lambda v: f"{v * 100:+.1f} pt",
    "count": lambda v: f"{v:+.0f}",
    "hours": lambda v: f"{v:+.2f} h",
    "minutes": lambda v: f"{v:+.1f} min",
    "per_day": lambda v: f"{v:+.2f} / day",
}
_MARKDOWN = re.compile(r"([\\`*\[\]<>|])")


class Digest(BaseModel):
    as_of: dt.datetime
    markdown: str


def text(value: object, limit: int = 300) -> str:
    """User text for Markdown: one line, at most ``limit`` characters, markup characters escaped."""
    line = " ".join("".join(c if c.isprintable() else " " for c in str(value or "")).split())
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    return _MARKDOWN.sub(r"\\\1", line)


def code(name: object) -> str:
    """A system name as inline code (names are plain identifiers; anything else is escaped)."""
    value = str(name or "")
    return f"`{value}`" if re.fullmatch(r"[A-Za-z0-9_.:-]+", value) else text(value)


def _delta(value: float, unit: str) -> str:
    shown = DELTAS[unit](value)
    return "–" if shown == DELTAS[unit](0.0) else shown


def render(view: Overview) -> str:
    """The digest of ``view`` as Markdown."""
    m, y, fc = view.metrics, view.yesterday, view.timeline.forecast
    out = [
        f"# Switchyard standup, {view.as_of:%a %d %b %Y}",
        "",
        f"As of {view.as_of:%Y-%m-%d %H:%M} UTC. Every figure is measured from the store; changes compare "
        "with the same moment yesterday.",
        "",
    ]
    migrated = m.systems_migrated - y.systems_migrated
    score = m.success_score - y.success_score
    if fc.forecast_finish is not None:
        slip = "on plan" if not fc.slip_days else f"{fc.slip_days:+d} days vs plan"
        forecast = f"forecast finish {fc.forecast_finish:%d %b %Y} ({slip})"
    else:
        forecast = f"no forecast yet (plan ends {fc.planned_finish:%d %b %Y}; {text(fc.explanation)})"
    out += [
        f"- **Systems migrated: {m.systems_migrated} / {m.systems_total}**"
        + (f" ({migrated:+d} since yesterday)" if migrated else ""),
        f"- **Success score: {m.success_score:.2f}**" + (f" ({score:+.3f})" if round(score, 3) else ""),
        f"- Migration rate: {m.migration_rate:.2f} systems / day",
        f"- {forecast[0].upper()}{forecast[1:]}",
        "",
        "## KPIs against their targets",
        "",
        "| KPI | now | target | | since yesterday |",
        "|---|---:|---|---|---:|",
    ]
    before = {t.field: t for t in y.targets()}
    for target in m.targets():
        fmt = FORMATS[target.unit]
        was = before[target.field]
        change = _delta(target.value - was.value, target.unit) if target.measured and was.measured else "–"
        now = fmt(target.value) if target.measured else target.shown()
        mark = "**not met**" if target.measured and not target.met else target.verdict()
        goal = f"{target.direction} {fmt(target.target)}"
        out.append(f"| {target.label} | {now} | {goal} | {mark} | {change} |")
    out += [
        "",
        f"Evidence: {m.systems_with_verdict} migrated systems with a verdict, "
        f"{m.systems_with_capacity} with a capacity probe; {m.systems_validated_v2} systems validated on v2.",
    ]
    notes = m.caveats()
    if notes:
        out.append(f"Note: {'; '.join(notes)}.")
    out += [
        "",
        f"## Success score {m.success_score:.2f}, part by part",
        "",
        "| part | value | formula |",
        "|---|---:|---|",
        *[f"| {p.name} | {p.value:.3f} | `{p.formula}` |" for p in m.score_parts()],
        "",
        f"## Last 24 hours ({view.changes.height})",
        "",
    ]
    if view.changes.height:
        for row in view.changes.head(MAX_ROWS).iter_rows(named=True):
            reason = f": {text(row['reason'])}" if row.get("reason") else ""
            out.append(
                f"- {row['ts']:%a %H:%M} {code(row['system'])} {text(row['what'])} "
                f"(by {text(row['actor'])}){reason}"
            )
        if view.changes.height > MAX_ROWS:
            out.append(f"- … and {view.changes.height - MAX_ROWS} more (the Audit log page has them all)")
    else:
        out.append("No promotion, rollback, trigger or NO_GO verdict in the last 24 hours.")
    out += ["", f"## Blockers ({len(view.blockers)})", ""]
    if view.blockers:
        for blocker in view.blockers[:MAX_ROWS]:
            label = "**EMERGENCY**" if blocker.kind == "emergency" else text(blocker.kind)
            out.append(f"- {label} {code(blocker.system)} ({text(blocker.state)}): {text(blocker.detail)}")
        if len(view.blockers) > MAX_ROWS:
            out.append(
                f"- … and {len(view.blockers) - MAX_ROWS} more (see the Inventory and Validation pages)"
            )
    else:
        out.append("Nothing is blocked.")
    out += ["", "## Next by the plan", ""]
    if view.next_due.height:
        out += ["| system | priority | phase | state | due |", "|---|---|---:|---|---|"]
        for row in view.next_due.iter_rows(named=True):
            due = f"{row['due']:%a %d %b %H:%M}" if row.get("due") else "–"
            late = " **overdue**" if row.get("overdue") else ""
            out.append(
                f"| {code(row['name'])} | {text(row['priority'])} | {row['phase']} | {text(row['state'])} | "
                f"{due}{late} |"
            )
    else:
        out.append("Every system in the plan is migrated.")
    return "\n".join(out) + "\n"


def digest(view: Overview) -> Digest:
    return Digest(as_of=view.as_of, markdown=render(view))
