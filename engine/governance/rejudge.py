"""Judge a finished parallel run again under another policy, without sending any traffic.

Kayenta users re-run canary analysis with new thresholds to learn whether a
past decision was close; Switchyard keeps the samples of every run, so the
same evidence can be weighed under edited thresholds, another confidence
level or another minimum sample size. The re-judgement is a what-if: it is
recorded (``verdict:rejudged``, with both policies) and shown beside the
original, but it does not replace the verdict that Promote acts on; to act
on other thresholds, change the policy file and judge the system again.
"""

from __future__ import annotations

import json
import math
from typing import Any

import duckdb
import polars as pl
from pydantic import BaseModel, ValidationError

from engine.errors import InputError, NotFoundError
from engine.judge.policy import Policy
from engine.judge.verdict import Verdict, judge_samples
from engine.judging import run_chain
from engine.store import deployments as runs_store
from engine.store.db import query_frame
from engine.store.events import append_events
from engine.store.samples import read_run_samples
from engine.workspace import Workspace

REJUDGED = "verdict:rejudged"


class Change(BaseModel):
    """One thing that differs between the original and the re-judgement."""

    what: str
    before: Any
    after: Any


class Rejudgement(BaseModel):
    system: str
    run_id: str
    original_id: int
    original: Verdict
    rejudged: Verdict
    policy_changes: list[Change]
    outcome_changes: list[Change]


def apply_overrides(policy: Policy, overrides: dict[str, str | float | int]) -> Policy:
    """``{"rule.max_latency_increase": 0.2}`` applied to ``policy``; a bad key or value is an InputError."""
    data = policy.model_dump()
    for key, value in overrides.items():
        section, _, field = key.partition(".")
        if section not in data or not isinstance(data[section], dict) or field not in data[section]:
            known = ", ".join(f"{s}.{f}" for s, fields in data.items() for f in fields)
            raise InputError("--set", key, f"a policy setting: one of {known}", key)
        data[section][field] = value
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError("--set", where, first["msg"], str(first.get("input"))) from None


def original_verdict(con: duckdb.DuckDBPyConnection, system: str, run_id: str | None) -> dict[str, Any]:
    """The newest recorded verdict on ``run_id`` (default: the newest verdict of the system)."""
    where, params = "system = ?", [system]
    if run_id is not None:
        where, params = "system = ? AND run_id = ?", [system, run_id]
    frame = query_frame(
        con,
        f"SELECT id, run_id, result FROM verdicts WHERE {where} ORDER BY ts DESC, id DESC LIMIT 1",  # noqa: S608
        params,
    )
    if frame.height == 0:
        run = f" on run {run_id}" if run_id else ""
        raise NotFoundError(f"{system}: no recorded verdict{run} to judge again (judge the run first)")
    row = frame.row(0, named=True)
    return {"id": int(row["id"]), "run_id": row["run_id"], "result": json.loads(row["result"])}


def _observed(verdict: Verdict, kind: str, name: str) -> float | None:
    items = verdict.criteria if kind == "criterion" else verdict.triggers
    found = next((c for c in items if c.name == name), None)
    value = found.observed if found else None
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def rejudge(
    ws: Workspace, con: duckdb.DuckDBPyConnection, system: str, run_id: str | None, policy: Policy
) -> Rejudgement:
    """Weigh the stored samples of the run under ``policy`` and compare with the original verdict."""
    row = original_verdict(con, system, run_id)
    original = Verdict.model_validate(row["result"])
    run = runs_store.get_run(con, row["run_id"])
    bucket_s = float(run["bucket_s"]) if run else None
    chain = [r["id"] for r in run_chain(con, run)] if run else [row["run_id"]]  # as the verdict weighed it
    samples = read_run_samples(ws, system, chain)
    if samples.height == 0:
        raise NotFoundError(f"{system}: the samples of run {row['run_id']} are gone; nothing to judge again")
    health = _observed(original, "trigger", "failed_health_checks")
    rejudged = judge_samples(
        samples,
        policy,
        # what was measured then, not now: the same evidence under other rules
        validation_success_rate=_observed(original, "criterion", "validation_success_rate"),
        failed_health_checks=int(health) if health is not None else None,
        bucket_s=bucket_s,
        calibration=original.calibration,
    )
    return Rejudgement(
        system=system,
        run_id=row["run_id"],
        original_id=row["id"],
        original=original,
        rejudged=rejudged,
        policy_changes=_diff(original.policy.model_dump(), rejudged.policy.model_dump()),
        outcome_changes=_outcome_changes(original, rejudged),
    )


def _diff(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[Change]:
    out = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(Change(what=f"{prefix}{key}", before=a, after=b))
    return out


def _outcome_changes(original: Verdict, rejudged: Verdict) -> list[Change]:
    out = []
    if original.verdict != rejudged.verdict:
        out.append(Change(what="verdict", before=original.verdict, after=rejudged.verdict))
    before = {c.name: c for c in original.criteria}
    for c in rejudged.criteria:
        old = before.get(c.name)
        if old is None:
            continue
        for field in ("passed", "conclusive", "threshold"):
            if getattr(old, field) != getattr(c, field):
                out.append(
                    Change(what=f"{c.name}.{field}", before=getattr(old, field), after=getattr(c, field))
                )
    return out


def record(con: duckdb.DuckDBPyConnection, result: Rejudgement, *, actor: str, reason: str) -> None:
    """The re-judgement in the audit log: the original's id and verdict before, the new verdict after."""
    append_events(
        con,
        [
            {
                "actor": actor,
                "system": result.system,
                "action": REJUDGED,
                "reason": reason.strip() or "judged again under another policy",
                "before": {"verdict_id": result.original_id, "verdict": result.original.verdict},
                "after": {
                    "run_id": result.run_id,
                    "verdict": result.rejudged.verdict,
                    "reasons": result.rejudged.reasons,
                    "policy_changes": [c.model_dump() for c in result.policy_changes],
                    "outcome_changes": [c.model_dump() for c in result.outcome_changes],
                    "policy": result.rejudged.policy.model_dump(),
                },
            }
        ],
    )


def _changes_text(changes: list[dict[str, Any]]) -> str:
    return "; ".join(f"{c['what']} {c['before']} → {c['after']}" for c in changes) or "nothing"


def history(events: pl.DataFrame, run_id: str | None = None) -> pl.DataFrame:
    """Recorded re-judgements (``verdict:rejudged`` events) as one row each, the original beside the
    re-judged verdict with what was edited and what it changed; only ``run_id``'s when given.

    Read back from the audit log, so a re-judgement made from the CLI or in
    another session shows on the page too, not only right after its click.
    """
    rows = []
    for e in events.iter_rows(named=True):
        before, after = json.loads(e["before"] or "{}"), json.loads(e["after"] or "{}")
        if run_id is not None and after.get("run_id") != run_id:
            continue
        rows.append(
            {
                "when": e["ts"],
                "by": e["actor"],
                "reason": e["reason"],
                "run_id": after.get("run_id"),
                "original": before.get("verdict"),
                "re_judged": after.get("verdict"),
                "policy_edited": _changes_text(after.get("policy_changes", [])),
                "outcome_changed": _changes_text(
                    [c for c in after.get("outcome_changes", []) if c["what"] != "verdict"]
                ),
            }
        )
    schema = {
        "when": pl.Datetime("us", "UTC"),
        "by": pl.String,
        "reason": pl.String,
        "run_id": pl.String,
        "original": pl.String,
        "re_judged": pl.String,
        "policy_edited": pl.String,
        "outcome_changed": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)
