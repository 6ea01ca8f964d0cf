"""What to do next with one system: one sentence, and the actions that can act now, one of them primary.

A verdict alone leaves a lead asking "so what now?": an INCONCLUSIVE verdict
said nothing about running longer, a NO_GO offered no reason to roll back
with, and a red Promote button stood enabled before any verdict. This is the
answer in one place, a pure function of what the store says (state, the
newest verdict, the run, a hold, approvals, the fast-rollback window), so the
Go / No-Go page and the CLI (``status``) say the same, and it is tested
without a page.

Rules (an action that cannot act now is never primary; it is listed disabled
with why, or not at all):

* GO: promote (primary; reason prefilled), roll back as the other choice; with
  the policy's four-eyes rule and no approval by someone else, promote waits;
* NO_GO: roll back (primary; the first failing reason prefilled);
* INCONCLUSIVE: "Run N more minutes" (primary) with N from the judge's
  estimate of the samples that would decide it (``to_decide``), when the
  verdict carries one; roll back as the other choice ("inconclusive after
  N minutes");
* before and after the verdict, the step the state machine allows next.

Whether an action can act now is :func:`engine.state.available_actions` (the
rule the use cases check): one it leaves out is listed disabled, with the
hold as its reason when a hold is what stops it.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any, Literal

from pydantic import BaseModel, Field

from engine import units
from engine.judge import present
from engine.state import HOLD_FREEZES, State, available_actions

ActionKind = Literal["checklist", "deploy", "start_run", "stop_run", "judge", "extend", "promote", "rollback"]


class Action(BaseModel):
    """One thing a lead can do now (or could, but for ``why_not``)."""

    kind: ActionKind
    label: str
    primary: bool = False
    enabled: bool = True
    why_not: str = ""
    reason: str = Field("", description="A reason to prefill (promote, roll back), editable.")
    minutes: int | None = Field(None, description="extend: how long to run, from the judge's estimate.")


class NextStep(BaseModel):
    sentence: str
    actions: list[Action] = Field(default_factory=list)
    available: list[str] = Field(
        default_factory=list, description="What the system allows now (engine.state.available_actions)."
    )
    held_by: str | None = Field(None, description="Whose hold stops what moves traffic, if any.")

    @property
    def primary(self) -> Action | None:
        return next((a for a in self.actions if a.primary), None)

    def action(self, kind: str) -> Action | None:
        return next((a for a in self.actions if a.kind == kind), None)

    def can(self, kind: str) -> bool:
        """Whether ``kind`` (an :class:`engine.state.Action`) can act now, suggested or not."""
        return kind in self.available

    def why_not(self, kind: str, otherwise: str) -> str:
        """Why ``kind`` cannot act now: the hold where that is what stops it, else ``otherwise``."""
        if self.held_by is not None and kind in HOLD_FREEZES:
            return f"on hold ({self.held_by}): release the hold first"
        return otherwise


def _no_promote() -> Action:
    return Action(kind="promote", label="Promote", enabled=False, why_not="only a GO verdict can be promoted")


def minutes_to_decide(result: dict[str, Any], rps: float | None = None) -> tuple[int | None, list[str]]:
    """Minutes more the judge estimates would decide an INCONCLUSIVE verdict, and its explanations.

    ``to_decide`` lists, per unsure criterion, the samples per version (and
    seconds at the judged samples' rate) more that would decide it, None where
    more samples cannot. The run needs the longest of the decidable ones. A run
    that adds samples does so at its own rate, ``rps``: minutes are samples over
    that rate when known (a verdict on runs read together spans the gap between
    them, which the judge's seconds would count), else the judge's seconds.
    None when the verdict carries no estimate.
    """
    estimates = result.get("to_decide") or []
    seconds = []
    for e in estimates:
        if e.get("more_samples") is not None and rps:
            seconds.append(float(e["more_samples"]) / rps)
        elif e.get("more_seconds") is not None:
            seconds.append(float(e["more_seconds"]))
    said = [_needs(e) for e in estimates]
    finite = [s for s in seconds if math.isfinite(s) and s > 0]
    if not finite:
        return None, said
    return max(1, math.ceil(max(finite) / 60)), said


def _needs(estimate: dict[str, Any]) -> str:
    """What one unsure criterion needs, by its label and in samples per version only: the judge's own
    explanation also gives minutes at the judged samples' rate, which need not be the rate the run
    would continue at, and read beside the sentence's minutes as a contradiction ("3 min (~2 min)")."""
    name = present.label({"name": estimate.get("criterion", "")})
    if estimate.get("more_samples") is not None:
        return f"{name} needs about {int(estimate['more_samples']):,} more samples per version"
    return f"{name}: {estimate.get('explanation') or 'more samples would not decide it'}"


def _first(reasons: list[str], prefix: str) -> str:
    text = next((r for r in reasons if r.startswith(prefix)), reasons[0] if reasons else "")
    return text.removeprefix(prefix).strip()


def next_step(
    state: str,
    *,
    verdict: dict[str, Any] | None = None,
    run: dict[str, Any] | None = None,
    held_by: str | None = None,
    hold_reason: str = "",
    approval_missing: bool = False,
    warm_seconds: float | None = None,
    last_reason: str = "",
    run_in_progress: bool = False,
    available: Collection[str] | None = None,
) -> NextStep:
    """The next step for a system in ``state`` (see the module docstring).

    ``verdict``: the newest verdict row (``verdict``, ``run_id``, ``result``) of
    the shown run, or None; ``run``: that run (``rps``, ``chain_seconds``);
    ``approval_missing``: the policy wants a second operator's approval and
    nobody but the viewer gave it; ``last_reason``: why the system reached its
    state (a rollback's reason); ``run_in_progress``: a run is collecting samples;
    ``available``: the system's available actions as the store says them
    (:func:`engine.migration.available_now`), else worked out from the above.
    """
    if available is None:
        available = available_actions(
            state,
            held_by is not None,
            verdict=(verdict or {}).get("verdict"),
            run_in_progress=run_in_progress,
            warm=bool(warm_seconds),
        )
    step = _step(state, verdict, run, approval_missing, warm_seconds, last_reason, run_in_progress)
    step.available, step.held_by = sorted(str(a) for a in available), held_by
    for action in step.actions:
        if action.enabled and not step.can(action.kind):
            action.enabled, action.primary = False, False
            action.why_not = step.why_not(action.kind, f"not while {state}")
    if held_by is not None:
        step.sentence = (
            f"On hold by {held_by}: {hold_reason}. Nothing moves until the hold is released (below)."
        )
    return step


def _step(
    state: str,
    verdict: dict[str, Any] | None,
    run: dict[str, Any] | None,
    approval_missing: bool,
    warm_seconds: float | None,
    last_reason: str,
    run_in_progress: bool,
) -> NextStep:
    rollback = Action(kind="rollback", label="Roll back")
    if state == State.VALIDATION_FAILED:
        return NextStep(sentence="The v2 gate failed: fix it, convert and validate again (Validation page).")
    if state in (State.INVENTORIED, State.CONVERTED):
        return NextStep(sentence="Convert and validate it first (Conversion and Validation pages).")
    if state == State.VALIDATED:
        return NextStep(
            sentence="Validated: run the pre-migration checklist, with the team's acknowledgement (below).",
            actions=[Action(kind="checklist", label="Run checklist", primary=True)],
        )
    if state == State.READY:
        return NextStep(
            sentence="The checklist is complete: deploy green beside blue (below).",
            actions=[Action(kind="deploy", label="Deploy", primary=True)],
        )
    if state == State.GREEN_DEPLOYED:
        return NextStep(
            sentence="Green runs beside blue: start a parallel run to collect evidence (below).",
            actions=[Action(kind="start_run", label="Start parallel run", primary=True), rollback],
        )
    if state == State.PARALLEL_RUN and run_in_progress:
        return NextStep(
            sentence="A parallel run is collecting evidence: its verdict is recorded when it ends.",
            actions=[Action(kind="stop_run", label="Stop the run"), rollback],
        )
    if state == State.PARALLEL_RUN:
        return NextStep(
            sentence="The run has ended without a verdict: judge it.",
            actions=[Action(kind="judge", label="Judge this run", primary=True), rollback],
        )
    if state == State.JUDGED and verdict is not None:
        return _after_verdict(verdict, run, approval_missing)
    if state in (State.PROMOTED, State.MONITORING):
        return NextStep(
            sentence="Promotion under way: green serves all traffic while the monitor window watches it.",
            actions=[rollback],
        )
    if state == State.DONE and warm_seconds:
        return NextStep(
            sentence=f"Migrated. The old version is kept warm {units.duration(warm_seconds)} more: "
            "until then a rollback is a traffic switch.",
            actions=[rollback],
        )
    if state == State.DONE:
        return NextStep(sentence="Migrated: the old version is decommissioned. Nothing left to do here.")
    if state == State.ROLLED_BACK:
        why = f" ({last_reason})" if last_reason else ""
        return NextStep(
            sentence=f"Rolled back{why}. For a new attempt, fix what failed, then convert and validate "
            "again (Conversion page)."
        )
    if state == State.EMERGENCY:
        return NextStep(
            sentence="EMERGENCY: the old version could not be verified. Restore it by hand from the newest "
            "backup, then roll back again to record it.",
            actions=[Action(kind="rollback", label="Roll back", primary=True, reason="restored by hand")],
        )
    return NextStep(sentence=f"{state}: nothing to decide here.")


def _after_verdict(verdict: dict[str, Any], run: dict[str, Any] | None, approval_missing: bool) -> NextStep:
    result = verdict.get("result") or {}
    reasons = [str(r) for r in result.get("reasons") or []]
    name = verdict.get("verdict")
    run_id = verdict.get("run_id", "")
    if name == "GO":
        promote = Action(kind="promote", label="Promote", primary=True, reason=f"GO on run {run_id}")
        sentence = "GO: every criterion passes with its whole interval on the good side. Promote."
        if approval_missing:
            promote.primary, promote.enabled = False, False
            promote.why_not = "the policy needs a second operator's approval of this verdict first"
            sentence = "GO, but the policy needs a second operator's approval before promoting (below)."
        return NextStep(sentence=sentence, actions=[promote, Action(kind="rollback", label="Roll back")])
    if name == "NO_GO":
        why = _first(reasons, "fails:") or _first(reasons, "trigger")
        failing = [present.label(c) for c in result.get("criteria") or [] if present.status(c) == "fail"]
        if failing:  # by name: the page lists the reasons with their figures right under the sentence
            fail = "fails its limit" if len(failing) == 1 else "fail their limits"
            sentence = f"NO_GO: {', '.join(failing)} {fail}. Roll back."
        else:
            sentence = f"NO_GO: {why}. Roll back." if why else "NO_GO. Roll back."
        return NextStep(
            sentence=sentence,
            actions=[
                Action(
                    kind="rollback",
                    label="Roll back",
                    primary=True,
                    reason=f"NO_GO verdict: {why}" if why else "NO_GO verdict",
                ),
                _no_promote(),
            ],
        )
    seconds = float((run or {}).get("chain_seconds") or 0)
    after = f"inconclusive after {units.duration(seconds)}" if seconds else "inconclusive"
    rate = float((run or {}).get("rps") or 0) or None
    minutes, said = minutes_to_decide(result, rate)
    unsure = _first(reasons, "unsure:") or _first(reasons, "too few samples:")
    if minutes is not None:
        at = f" at {units.count(rate)} req/s" if rate else ""
        plural = "s" if minutes != 1 else ""
        sentence = (
            f"INCONCLUSIVE: about {minutes} more minute{plural}{at} would decide it, if the estimates hold"
        )
        sentence += f" ({'; '.join(said)})." if said else "."
        extend = Action(
            kind="extend",
            label=f"Run {minutes} more minute{plural}",
            primary=True,
            minutes=minutes,
        )
    else:
        sentence = (
            f"INCONCLUSIVE: {unsure}. More samples narrow the intervals: run longer, or roll back."
            if unsure
            else "INCONCLUSIVE: run longer, or roll back."
        )
        extend = Action(kind="extend", label="Run longer", primary=True)
    return NextStep(
        sentence=sentence,
        actions=[
            extend,
            Action(kind="rollback", label="Roll back", reason=after),
            _no_promote(),
        ],
    )
