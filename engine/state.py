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
