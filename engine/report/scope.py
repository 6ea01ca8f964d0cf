"""What a post-mortem covers: the whole migration, one phase, or one system.

Written on the command line as ``migration``, ``phase:N`` or ``system:NAME``,
so the page and the CLI name a report the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.errors import InputError

ScopeKind = Literal["migration", "phase", "system"]


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    phase: int | None = None
    system: str | None = None

    @property
    def label(self) -> str:
        """Human title: "the whole migration", "phase 2", "system todo_api_system"."""
        if self.kind == "phase":
            return f"phase {self.phase}"
        if self.kind == "system":
            return f"system {self.system}"
        return "the whole migration"

    @property
    def slug(self) -> str:
        """File-name friendly: migration, phase-2, system-todo_api_system."""
        if self.kind == "phase":
            return f"phase-{self.phase}"
        if self.kind == "system":
            return f"system-{self.system}"
        return "migration"

    def __str__(self) -> str:
        return {"phase": f"phase:{self.phase}", "system": f"system:{self.system}"}.get(self.kind, "migration")


def parse_scope(text: str) -> Scope:
    """``migration``, ``phase:N`` or ``system:NAME``; anything else is an InputError saying what is."""
    raw = (text or "").strip()
    kind, _, value = raw.partition(":")
    if kind == "migration" and not value:
        return Scope("migration")
    if kind == "phase" and value.strip().isdigit():
        return Scope("phase", phase=int(value))
    if kind == "system" and value.strip():
        return Scope("system", system=value.strip())
    raise InputError("--scope", "value", "'migration', 'phase:N' or 'system:NAME'", raw or "nothing")
