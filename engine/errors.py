"""Error types the engine raises for problems a user can fix.

Every user-facing error names *what* is wrong and *where* (file and path inside
it), so the CLI can print one line and the app one red box, never a traceback.
"""

from __future__ import annotations

import shlex
from pathlib import Path


class SwitchyardError(Exception):
    """Base for errors caused by input or state, not by a bug."""

    exit_code = 2


class InputError(SwitchyardError):
    """A file or value supplied by the user is malformed.

    ``source`` is the file (or a label such as ``"--fleet"``), ``location`` the
    path inside it (``system.components[2].name``) and ``expected`` what would
    have been accepted.
    """

    def __init__(self, source: str | Path, location: str, expected: str, got: str | None = None):
        self.source = str(source)
        self.location = location or "<document>"
        self.expected = expected
        self.got = got
        detail = f"{self.source}: at {self.location}: expected {expected}"
        if got:
            detail += f" (got {got})"
        super().__init__(detail)

    def to_dict(self) -> dict[str, str | None]:
        return {
            "source": self.source,
            "location": self.location,
            "expected": self.expected,
            "got": self.got,
            "message": str(self),
        }


class BlueprintError(InputError):
    """A blueprint file (v1 or v2) could not be loaded."""


class NotFoundError(SwitchyardError):
    """A named thing (system, run, file) does not exist in the workspace."""


class StateConflictError(SwitchyardError):
    """The state changed since the caller read it (optimistic concurrency)."""


class StoreLockedError(SwitchyardError):
    """Another process holds the DuckDB write lock."""


class AccessDeniedError(SwitchyardError):
    """The actor's role does not allow the change they asked for (see ``engine.access``)."""

    def __init__(self, actor: str, role: str, what: str, roles_file: str | Path, *, unidentified: str = ""):
        """``unidentified``: why nobody knows who ``actor`` is (granting that name a role would not help)."""
        self.actor = actor
        self.role = role
        self.what = what
        self.roles_file = str(roles_file)
        if unidentified:
            super().__init__(f"{actor!r} is a {role} and may not {what}: {unidentified}")
            return
        where = self.roles_file if Path(roles_file).exists() else f"{self.roles_file} (not written yet)"
        grant = f"python -m engine roles --grant {shlex.quote(actor)} --role operator"
        super().__init__(
            f"{actor!r} is a {role} and may not {what}. Operators are listed in {where}: "
            f"add the name there, or ask an operator to run '{grant}'"
        )
