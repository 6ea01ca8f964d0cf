"""engine.next_step: each verdict and state says what to do next, and never offers what cannot act."""

from __future__ import annotations

from typing import Any

import pytest

from engine.next_step import minutes_to_decide, next_step


def verdict(name: str, reasons: list[str], **result: Any) -> dict[str, Any]:
    return {"verdict": name, "run_id": "parallel-1", "result": {"reasons": reasons, **result}}


RUN = {"id": "parallel-1", "rps": 50.0, "chain_seconds": 120.0}


def test_go_promotes_with_a_reason_prefilled_and_offers_roll_back_beside_it() -> None:
    step = next_step("judged", verdict=verdict("GO", ["passes: ..."]), run=RUN)
    assert step.primary is not None and step.primary.kind == "promote" and step.primary.enabled
    assert step.primary.reason == "GO on run parallel-1"
    assert step.action("rollback") is not None and not step.action("rollback").primary
    assert step.sentence.startswith("GO:")


def test_go_waiting_for_a_second_operator_has_no_primary_promote() -> None:
    step = next_step("judged", verdict=verdict("GO", []), run=RUN, approval_missing=True)
    promote = step.action("promote")
    assert promote is not None and not promote.primary and not promote.enabled
    assert "approval" in promote.why_not and "approval" in step.sentence
    assert step.primary is None


def test_no_go_rolls_back_with_its_failing_reason_and_cannot_promote() -> None:
    reasons = ["fails: response mismatch rate 12.0% [9.0%, 15.0%] is outside the limit <= 10.0%"]
    criteria = [
        {"name": "mismatch_rate", "conclusive": True, "passed": False},
        {"name": "latency_increase", "conclusive": True, "passed": True},
    ]
    step = next_step("judged", verdict=verdict("NO_GO", reasons, criteria=criteria), run=RUN)
    assert step.sentence == "NO_GO: Responses that differ fails its limit. Roll back."
    assert step.primary is not None and step.primary.kind == "rollback"
    assert step.primary.reason.startswith("NO_GO verdict: response mismatch rate 12.0%")
    promote = step.action("promote")
    assert promote is not None and not promote.enabled and not promote.primary


def test_inconclusive_runs_as_many_more_minutes_as_the_judge_estimates() -> None:
    estimate = [  # samples per version; at the run's 50 req/s: 150 s and 40 s
        {"criterion": "latency_increase", "more_samples": 7500, "more_seconds": 400.0, "explanation": "p50"},
        {"criterion": "throughput_change", "more_samples": 2000, "more_seconds": 99.0, "explanation": "tp"},
        {"criterion": "drift", "more_samples": None, "more_seconds": None, "explanation": "never"},
    ]
    step = next_step("judged", verdict=verdict("INCONCLUSIVE", ["unsure: x"], to_decide=estimate), run=RUN)
    assert step.primary is not None and step.primary.kind == "extend"
    assert step.primary.minutes == 3 and step.primary.label == "Run 3 more minutes"  # the longest: 150 s
    minutes, said = minutes_to_decide({"to_decide": estimate})
    assert minutes == 7  # no rate: the judge's seconds
    assert said == [
        "Latency change needs about 7,500 more samples per version",
        "Throughput change needs about 2,000 more samples per version",
        "Drift: never",
    ]
    assert step.sentence.startswith("INCONCLUSIVE: about 3 more minutes at 50 req/s would decide it")
    assert "(Latency change needs about 7,500 more samples per version;" in step.sentence
    assert "min" not in step.sentence.split("(", 1)[1]  # no second duration beside the 3 minutes
    assert step.action("rollback").reason == "inconclusive after 2.0 min"


def test_inconclusive_without_an_estimate_runs_longer_and_invents_no_number() -> None:
    step = next_step("judged", verdict=verdict("INCONCLUSIVE", ["unsure: p50 latency change"]), run=RUN)
    assert step.primary is not None and step.primary.kind == "extend"
    assert step.primary.minutes is None and step.primary.label == "Run longer"
    assert minutes_to_decide({"to_decide": []}) == (None, [])


@pytest.mark.parametrize(
    ("state", "primary"),
    [
        ("validated", "checklist"),
        ("ready", "deploy"),
        ("green_deployed", "start_run"),
        ("emergency", "rollback"),
        ("rolled_back", None),
        ("done", None),
    ],
)
def test_every_state_has_its_next_step(state: str, primary: str | None) -> None:
    step = next_step(state, last_reason="team decision")
    assert (step.primary.kind if step.primary else None) == primary
    assert step.sentence


def test_a_rolled_back_system_says_why_and_how_to_try_again() -> None:
    step = next_step("rolled_back", last_reason="inconclusive after 2.0 min")
    assert "(inconclusive after 2.0 min)" in step.sentence and "convert and validate again" in step.sentence


def test_a_run_in_progress_is_waited_for_or_stopped_not_judged() -> None:
    step = next_step("parallel_run", run=RUN, run_in_progress=True)
    assert step.primary is None and step.action("stop_run") is not None
    ended = next_step("parallel_run", run=RUN)
    assert ended.primary is not None and ended.primary.kind == "judge"


def test_a_hold_disables_every_action_and_says_whose_hold() -> None:
    step = next_step("judged", verdict=verdict("GO", []), run=RUN, held_by="dba-team", hold_reason="schema")
    assert step.primary is None and not any(a.enabled for a in step.actions)
    assert step.sentence.startswith("On hold by dba-team: schema.")
    assert all("release the hold" in a.why_not for a in step.actions)
