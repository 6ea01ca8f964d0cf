"""The decision policy: thresholds, statistics settings and triggers, read from ``policy.toml``.

Reading the file is parsing the judge's input (as :mod:`engine.judge.samples`
reads a user's samples file): a bad key raises InputError naming the file and
the key; nothing here reads a store or the workspace.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from engine.metrics.config import PrometheusConfig
from engine.models.common import LocatedError, load_toml_model

POLICY_ENV = "SWITCHYARD_POLICY"
DEFAULT_POLICY = Path(
    os.environ.get(POLICY_ENV) or Path(__file__).resolve().parents[2] / "data" / "policy.toml"
).resolve()
"""The decision policy: ``data/policy.toml``, or the file ``$SWITCHYARD_POLICY`` names (read at start-up)."""


class RulePolicy(BaseModel):
    """The seed's rule: ``new_better`` iff all three hold."""

    model_config = ConfigDict(extra="forbid")
    min_validation_success_rate: float = Field(0.8, ge=0, le=1)
    min_throughput_change: float = Field(-0.05, ge=-1, le=1)
    max_latency_increase: float = Field(0.10, ge=0)


class StatisticsPolicy(BaseModel):
    """How much evidence a verdict needs."""

    model_config = ConfigDict(extra="forbid")
    confidence_level: float = Field(0.95, gt=0.5, lt=1)
    min_samples_per_version: int = Field(200, ge=1)
    latency_quantile: float = Field(0.5, gt=0, lt=1)
    max_error_rate_increase: float = Field(0.01, ge=0, le=1)
    max_mismatch_rate: float = Field(0.01, ge=0, le=1)
    max_p95_increase: float = Field(0.25, ge=0)
    """The p95 may rise by at most this (a tail criterion of its own, beside the central latency)."""
    max_p99_increase: float = Field(0.50, ge=0)
    min_tail_samples: int = Field(50, ge=1)
    """A tail criterion is proven like the others once this many requests per version lie beyond it
    (p95: 1,000 requests, p99: 5,000); before, it guards: it can stop a GO but not hold one up."""
    max_latency_drift: float = Field(0.10, ge=0)
    """The new/old latency ratio may climb at most this from the run's first half to its second."""
    guard_confidence: float = Field(0.8, gt=0.5, lt=1)
    """A tail or drift guard (few requests beyond the tail, or noisy halves) whose interval could prove its
    limit lets a GO through only when it is within it at this one-sided confidence; primary criteria need
    the whole interval within. An endpoint's guard is weighed on evidence only (``guard_evidence``)."""
    guard_evidence: float = Field(0.7, ge=0.5, lt=1)
    """A guard whose interval is too wide to prove its limit (the run too small, the machine too noisy)
    holds up GO only when it is beyond its limit at this one-sided confidence: evidence of a regression,
    not the lack of proof."""
    min_samples_per_endpoint: int = Field(200, ge=1)
    """An endpoint with this many requests per version is judged on its own too (Holm across them)."""

    @property
    def interval_level(self) -> float:
        """The two-sided level of every criterion's interval: ``2·confidence_level − 1`` (0.90 for 0.95).

        Each end of such an interval is a one-sided bound at ``confidence_level``,
        and each criterion is a one-sided question: is new within its limit (for
        GO), is it beyond (for NO_GO)? GO asks every primary criterion to be
        within: an intersection-union test, whose false-GO rate is at most the
        largest of its parts' (Berger 1982), so each part at one-sided
        ``confidence_level`` gives GO that confidence, with no correction for
        their number; as the equivalence tests of bioequivalence do (TOST, a 90 %
        interval within the margins for 95 %). See :mod:`engine.judge.verdict`.
        """
        return 2 * self.confidence_level - 1


class TriggerPolicy(BaseModel):
    """The seed's automatic rollback triggers."""

    model_config = ConfigDict(extra="forbid")
    min_validation_success_rate: float = Field(0.7, ge=0, le=1)
    max_error_rate: float = Field(0.05, ge=0, le=1)
    max_p95_ratio: float = Field(2.0, gt=0)
    min_throughput_ratio: float = Field(0.5, ge=0)
    max_failed_health_checks: int = Field(3, ge=0)
    breach_checks: int = Field(3, ge=1)
    """Checks in a row (one a tick) a latency or throughput breach must hold before it fires mid-run,
    as Flagger's ``threshold`` and Argo's ``failureLimit`` + 1 (the Argo export's failureLimit follows
    it): a p95 jolted past 2x by one burst of load on a busy machine is noise, a slower version stays
    slower. Errors, validation and failed health checks fire on the first check: they are not noise."""
    min_p95_samples: int = Field(100, ge=1)
    """Ok requests per version before the p95 ratio is trusted (100: five lie beyond each p95); with
    fewer, one slow request is the whole tail and the ratio is 'not measured'."""


class ParallelRunPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duration_s: float = Field(86400, gt=0)
    bucket_s: float = Field(60, gt=0)

    @field_validator("bucket_s")
    @classmethod
    def _bucket_within_run(cls, bucket_s: float, info: ValidationInfo) -> float:
        duration = info.data.get("duration_s")
        if duration is not None and bucket_s > duration:
            raise ValueError(f"a bucket no longer than the run (duration_s = {duration:g})")
        return bucket_s


class DeployPolicy(BaseModel):
    """How a switch is watched: the seed's 5-minute monitor window and the canary's steps."""

    model_config = ConfigDict(extra="forbid")
    monitor_window_s: float = Field(300, gt=0)
    monitor_rps: float = Field(50, gt=0)
    canary_weights: list[Annotated[float, Field(gt=0, le=1)]] = Field([0.05, 0.25, 0.5, 1.0], min_length=1)
    canary_step_s: float = Field(60, gt=0)
    health_timeout_s: float = Field(20, gt=0)
    warm_window_s: float = Field(0, ge=0)
    """After a clean monitor window blue stays running this long: rollback is then a traffic switch."""

    @field_validator("canary_weights")
    @classmethod
    def _weights_rise(cls, weights: list[float]) -> list[float]:
        for i in range(1, len(weights)):
            if weights[i] <= weights[i - 1]:
                raise LocatedError(
                    (i,), f"weights that rise step by step ({weights[i - 1]:g}, then {weights[i]:g})"
                )
        return weights


class GovernancePolicy(BaseModel):
    """Who must agree before a switch, and what a fired trigger does."""

    model_config = ConfigDict(extra="forbid")
    approval_required: bool = False
    """A second operator must approve the GO verdict before anyone promotes on it."""
    hold_on_trigger: bool = False
    """A fired trigger puts the system on HOLD (traffic stays) instead of rolling it back."""


class KubernetesPolicy(BaseModel):
    """How the Argo Rollouts export (``export-argo``) measures on a cluster."""

    model_config = ConfigDict(extra="forbid")
    scrape_interval_s: float = Field(60, gt=0, le=3600)
    """The cluster Prometheus's scrape interval (Prometheus's own default is 1m): an analysis
    measures rates over windows of four scrapes, one window after another."""


class SandboxPolicy(BaseModel):
    """Limits on a team's own code (:mod:`engine.sandbox`): its checks, and the processes that serve it."""

    model_config = ConfigDict(extra="forbid")
    timeout_s: float = Field(10, gt=0, le=3600)
    """One system's v1 checks (imports, calls, smoke) in their child process; past it the child is killed."""
    memory_mb: int = Field(512, ge=16)
    """What a system's code may allocate while it is checked, beyond the checker's own memory."""
    service_memory_mb: int = Field(1024, ge=64)
    """What a deployed version (blue or green) may allocate beyond the runtime's own memory."""


class RecordedRequestsPolicy(BaseModel):
    """Real requests kept from each run, for the gate to replay (:mod:`engine.deploy.request_sample`).

    Request bodies are what clients sent and may carry user data: they are
    kept in the workspace (``samples/system=<s>/run=<id>/requests.parquet``) and
    go into ``backup-store`` with the samples. ``keep_per_endpoint = 0`` turns
    recording off.
    """

    model_config = ConfigDict(extra="forbid")
    keep_per_endpoint: int = Field(50, ge=0, le=10_000)
    """Distinct request bodies the gateway keeps per system, endpoint and run (a uniform sample of the
    distinct ones); 0: none are kept."""
    max_body_bytes: int = Field(8192, ge=1, le=1 << 20)
    """Larger request bodies are counted, never kept."""
    replay_per_endpoint: int = Field(50, ge=0, le=10_000)
    """Recorded requests the gate replays per endpoint, newest runs first; 0: the gate replays none."""


GATE_CHECKS = (
    "import",
    "smoke",
    "equivalence",
    "config_valid",
    "recipe_exists",
    "port_bound",
    "binding_valid",
)
"""Checks the gate may be told to block on (see :class:`GatePolicy`)."""


class GatePolicy(BaseModel):
    """The PortBasedValidationGate: the seed's check-share threshold, and checks that block on their own."""

    model_config = ConfigDict(extra="forbid")
    min_validation_success_rate: float = Field(0.8, ge=0, le=1)
    """The seed's gate: below this share of passing checks the migration stops ("Validation failed")."""
    blocking_checks: list[str] = Field(["import", "smoke", "equivalence"])
    """Any failing check of these names blocks the system whatever its share of passing checks."""

    @field_validator("blocking_checks")
    @classmethod
    def _known_checks(cls, names: list[str]) -> list[str]:
        for i, name in enumerate(names):
            if name not in GATE_CHECKS:
                raise LocatedError((i,), f"one of {', '.join(GATE_CHECKS)}; not '{name}'")
        return names


class Policy(BaseModel):
    """Everything a verdict depends on besides the data."""

    model_config = ConfigDict(extra="forbid")
    rule: RulePolicy = RulePolicy()
    statistics: StatisticsPolicy = StatisticsPolicy()
    triggers: TriggerPolicy = TriggerPolicy()
    parallel_run: ParallelRunPolicy = ParallelRunPolicy()
    deploy: DeployPolicy = DeployPolicy()
    prometheus: PrometheusConfig = PrometheusConfig()
    governance: GovernancePolicy = GovernancePolicy()
    kubernetes: KubernetesPolicy = KubernetesPolicy()
    sandbox: SandboxPolicy = SandboxPolicy()
    gate: GatePolicy = GatePolicy()
    recorded_requests: RecordedRequestsPolicy = RecordedRequestsPolicy()


def load_policy(path: Path = DEFAULT_POLICY) -> Policy:
    """Read a policy file; a bad one raises InputError naming the file and the key."""
    return load_toml_model(Policy, path)
