"""Validation results shared by the v1 validator and the v2 gate.

A system's ``validation_success_rate`` is passed checks / all checks, as the
seed's gate defines it. A system *passes* when every check passes; the fleet
rate is the share of systems that pass, which is how the seed's "27.8 %"
reads.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, computed_field


class Check(BaseModel):
    """One validation check on one component (or on the whole system)."""

    name: str = Field(description="Check id, e.g. 'import', 'call_target', 'message_shape', 'smoke'.")
    component: str | None = Field(None, description="The component checked; None for system-wide checks.")
    target: str | None = Field(None, description="What the check looked at, e.g. 'store.insert'.")
    passed: bool
    message: str = Field("", description="Why it failed, or what was confirmed.")
    evidence: list[dict[str, Any]] | None = Field(
        None,
        description="What a person needs to see the failure: for 'equivalence', each differing request "
        "with the v1 and the v2 answer ({'request', 'position', 'v1': {status, body}, 'v2': ..., "
        "'source': 'generated' | 'recorded', and for a recorded one 'run_id', 'first_seen', 'seen'}).",
    )
    sent: dict[str, int] | None = Field(
        None,
        description="For 'equivalence': requests sent to both versions by kind: 'generated' (from the "
        "declared shapes and the parallel run's own mix) and 'recorded' (real traffic of earlier runs).",
    )


class SystemValidation(BaseModel):
    """Every check run on one system, and the rate they add up to."""

    system: str
    blueprint_version: str = Field(description="'v1' or 'v2'.")
    checks: list[Check] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def checks_passed(self) -> int:
        return sum(c.passed for c in self.checks)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def checks_total(self) -> int:
        return len(self.checks)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def validation_success_rate(self) -> float:
        return self.checks_passed / self.checks_total if self.checks else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failures(self) -> list[Check]:
        """The checks that failed, in the order they ran."""
        return [c for c in self.checks if not c.passed]

    def requests_sent(self) -> dict[str, int]:
        """Requests the equivalence checks sent to both v1 and v2, by kind (``generated``, ``recorded``)."""
        out: dict[str, int] = {}
        for check in self.checks:
            for kind, count in (check.sent or {}).items():
                out[kind] = out.get(kind, 0) + count
        return out

    def sent_text(self) -> str:
        """``"equivalence: 84 generated and 3 recorded requests sent to v1 and v2"``; empty if none ran.

        "Recorded" are requests real clients sent through the gateway in the
        system's earlier runs (policy ``[recorded_requests]``).
        """
        sent = self.requests_sent()
        if not sent:
            return ""
        return (
            f"equivalence: {sent.get('generated', 0)} generated and {sent.get('recorded', 0)} recorded "
            "requests sent to v1 and v2"
        )


class FleetValidation(BaseModel):
    """Validation of many systems, with the fleet-wide rate computed from them."""

    blueprint_version: str
    systems: list[SystemValidation]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def systems_passed(self) -> int:
        return sum(s.passed for s in self.systems)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def validation_success_rate(self) -> float:
        """Share of systems whose every check passed."""
        return self.systems_passed / len(self.systems) if self.systems else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def check_success_rate(self) -> float:
        """Share of all checks that passed, across the fleet."""
        total = sum(s.checks_total for s in self.systems)
        return sum(s.checks_passed for s in self.systems) / total if total else 0.0
