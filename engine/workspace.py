"""Where Switchyard keeps its state, and the one guard that keeps names from being paths.

The workspace holds the DuckDB file and every folder the engine writes
(``generated_systems_v2/``, ``backups/``, ``migration/rollback/``,
``migration/failures/``, ``samples/``). It defaults to ``./workspace`` and
moves with ``--workspace`` or the ``SWITCHYARD_WORKSPACE`` variable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.models.common import IDENTIFIER_PATTERN

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_FLEET_DIR = REPO_ROOT / "data" / "generated_systems"
DEFAULT_PLAN = REPO_ROOT / "data" / "plan.toml"
WORKSPACE_ENV = "SWITCHYARD_WORKSPACE"

SAFE_NAME = re.compile(IDENTIFIER_PATTERN)


def resolve_workspace(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The workspace folder: the explicit argument, else $SWITCHYARD_WORKSPACE, else ./workspace."""
    chosen = explicit or os.environ.get(WORKSPACE_ENV) or "workspace"
    return Path(chosen).expanduser().resolve()


def check_system_name(name: object) -> str:
    """``name`` if it is a plain identifier, as every system name is; else InputError.

    Every use case that takes a system name calls this first, before it reads
    the store or touches a file, so a name such as ``../evil`` or ``/etc/passwd``
    is refused as bad input rather than looked up.
    """
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise InputError(
            "system name", repr(name), "a plain identifier (letters, digits, _; not starting with a digit)"
        )
    return name


def safe_child(base: Path, name: str, suffix: str = "") -> Path:
    """``base/<name><suffix>``, refusing any name that is not a plain identifier.

    System names end up in folder and file names; this is the single check
    that keeps ``../`` or an absolute path in a name from reaching the disk.
    """
    check_system_name(name)
    path = (base / f"{name}{suffix}").resolve()
    if base.resolve() not in path.parents:
        raise InputError("system name", repr(name), f"a name that stays inside {base}")
    return path


@dataclass(frozen=True)
class Workspace:
    """Paths inside one workspace folder; creating it is :meth:`ensure`'s job."""

    root: Path

    @classmethod
    def at(cls, explicit: str | os.PathLike[str] | None = None) -> Workspace:
        return cls(resolve_workspace(explicit))

    @property
    def db_path(self) -> Path:
        return self.root / "switchyard.duckdb"

    @property
    def v2_dir(self) -> Path:
        return self.root / "generated_systems_v2"

    @property
    def backups_dir(self) -> Path:
        return self.root / "backups"

    @property
    def rollback_dir(self) -> Path:
        return self.root / "migration" / "rollback"

    @property
    def failures_dir(self) -> Path:
        return self.root / "migration" / "failures"

    @property
    def samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def live_dir(self) -> Path:
        """Where each deployed version's files are served from (blue is restored here from a backup)."""
        return self.root / "live"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def run_dir(self) -> Path:
        """Runtime files of the processes this workspace started (the gateway's routes)."""
        return self.root / "run"

    @property
    def owner_tag(self) -> str:
        """Passed to every process this workspace starts, so a reconcile can find its orphans."""
        return str(self.root.resolve())

    def ensure(self) -> Workspace:
        """Create the workspace folders (idempotent)."""
        for folder in (
            self.root,
            self.v2_dir,
            self.backups_dir,
            self.rollback_dir,
            self.failures_dir,
            self.samples_dir,
            self.live_dir,
            self.logs_dir,
            self.run_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def exists(self) -> bool:
        return self.db_path.exists()
