"""The state machine of one system, in one place.

::

    inventoried -> converted -> validated | validation_failed -> ready
      -> green_deployed -> parallel_run -> judged -> promoted -> monitoring -> done
    any deployed state -> rolled_back, or emergency when the rollback cannot verify the old version
    done -> rolled_back while the old version is still kept warm (the fast-rollback window)

A failed validation stops before deployment; a system can be converted again
after a fix. Transitions are carried out by :func:`engine.store.systems.transition`,
which checks them against :data:`TRANSITIONS`, bumps the version and writes the
audit event in one transaction.

Which use case may start in which state is :func:`available_actions`: every use
case checks it before it changes anything, and ``status``, the Go / No-Go page
and the CLI show what can be done next from it. No other module compares a
state to a string (tests/test_state_rules.py).
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    INVENTORIED = "inventoried"
    CONVERTED = "converted"
    VALIDATED = "validated"
    VALIDATION_FAILED = "validation_failed"
    READY = "ready"
    GREEN_DEPLOYED = "green_deployed"
    PARALLEL_RUN = "parallel_run"
    JUDGED = "judged"
    PROMOTED = "promoted"
    MONITORING = "monitoring"
    DONE = "done"
    ROLLED_BACK = "rolled_back"
    EMERGENCY = "emergency"


DEPLOYED_STATES = frozenset(
    {State.GREEN_DEPLOYED, State.PARALLEL_RUN, State.JUDGED, State.PROMOTED, State.MONITORING}
)

TRANSITIONS: dict[State, frozenset[State]] = {
    State.INVENTORIED: frozenset({State.CONVERTED}),
    State.CONVERTED: frozenset({State.CONVERTED, State.VALIDATED, State.VALIDATION_FAILED}),
    State.VALIDATED: frozenset({State.CONVERTED, State.VALIDATED, State.VALIDATION_FAILED, State.READY}),
    State.VALIDATION_FAILED: frozenset({State.CONVERTED, State.VALIDATED, State.VALIDATION_FAILED}),
    State.READY: frozenset({State.CONVERTED, State.GREEN_DEPLOYED}),
    State.GREEN_DEPLOYED: frozenset({State.PARALLEL_RUN, State.PROMOTED, State.ROLLED_BACK, State.EMERGENCY}),
    # back to green_deployed when a run is stopped or interrupted before it finished
    State.PARALLEL_RUN: frozenset({State.JUDGED, State.GREEN_DEPLOYED, State.ROLLED_BACK, State.EMERGENCY}),
    State.JUDGED: frozenset(
        {State.PARALLEL_RUN, State.JUDGED, State.PROMOTED, State.ROLLED_BACK, State.EMERGENCY}
    ),
    State.PROMOTED: frozenset({State.MONITORING, State.ROLLED_BACK, State.EMERGENCY}),
    State.MONITORING: frozenset({State.DONE, State.ROLLED_BACK, State.EMERGENCY}),
    # only while the old version is kept warm after promotion (engine.deploy.warm): a traffic switch
    State.DONE: frozenset({State.ROLLED_BACK, State.EMERGENCY}),
    State.ROLLED_BACK: frozenset({State.CONVERTED}),
    # a person restored the old version by hand (or a retried rollback verified it)
    State.EMERGENCY: frozenset({State.ROLLED_BACK}),
}

ROLLBACK_STATES = DEPLOYED_STATES | {State.EMERGENCY}
"""States a rollback can start from: something of the new version may be serving."""

CONVERTIBLE_STATES = frozenset(
    {
        State.INVENTORIED,
        State.CONVERTED,
        State.VALIDATED,
        State.VALIDATION_FAILED,
        State.READY,
        State.ROLLED_BACK,
    }
)
"""States from which a system may be (re)converted: nothing of it is deployed."""

VALIDATABLE_STATES = frozenset({State.CONVERTED, State.VALIDATED, State.VALIDATION_FAILED})

MIGRATED_STATES = frozenset({State.PROMOTED, State.MONITORING, State.DONE})
"""States in which a system counts as migrated for the KPIs."""


def allowed(current: State | str, target: State | str) -> bool:
    """Whether ``current -> target`` is a legal transition."""
    return State(target) in TRANSITIONS[State(current)]


class Action(StrEnum):
    """What an operator can ask of one system: each is one use case of :mod:`engine.services`."""

    CONVERT = "convert"
    VALIDATE = "validate"
    CHECKLIST = "checklist"
    DEPLOY = "deploy"
    START_RUN = "start_run"
    STOP_RUN = "stop_run"
    JUDGE = "judge"
    EXTEND = "extend"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    CALIBRATE = "calibrate"
    MEASURE_CAPACITY = "measure_capacity"


HOLD_FREEZES = frozenset({Action.DEPLOY, Action.START_RUN, Action.EXTEND, Action.PROMOTE, Action.ROLLBACK})
"""What a hold (engine.governance.hold) stops until it is released: whatever moves traffic or versions."""

NOT_YET_READY = frozenset({State.INVENTORIED, State.CONVERTED, State.VALIDATED, State.VALIDATION_FAILED})
"""States before a complete checklist: deploy waits for ``ready``."""

SETUP_STATES = frozenset({State.VALIDATED, State.READY, State.GREEN_DEPLOYED, State.PARALLEL_RUN})
"""States whose next step is setting the comparison up: the checklist, the deploy, the run."""

BOTH_RUNNING = frozenset({State.GREEN_DEPLOYED, State.JUDGED})
"""States in which old and new both serve and no run loads them: capacity can be probed."""


def available_actions(
    state: State | str,
    held: bool = False,
    *,
    verdict: str | None = None,
    run_in_progress: bool = False,
    warm: bool = False,
    strategy: str | None = None,
) -> frozenset[Action]:
    """The actions an operator may take on a system in ``state`` now: the one rule every use case checks
    and every view (status, the Go / No-Go page, the CLI) shows.

    ``held``: a hold is in place (:data:`HOLD_FREEZES` are off); ``verdict``: the
    newest verdict (GO, NO_GO, INCONCLUSIVE or None); ``run_in_progress``: a
    parallel run is collecting samples; ``warm``: a ``done`` system's old
    version is still kept warm (a rollback is a switch); ``strategy``: the
    deploy's (``direct`` promotes without a verdict).

    What is not the state's to say stays with its use case: processes that
    must be running, a second operator's approval, the role.
    """
    state = State(state)
    can = {Action.CHECKLIST}  # it checks, in any state; it moves only validated -> ready
    if state in CONVERTIBLE_STATES:
        can.add(Action.CONVERT)
    if state in VALIDATABLE_STATES:
        can.add(Action.VALIDATE)
    if state == State.READY:
        can.add(Action.DEPLOY)
    if state in (State.GREEN_DEPLOYED, State.JUDGED) and not run_in_progress:
        can.add(Action.START_RUN)
    if run_in_progress:
        can.add(Action.STOP_RUN)
    if state in (State.PARALLEL_RUN, State.JUDGED):
        can.add(Action.JUDGE)
    if state == State.JUDGED and verdict is not None:
        can.add(Action.EXTEND)
    resuming = state in (State.PROMOTED, State.MONITORING)  # a monitor window stopped or interrupted
    if (
        (state == State.JUDGED and verdict == "GO")
        or resuming
        or (state == State.GREEN_DEPLOYED and strategy == "direct")
    ):
        can.add(Action.PROMOTE)
    if state in ROLLBACK_STATES or (state == State.DONE and warm):
        can.add(Action.ROLLBACK)
    if state != State.PARALLEL_RUN:
        can.add(Action.CALIBRATE)
    if state in BOTH_RUNNING:
        can.add(Action.MEASURE_CAPACITY)
    return frozenset(can - HOLD_FREEZES if held else can)
