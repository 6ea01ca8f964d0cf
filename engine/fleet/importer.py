"""Reading a fleet folder: one sub-folder per system, each with a v1 ``blueprint.yaml``.

Loading is separate from storing: :func:`scan_fleet` only reads files and
says, per folder, what loaded and what was rejected and why, so the service
layer can store the good ones in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from engine.errors import BlueprintError, InputError
from engine.fleet.catalog import category_for
from engine.models.blueprint_v1 import V1Blueprint, load_v1_blueprint
from engine.workspace import SAFE_NAME

BLUEPRINT_FILE = "blueprint.yaml"


class Rejection(BaseModel):
    """A folder that could not be imported, and why."""

    folder: str
    error: str


class ImportReport(BaseModel):
    """What an import loaded and rejected."""

    fleet_dir: str
    loaded: list[str]
    rejected: list[Rejection]
    updated: list[str] = []
    """Systems that were already in the inventory and had their fields refreshed."""
    ignored: list[str] = []
    """Entries of the fleet folder that are not systems (a README, ``.git``, ``docs/``): left alone."""


@dataclass
class LoadedSystem:
    """A system folder whose blueprint loaded."""

    folder: Path
    blueprint: V1Blueprint

    @property
    def name(self) -> str:
        return self.blueprint.system.name

    @property
    def category(self) -> str:
        return category_for(self.name, self.blueprint.system.category)


@dataclass
class FleetScan:
    fleet_dir: Path
    loaded: list[LoadedSystem] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    """Entries that are not systems (files, folders without a blueprint or components)."""


def scan_fleet(fleet_dir: Path) -> FleetScan:
    """Load every system folder under ``fleet_dir``; bad folders are rejected with a reason."""
    fleet_dir = Path(fleet_dir)
    if not fleet_dir.is_dir():
        raise InputError(fleet_dir, "<folder>", "a folder with one sub-folder per system", "no such folder")
    scan = FleetScan(fleet_dir.resolve())
    for entry in sorted(fleet_dir.iterdir()):
        if not _looks_like_a_system(entry):
            scan.ignored.append(entry.name)
            continue
        reason = _folder_problem(entry)
        if reason:
            scan.rejected.append(Rejection(folder=entry.name, error=reason))
            continue
        try:
            blueprint = load_v1_blueprint(entry / BLUEPRINT_FILE)
        except BlueprintError as exc:
            scan.rejected.append(Rejection(folder=entry.name, error=str(exc)))
            continue
        if blueprint.system.name != entry.name:
            scan.rejected.append(
                Rejection(
                    folder=entry.name,
                    error=f"{entry / BLUEPRINT_FILE}: at system.name: expected the folder name "
                    f"'{entry.name}' (got '{blueprint.system.name}')",
                )
            )
            continue
        scan.loaded.append(LoadedSystem(entry.resolve(), blueprint))
    return scan


def _looks_like_a_system(entry: Path) -> bool:
    """Whether ``entry`` is meant as a system: a folder with a blueprint or a ``components/`` folder.

    Anything else in a fleet folder (a README, ``.git``, a ``docs/`` folder,
    stray files) is not a system and is ignored, not reported as rejected; a
    folder with components but no blueprint is a system missing its blueprint,
    and a link is reported as one.
    """
    if entry.name.startswith((".", "__")) or not (entry.is_dir() or entry.is_symlink()):
        return False
    if entry.is_symlink():
        return True  # a link is never followed, and is said (it may be a system meant to be here)
    try:
        return (entry / BLUEPRINT_FILE).exists() or (entry / "components").is_dir()
    except OSError:
        return True  # unreadable: reported by _folder_problem with its reason


def _folder_problem(entry: Path) -> str | None:
    """Why a folder cannot be a system, or None."""
    if entry.is_symlink():
        return f"{entry}: is a link; Switchyard does not follow links out of a fleet folder"
    if not SAFE_NAME.fullmatch(entry.name):
        return f"{entry}: folder name is not a plain identifier (letters, digits, _)"
    if not (entry / BLUEPRINT_FILE).is_file():
        return f"{entry}: has no {BLUEPRINT_FILE}"
    return None
