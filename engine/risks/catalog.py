"""The risk register's text: the seed's risk matrix, playbooks and cleanup checklist, read from TOML.

What a risk *says* (description, owner, mitigation) and what a playbook asks
(its steps) is the team's to edit, so it lives in ``data/risks.toml``, or in
``<workspace>/risks.toml`` when a workspace carries its own (that file then
replaces the bundled one as a whole, as ``plan.toml`` does). Whether a risk
has *materialised* is never written here: :mod:`engine.risks.register`
measures it from the store.

A bad file raises :class:`~engine.errors.InputError` naming the file and the
field, and the page shows that one line instead of a half-read register.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from engine.models.common import IDENTIFIER_PATTERN, load_toml_model
from engine.workspace import REPO_ROOT, Workspace

DEFAULT_RISKS = REPO_ROOT / "data" / "risks.toml"
RISKS_FILE = "risks.toml"

Id = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
"""A plain identifier: ticks are recorded as ``playbook:<checklist>:<step>``, so no ':' may hide in one."""
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]

Level = Literal["high", "medium", "low"]
LEVEL_ORDER: dict[str, int] = {"high": 0, "medium": 1, "low": 2}

Measure = Literal[
    "data_loss", "performance_regression", "import_errors", "knowledge_gap", "rollback_complexity"
]
"""The live evidence :mod:`engine.risks.register` knows how to compute."""


def _unique(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"each {what} id once; '{i}' appears twice")
        seen.add(i)


class Risk(BaseModel):
    """One row of the seed's risk matrix."""

    model_config = ConfigDict(extra="forbid")
    id: Id
    level: Level
    description: Text
    mitigation: Text
    owner: Text = Field(description="A role, not a person: who acts when the risk materialises.")
    measure: Measure | None = None
    playbook: Id | None = Field(None, description="The playbook to open when the risk materialises.")


class Step(BaseModel):
    """One step of a checklist; ``group`` sorts the cleanup list into code, infrastructure, documentation."""

    model_config = ConfigDict(extra="forbid")
    id: Id
    text: Text
    group: Id | None = None


class Checklist(BaseModel):
    """A contingency playbook or the cleanup checklist: steps a lead ticks as they are done."""

    model_config = ConfigDict(extra="forbid")
    id: Id
    title: Text
    when: Text
    steps: list[Step] = Field(min_length=1)

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: list[Step]) -> list[Step]:
        _unique([s.id for s in steps], "step")
        return steps

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)


class RiskCatalog(BaseModel):
    """The whole file: risks, playbooks and the cleanup checklist.

    Fields are declared playbooks first so that a risk's ``playbook`` can be
    checked against them while ``risks`` is validated, and an error names the
    field that is wrong rather than the whole document.
    """

    model_config = ConfigDict(extra="forbid")
    playbooks: list[Checklist] = []
    cleanup: Checklist | None = None
    risks: list[Risk] = Field(min_length=1)

    @field_validator("playbooks")
    @classmethod
    def _unique_playbooks(cls, playbooks: list[Checklist]) -> list[Checklist]:
        _unique([p.id for p in playbooks], "playbook")
        return playbooks

    @field_validator("cleanup")
    @classmethod
    def _cleanup_id_is_free(cls, cleanup: Checklist | None, info: ValidationInfo) -> Checklist | None:
        if cleanup is not None and cleanup.id in {p.id for p in info.data.get("playbooks", [])}:
            raise ValueError(f"an id no playbook uses; '{cleanup.id}' is a playbook's id too")
        return cleanup

    @field_validator("risks")
    @classmethod
    def _risks_resolve(cls, risks: list[Risk], info: ValidationInfo) -> list[Risk]:
        _unique([r.id for r in risks], "risk")
        if "playbooks" not in info.data:
            return risks  # the playbooks' own error is reported instead
        known = {p.id for p in info.data["playbooks"]}
        for risk in risks:
            if risk.playbook is not None and risk.playbook not in known:
                raise ValueError(
                    f"risk '{risk.id}' to name one of the playbooks ({', '.join(sorted(known)) or 'none'}), "
                    f"not '{risk.playbook}'"
                )
        return risks

    def checklists(self) -> Iterator[Checklist]:
        """Every checklist that can be ticked: the playbooks, then the cleanup list."""
        yield from self.playbooks
        if self.cleanup is not None:
            yield self.cleanup

    def checklist(self, checklist_id: str) -> Checklist | None:
        return next((c for c in self.checklists() if c.id == checklist_id), None)


def risks_path(ws: Workspace) -> Path:
    """Where a workspace's own register lives (it need not exist)."""
    return ws.root / RISKS_FILE


def load_catalog(ws: Workspace | None = None) -> RiskCatalog:
    """The register in force: ``<workspace>/risks.toml`` if present, else the bundled ``data/risks.toml``."""
    path = risks_path(ws) if ws is not None and risks_path(ws).exists() else DEFAULT_RISKS
    return load_toml_model(RiskCatalog, path)
