"""The risk register with live evidence: which of the seed's risks have materialised, and where.

A risk matrix that is only text is read once and forgotten. Here each risk
with a ``measure`` is checked against what the store recorded up to
``as_of`` (so a post-mortem can ask "as of the end of phase 1"), and the
evidence is a few plain sentences carrying the measured figures and the
systems they concern:

* **data loss**: a rollback that could not verify the old version (the
  system went to ``emergency``); a latest verdict whose responses differed
  from the old version's beyond the policy's mismatch limit; a deployed
  system without a backup dated on or before ``as_of``;
* **performance regression**: a system whose latest verdict is NO_GO on its
  latency or throughput criterion, or on the p95 / throughput triggers;
* **import errors** (in new code): systems failing the v2 gate, conversion
  decisions of severity ``error``; v1 checks named ``import`` that fail are the
  old code's own defects, listed apart (``old_system``), never counted, and so
  is a system broken in v1 that fails the gate only as v1 fails (no answer of
  v2 differs from v1's: the defect carried over, behaviour being preserved);
* **knowledge gap**: components whose v1 code is hosted as it is (no recipe
  was shown to answer alike: someone has to know and keep that code), and
  components without code whose type had no recipe, defaulted to Transformer
  ("behaviour may differ");
* **rollback complexity**: rollbacks counted against the seed's target (< 5),
  rollbacks that needed a person after the automated one failed, and the
  failure documents under ``migration/failures``.

Nothing here writes to the store. Most facts come from
:func:`engine.kpi.facts.load_facts`; the few queries of its own (newest
verdict, validation and conversion per system at a moment) take parameters.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from pydantic import BaseModel

from engine.convert.converter import ConversionReport
from engine.judge.policy import Policy
from engine.kpi.facts import Facts, load_facts
from engine.risks.catalog import LEVEL_ORDER, Risk, RiskCatalog, load_catalog
from engine.state import DEPLOYED_STATES, State
from engine.store.db import query_frame
from engine.workspace import Workspace

ROLLBACK_TARGET = 5
"""The seed's KPI target: fewer than 5 rollbacks over the migration."""
EXAMPLES = 5
"""Per-system sentences shown under one risk before "... and N more"."""
BACKUP_NAME = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)_(?P<day>\d{8})$")


class RiskView(BaseModel):
    """One risk of the register as the page, the CLI and the post-mortem show it."""

    id: str
    level: str
    description: str
    mitigation: str
    owner: str
    playbook: str | None
    measured: bool
    """Whether live evidence is computed for this risk (False: a risk the file added without a measure)."""
    materialised: bool
    evidence: list[str]
    systems: list[str]
    old_system: list[str] = []
    """What the measure found in the old (v1) systems themselves: their own defects, listed for the
    record but not counted as the migration's risk materialising (22 v1 systems failing their import
    check are the old code's bugs, not import errors in new code)."""


@dataclass(frozen=True)
class Evidence:
    materialised: bool
    sentences: list[str]
    systems: list[str] = field(default_factory=list)
    old_system: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """Everything the measures read, cut at ``as_of`` and restricted to the systems in scope."""

    as_of: dt.datetime
    facts: Facts
    verdicts: list[dict[str, Any]]
    """The newest verdict per system: system, ts, run_id, verdict, result (parsed JSON)."""
    v1_checks: pl.DataFrame
    v2_checks: pl.DataFrame
    """system, passed, checks (JSON text): the newest validation per system."""
    conversions: list[ConversionReport]
    backups: dict[str, list[dt.date]]
    failures: list[dict[str, Any]]
    """Failure documents up to ``as_of``: system, when (UTC), verified, file."""


# --------------------------------------------------------------------------- entry point


def risk_register(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    as_of: dt.datetime | None = None,
    *,
    systems: list[str] | None = None,
    catalog: RiskCatalog | None = None,
) -> list[RiskView]:
    """Every risk of the register with its evidence as of ``as_of`` (default now), high risks first.

    ``systems`` restricts the evidence to some systems (a post-mortem of one
    phase); the catalog defaults to the workspace's (see :mod:`engine.risks.catalog`).
    """
    catalog = catalog or load_catalog(ws)
    ctx = _context(con, ws, as_of, systems)
    out = []
    for risk in sorted(catalog.risks, key=lambda r: LEVEL_ORDER[r.level]):
        measure = MEASURES.get(risk.measure) if risk.measure else None
        found = measure(ctx) if measure else Evidence(False, ["No live evidence is computed for this risk."])
        out.append(_view(risk, measure is not None, found))
    return out


def _view(risk: Risk, measured: bool, found: Evidence) -> RiskView:
    return RiskView(
        id=risk.id,
        level=risk.level,
        description=risk.description,
        mitigation=risk.mitigation,
        owner=risk.owner,
        playbook=risk.playbook,
        measured=measured,
        materialised=found.materialised,
        evidence=found.sentences,
        systems=sorted(set(found.systems)),
        old_system=found.old_system,
    )


# --------------------------------------------------------------------------- reading


def _context(
    con: duckdb.DuckDBPyConnection, ws: Workspace, as_of: dt.datetime | None, systems: list[str] | None
) -> Context:
    facts = load_facts(con, ws, as_of)
    if systems is not None:
        facts = facts.restricted(systems)
    names = set(facts.systems["name"].to_list())
    cut = facts.as_of
    verdicts = [
        {**row, "result": json.loads(row["result"])}
        for row in _newest(
            con, "verdicts", "system, ts, run_id, verdict, CAST(result AS VARCHAR) AS result", cut
        )
        .filter(pl.col("system").is_in(names))
        .iter_rows(named=True)
    ]
    reports = [
        ConversionReport.model_validate(json.loads(text))
        for text in _newest(con, "conversions", "system, CAST(report AS VARCHAR) AS report", cut).filter(
            pl.col("system").is_in(names)
        )["report"]
    ]
    return Context(
        as_of=cut,
        facts=facts,
        verdicts=verdicts,
        v1_checks=_validations(con, "v1", cut).filter(pl.col("system").is_in(names)),
        v2_checks=_validations(con, "v2", cut).filter(pl.col("system").is_in(names)),
        conversions=reports,
        backups={k: v for k, v in _backups(ws.backups_dir).items() if k in names},
        failures=[d for d in _failure_documents(ws.failures_dir, cut) if d["system"] in names],
    )


_NEWEST_OF = {"verdicts", "conversions"}


def _newest(con: duckdb.DuckDBPyConnection, table: str, columns: str, as_of: dt.datetime) -> pl.DataFrame:
    """The newest row per system of ``verdicts`` or ``conversions`` recorded up to ``as_of``.

    ``table`` and ``columns`` are constants of this module (checked), never user input.
    """
    assert table in _NEWEST_OF, table
    return query_frame(
        con,
        f"""
        SELECT {columns} FROM (
            SELECT *, row_number() OVER (PARTITION BY system ORDER BY ts DESC, id DESC) AS rn
            FROM {table} WHERE ts <= ?
        ) WHERE rn = 1 ORDER BY system
        """,  # noqa: S608 - constant table and column names; the moment is a parameter
        [as_of],
    )


def _validations(con: duckdb.DuckDBPyConnection, version: str, as_of: dt.datetime) -> pl.DataFrame:
    """system, passed, checks: the newest v1 or v2 validation per system up to ``as_of``."""
    return query_frame(
        con,
        """
        SELECT system, passed, CAST(checks AS VARCHAR) AS checks FROM (
            SELECT *, row_number() OVER (PARTITION BY system ORDER BY ts DESC, id DESC) AS rn
            FROM validations WHERE blueprint_version = ? AND ts <= ?
        ) WHERE rn = 1 ORDER BY system
        """,
        [version, as_of],
    )


def _backups(folder: Path) -> dict[str, list[dt.date]]:
    """The days each system was backed up (``backups/<name>_<YYYYMMDD>``), oldest first."""
    out: dict[str, list[dt.date]] = {}
    if not folder.is_dir():
        return out
    for path in folder.iterdir():
        match = BACKUP_NAME.match(path.name)
        if not match or not path.is_dir():
            continue
        try:
            day = dt.datetime.strptime(match["day"], "%Y%m%d").date()
        except ValueError:
            continue
        out.setdefault(match["name"], []).append(day)
    return {k: sorted(v) for k, v in out.items()}


def _failure_documents(folder: Path, as_of: dt.datetime) -> list[dict[str, Any]]:
    """The rollback manager's failure documents written up to ``as_of``, oldest first.

    Their ``timestamp`` is local time without a zone (as the seed writes it);
    it is read as local time. A document that does not parse is still counted
    (by its file time), because its existence is the evidence.
    """
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            when = dt.datetime.fromisoformat(str(doc["timestamp"]))
            system, verified = str(doc.get("system", "")), doc.get("verified")
        except (OSError, ValueError, KeyError, TypeError):
            doc, system, verified = {}, path.stem.rsplit("_", 2)[0], None
            when = dt.datetime.fromtimestamp(path.stat().st_mtime)
        when = when.astimezone(dt.UTC) if when.tzinfo is None else when
        if when <= as_of:
            out.append({"system": system, "when": when, "verified": verified, "file": path.name})
    return sorted(out, key=lambda d: d["when"])


# --------------------------------------------------------------------------- wording helpers


def _when(ts: dt.datetime) -> str:
    return f"{ts:%Y-%m-%d %H:%M} UTC"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:EXAMPLES])
    return shown + (f" and {len(items) - EXAMPLES} more" if len(items) > EXAMPLES else "")


def _examples(lines: list[str]) -> list[str]:
    return lines[:EXAMPLES] + ([f"... and {len(lines) - EXAMPLES} more."] if len(lines) > EXAMPLES else [])


# --------------------------------------------------------------------------- verdict criteria

DEFAULT_POLICY = Policy()

PERFORMANCE = {
    # criterion: (label, direction, the seed's threshold from the policy)
    "latency_increase": ("latency change", "<=", DEFAULT_POLICY.rule.max_latency_increase),
    "throughput_change": ("throughput change", ">=", DEFAULT_POLICY.rule.min_throughput_change),
}
PERFORMANCE_TRIGGERS = ("latency_p95_ratio", "throughput_ratio")


def _criterion(result: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((c for c in result.get("criteria") or [] if c.get("name") == name), None)


def _fails(criterion: dict[str, Any], direction: str, default_threshold: float) -> bool:
    """Whether a criterion failed as the verdict saw it.

    A verdict records ``passed`` and ``conclusive``: a NO_GO rests on failures
    whose whole interval is on the bad side, so an unsure failure does not
    count here. A criterion recorded without them is compared with its threshold.
    """
    if isinstance(criterion.get("passed"), bool):
        return not criterion["passed"] and criterion.get("conclusive", True) is not False
    observed = criterion.get("observed")
    if observed is None:
        return False
    threshold = criterion.get("threshold", default_threshold)
    return observed > threshold if direction == "<=" else observed < threshold


# --------------------------------------------------------------------------- the measures


def performance_regression(ctx: Context) -> Evidence:
    """Systems whose newest verdict is NO_GO on latency or throughput (criterion or trigger)."""
    if not ctx.verdicts:
        return Evidence(False, ["No verdict yet: latency and throughput have not been measured."])
    lines, systems = [], []
    for v in ctx.verdicts:
        if v["verdict"] != "NO_GO":
            continue
        parts = []
        for name, (label, direction, default) in PERFORMANCE.items():
            c = _criterion(v["result"], name)
            if c is not None and _fails(c, direction, default):
                limit = c.get("threshold", default)
                parts.append(f"{label} {_pct(c.get('observed'))} (limit {direction} {_pct(limit)})")
        for t in v["result"].get("triggers") or []:
            if t.get("name") in PERFORMANCE_TRIGGERS and t.get("fired"):
                parts.append(f"trigger {t['name']} fired: {t.get('explanation') or t.get('observed')}")
        if parts:
            systems.append(v["system"])
            lines.append(
                f"{v['system']}: NO_GO on run {v['run_id']} ({_when(v['ts'])}): " + "; ".join(parts) + "."
            )
    judged = len(ctx.verdicts)
    if not systems:
        return Evidence(
            False,
            [
                f"None of the {judged} judged system(s) has a newest verdict of NO_GO "
                "on latency or throughput."
            ],
        )
    head = (
        f"{len(systems)} of {judged} judged system(s) have a newest verdict of NO_GO "
        "on latency or throughput."
    )
    return Evidence(True, [head, *_examples(lines)], systems)


def data_loss(ctx: Context) -> Evidence:
    """Unverified rollbacks (emergency), mismatched responses, deployed systems without a backup."""
    lines, systems = [], []
    moves = ctx.facts.transitions
    for row in moves.filter(pl.col("to_state") == State.EMERGENCY).iter_rows(named=True):
        after = moves.filter(
            (pl.col("system") == row["system"])
            & (pl.col("ts") > row["ts"])
            & (pl.col("from_state") == State.EMERGENCY)
        ).head(1)
        if after.height:
            minutes = (after["ts"][0] - row["ts"]).total_seconds() / 60
            outcome = f"restored by {after['actor'][0]} after {minutes:.0f} min"
        else:
            outcome = "still in emergency"
        reason = f" ({row['reason']})" if row["reason"] else ""
        lines.append(
            f"{row['system']}: at {_when(row['ts'])} a rollback could not verify the old version"
            f"{reason}; {outcome}."
        )
        systems.append(row["system"])
    limit = DEFAULT_POLICY.statistics.max_mismatch_rate
    for v in ctx.verdicts:
        c = _criterion(v["result"], "mismatch_rate")
        if c is None or not _fails(c, "<=", limit):
            continue
        detail = c.get("detail") or {}
        counted = ""
        if detail.get("compared"):
            counted = f" ({detail.get('mismatches', 0):.0f} of {detail['compared']:.0f} compared)"
        lines.append(
            f"{v['system']}: {c.get('observed', 0):.1%} of responses differed from the old version{counted} "
            f"on run {v['run_id']}, limit {c.get('threshold', limit):.1%}."
        )
        systems.append(v["system"])
    deployed = {str(s) for s in DEPLOYED_STATES | {State.EMERGENCY}}
    states = ctx.facts.state_at().filter(pl.col("state").is_in(deployed))
    day = ctx.as_of.date()
    missing = [
        (r["name"], r["state"])
        for r in states.iter_rows(named=True)
        if not any(d <= day for d in ctx.backups.get(r["name"], []))
    ]
    for name, state in missing:
        lines.append(f"{name} is {state} but has no backup under backups/ dated {day} or earlier.")
        systems.append(name)
    if not lines:
        backed = (
            f"every deployed system ({states.height}) has a backup"
            if states.height
            else "no system is deployed at the moment"
        )
        return Evidence(
            False,
            [
                "No rollback failed to verify the old version, no verdict found mismatched responses; "
                f"{backed}."
            ],
        )
    return Evidence(True, _examples(lines), systems)


def import_errors(ctx: Context) -> Evidence:
    """Import errors in the new code: systems failing the v2 gate, conversion errors.

    The v1 import checks that fail are the old code's own bugs (the seed's
    "fix known bugs first"): they are listed apart, as the old systems',
    and never make the risk materialise or name a system under it. So are a
    v1-broken system's gate failures where v2 answered as v1 did (no failed
    equivalence check) and its conversion errors (its calls to nothing): the
    migration carried the defect over unchanged, it did not make it.
    """
    lines: list[str] = []
    systems: list[str] = []
    v1_failed = []
    for row in ctx.v1_checks.iter_rows(named=True):
        failed = [c for c in json.loads(row["checks"]) if c.get("name") == "import" and not c.get("passed")]
        if failed:
            v1_failed.append(f"{row['system']}: {failed[0].get('message') or 'import failed'}")
    old_system = []
    if v1_failed:
        old_system.append(
            f"{len(v1_failed)} of {ctx.v1_checks.height} old (v1) system(s) fail their own import check: "
            "defects of the old code, known before the migration (fix them first), not caused by it."
        )
        old_system += [f"{s}." for s in v1_failed[:3]]
    broken_in_v1 = set(ctx.v1_checks.filter(~pl.col("passed"))["system"].to_list())
    v2_failed, carried = [], []
    for row in ctx.v2_checks.filter(~pl.col("passed")).iter_rows(named=True):
        names = sorted({c.get("name", "?") for c in json.loads(row["checks"]) if not c.get("passed")})
        if row["system"] in broken_in_v1 and "equivalence" not in names:
            carried.append(f"{row['system']} ({', '.join(names)})")  # v2 answers as the broken v1 does
            continue
        v2_failed.append(f"{row['system']} ({', '.join(names)})")
        systems.append(row["system"])
    if v2_failed:
        lines.append(
            f"{len(v2_failed)} of {ctx.v2_checks.height} converted system(s) fail the v2 gate: "
            f"{_names(v2_failed)}."
        )
    conv_errors = [
        (r.system, d.message)
        for r in ctx.conversions
        for d in r.decisions
        if d.severity == "error" and r.system not in broken_in_v1  # a call to nothing in a broken v1: its own
    ]
    if conv_errors:
        lines.append(
            f"{len(conv_errors)} conversion error(s): "
            + "; ".join(f"{s}: {m}" for s, m in conv_errors[:3])
            + (f" and {len(conv_errors) - 3} more" if len(conv_errors) > 3 else "")
            + "."
        )
        systems += [s for s, _ in conv_errors]
    if carried:
        old_system.append(
            f"{len(carried)} converted system(s) fail the v2 gate as they fail in v1, answering as the old "
            f"code does (its defects carried over unchanged, not caused by the migration): {_names(carried)}."
        )
    if not lines:
        if ctx.v2_checks.height == 0 and not ctx.conversions:
            return Evidence(
                False, ["No system converted and validated yet: no new code to check."], [], old_system
            )
        return Evidence(
            False,
            [
                f"No converted system fails the v2 gate ({ctx.v2_checks.height} validated) "
                "and no conversion reported an error."
            ],
            [],
            old_system,
        )
    return Evidence(True, lines, systems, old_system)


def knowledge_gap(ctx: Context) -> Evidence:
    """Components kept as their v1 code (hosted), or defaulted to Transformer for want of a recipe."""
    if not ctx.conversions:
        return Evidence(False, ["No system converted yet: no recipe mapping to learn from."])
    found = []
    for report in ctx.conversions:
        hosted = [d.component for d in report.decisions if d.kind == "hosted"]
        defaulted = [d for d in report.decisions if d.kind == "defaulted"]
        if hosted or defaulted:
            found.append((report.system, hosted, sorted({d.message.split(" -> ")[0] for d in defaulted})))
    if not found:
        return Evidence(
            False,
            [
                f"Every component of the {len(ctx.conversions)} converted system(s) "
                "is a recipe shown to answer as its v1 code did."
            ],
        )
    hosted_total = sum(len(h) for _, h, _ in found)
    types = sorted({t for _, _, ts in found for t in ts})
    head = (
        f"{hosted_total} component(s) in {len(found)} of {len(ctx.conversions)} converted system(s) run "
        "their v1 code as it is (hosted): the team keeps that code and has to know what it does"
    )
    if types:
        head += (
            f"; components of type {', '.join(types)} had no code and no recipe (defaulted to Transformer)"
        )
    lines = [
        f"{s}: "
        + "; ".join(
            part
            for part in (
                f"{len(h)} hosted ({', '.join(str(c) for c in h)})" if h else "",
                f"defaulted ({', '.join(ts)})" if ts else "",
            )
            if part
        )
        + "."
        for s, h, ts in found
    ]
    return Evidence(True, [head + ".", *_examples(lines)], [s for s, _, _ in found])


def rollback_complexity(ctx: Context) -> Evidence:
    """Rollbacks against the seed's target, those that needed a person, and the failure documents."""
    moves = ctx.facts.transitions
    rollbacks = moves.filter(pl.col("to_state") == State.ROLLED_BACK)
    docs = ctx.failures
    if rollbacks.height == 0 and not docs:
        return Evidence(False, ["No rollback yet."])
    rolled = rollbacks["system"].unique(maintain_order=True).to_list()
    lines = [
        f"{rollbacks.height} rollback(s) so far (the seed's target: fewer than {ROLLBACK_TARGET})"
        + (f": {_names(rolled)}." if rolled else ".")
    ]
    hard = rollbacks.filter(pl.col("from_state") == State.EMERGENCY)
    systems = hard["system"].to_list()
    if hard.height:
        lines.append(
            f"{hard.height} needed a person after the automated rollback could not verify the old version: "
            + _names([f"{r['system']} (restored by {r['actor']})" for r in hard.iter_rows(named=True)])
            + "."
        )
    else:
        lines.append("Every rollback verified the old version without help.")
    if docs:
        unverified = [d for d in docs if d["verified"] is False]
        lines.append(
            f"{len(docs)} failure document(s) under migration/failures"
            + (f"; {len(unverified)} record(s) a verification that failed." if unverified else ".")
        )
        systems += [d["system"] for d in unverified]
    materialised = bool(systems) or rollbacks.height >= ROLLBACK_TARGET
    if rollbacks.height >= ROLLBACK_TARGET:
        systems += rolled
    return Evidence(materialised, lines, systems)


MEASURES: dict[str, Callable[[Context], Evidence]] = {
    "data_loss": data_loss,
    "performance_regression": performance_regression,
    "import_errors": import_errors,
    "knowledge_gap": knowledge_gap,
    "rollback_complexity": rollback_complexity,
}
