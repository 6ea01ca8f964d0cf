"""Long operations started from a page: the server's job registry, and what a finished job says.

A job (deploy, parallel run, promote, roll back) runs in a worker thread of
the engine (:mod:`engine.jobs`) while the page keeps drawing; the page that
started it remembers which of its areas the click came from, so the outcome
is shown there, beside the button, and as a toast, not at the top of a long page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from engine.deploy.strategies import DeployOutcome, PromoteOutcome
from engine.jobs import Job, JobRegistry
from engine.migration import RunResult
from engine.rollback.manager import RollbackOutcome
from pages._shared import say


@st.cache_resource
def registry() -> JobRegistry:
    """One job registry per server: jobs outlive page reruns and browser sessions."""
    return JobRegistry()


def start(kind: str, system: str, actor: str, area: str, work: Callable[[Any], Any]) -> Job | None:
    """Start ``work(progress)`` as a job of ``system``; its outcome will be said in ``area``."""
    try:
        job = registry().start(kind, system, actor, work)
    except Exception as exc:  # noqa: BLE001 - the registry refuses a second job of the same system
        say(area, False, str(exc))
        return None
    st.session_state[f"job-area-{job.id}"] = area
    say(area, True, f"{kind.capitalize()} started.", later=True)
    return job


def area_of(job: Job) -> str | None:
    return st.session_state.get(f"job-area-{job.id}")


def summary(job: Job) -> tuple[bool, str]:
    """(went well, one sentence) for a finished job: what happened, in the words of its result."""
    if job.status == "failed":
        return False, f"{job.kind.capitalize()} refused: {job.error}"
    result = job.result
    if isinstance(result, RunResult):
        if result.rollback is not None:
            return False, f"Run {result.run_id} {result.status}: {result.not_judged}"
        if result.verdict is not None:
            more = f", continuing {result.continues}" if result.continues else ""
            return True, f"Run {result.run_id} {result.status}{more}: verdict {result.verdict.verdict}."
        return result.status == "completed", f"Run {result.run_id} {result.status}: {result.not_judged}"
    if isinstance(result, DeployOutcome):
        if result.promotion is not None:
            return _promoted(result.promotion)
        return True, f"Green deployed beside blue ({result.strategy}): {result.system} is {result.state}."
    if isinstance(result, PromoteOutcome):
        return _promoted(result)
    if isinstance(result, RollbackOutcome):
        return _rolled_back(result)
    return True, f"{job.kind.capitalize()} done."


def _promoted(out: PromoteOutcome) -> tuple[bool, str]:
    if out.promoted:
        return True, f"Promoted: {out.system} is {out.state}, the new version serves all traffic."
    why = out.rollback.reason if out.rollback else "see the audit log"
    return False, f"Not promoted: {why}; {out.system} is {out.state}."


def _rolled_back(out: RollbackOutcome) -> tuple[bool, str]:
    if out.verified:
        return True, f"Rolled back: the old version serves {out.system} again and answered as before."
    return False, f"EMERGENCY: the old version did not answer as before: {'; '.join(out.problems)}"
