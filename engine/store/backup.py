"""Backup and restore of a whole workspace's data: the DuckDB store and the files beside it.

A backup is a folder ``switchyard-backup-<YYYYmmdd_HHMMSS>`` holding

- ``store/switchyard.duckdb``: the store as one consistent snapshot, copied
  after a CHECKPOINT while this process holds the file (no other process can
  write) and no transaction of this process runs (``db.WRITE_LOCK``);
- the folders ``samples/`` (Parquet segments), ``migration/`` (rollback plans,
  failure documents), ``backups/`` (the old versions), ``generated_systems_v2/``
  and the workspace's settings files (``*.toml``);
- ``manifest.json``: row counts per table of the copied store and the sha256
  and size of every other file.

It is written under a temp name and renamed, so a backup is whole or absent.
A restore checks every checksum, the file list and the store's row counts
before it changes anything, refuses a damaged backup, and then swaps each part
in by rename (the store file with ``os.replace``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel

from engine.errors import StateConflictError, SwitchyardError
from engine.store.db import WRITE_LOCK, connect, first_row, transaction
from engine.store.events import append_events
from engine.workspace import Workspace

MANIFEST = "manifest.json"
FORMAT = 1
STORE_FILE = "store/switchyard.duckdb"
FOLDERS = ("samples", "migration", "backups", "generated_systems_v2")
"""Workspace folders a backup carries (live/, logs/ and run/ belong to running processes)."""
PREFIX = "switchyard-backup-"


class BackupError(SwitchyardError):
    """A backup is missing, damaged or does not match its manifest; nothing was changed."""


class BackupResult(BaseModel):
    path: Path
    tables: dict[str, int]
    files: int
    bytes: int


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per table of the open database's main schema."""
    names = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' ORDER BY table_name"
        ).fetchall()
    ]
    counts = {}
    for name in names:
        row = first_row(con, f'SELECT count(*) FROM "{name}"')  # noqa: S608 - names from the catalog
        counts[name] = int(row[0]) if row else 0
    return counts


def _data_files(root: Path) -> list[Path]:
    """The files a backup carries, relative to the workspace ``root`` (temp files of writers left out)."""
    found = [p.relative_to(root) for p in sorted(root.glob("*.toml")) if p.is_file()]
    for folder in FOLDERS:
        base = root / folder
        if base.is_dir():
            found += [
                p.relative_to(root)
                for p in sorted(base.rglob("*"))
                if p.is_file() and not p.name.endswith(".tmp") and ".tmp-" not in p.name
            ]
    return found


def backup(ws: Workspace, target_dir: Path, *, actor: str) -> BackupResult:
    """Write a new backup folder under ``target_dir``; returns where and what it holds."""
    target_dir = Path(target_dir)
    if target_dir.resolve().is_relative_to(ws.root.resolve()):
        raise BackupError(f"{target_dir}: put backups outside the workspace {ws.root}, not inside it")
    target_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d_%H%M%S")
    final = target_dir / f"{PREFIX}{stamp}"
    n = 1
    while final.exists():
        final = target_dir / f"{PREFIX}{stamp}_{n}"
        n += 1
    temp = target_dir / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    (temp / "store").mkdir(parents=True)
    with connect(ws.db_path) as con, WRITE_LOCK:  # no other process or transaction writes meanwhile
        con.execute("CHECKPOINT")  # everything in the main file, the WAL empty
        shutil.copy2(ws.db_path, temp / STORE_FILE)
        live_counts = table_counts(con)
        files = _data_files(ws.root)
        for rel in files:  # copied while writers wait: samples and documents match the store
            (temp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ws.root / rel, temp / rel)
    with duckdb.connect(str(temp / STORE_FILE), read_only=True) as copy:
        tables = table_counts(copy)
    if tables != live_counts:
        shutil.rmtree(temp, ignore_errors=True)
        raise BackupError("the store changed while it was copied; try again")
    listed = {}
    for rel in [Path(STORE_FILE), *files]:
        path = temp / rel
        _fsync(path)
        listed[rel.as_posix()] = {"sha256": sha256(path), "bytes": path.stat().st_size}
    manifest = {
        "format": FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "workspace": str(ws.root.resolve()),
        "actor": actor,
        "tables": tables,
        "files": listed,
    }
    (temp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    _fsync(temp / MANIFEST)
    os.replace(temp, final)
    with connect(ws.db_path) as con, transaction(con):
        append_events(
            con,
            [
                {
                    "actor": actor,
                    "action": "store:backup",
                    "reason": f"backup to {final}",
                    "after": {"path": str(final), "tables": tables, "files": len(listed)},
                }
            ],
        )
    return BackupResult(
        path=final, tables=tables, files=len(listed), bytes=sum(f["bytes"] for f in listed.values())
    )


def verify(source: Path) -> dict[str, Any]:
    """The manifest of the backup at ``source`` if every check passes, else BackupError naming the problem."""
    source = Path(source)
    manifest_path = source / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{source}: not a Switchyard backup (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
        files: dict[str, dict[str, Any]] = manifest["files"]
        tables: dict[str, int] = manifest["tables"]
        if manifest.get("format") != FORMAT or STORE_FILE not in files:
            raise ValueError(f"format {manifest.get('format')!r} or no {STORE_FILE}")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise BackupError(f"{manifest_path}: damaged manifest ({exc}); nothing was restored") from exc
    present = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()} - {MANIFEST}
    if missing := sorted(set(files) - present):
        raise BackupError(f"{source}: {missing[0]} is in the manifest but missing; nothing was restored")
    if extra := sorted(present - set(files)):
        raise BackupError(f"{source}: {extra[0]} is not in the manifest (added later?); nothing was restored")
    for rel, expected in sorted(files.items()):
        path = source / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise BackupError(f"{manifest_path}: {rel!r} points outside the backup; nothing was restored")
        if path.stat().st_size != expected["bytes"] or sha256(path) != expected["sha256"]:
            raise BackupError(
                f"{path}: checksum does not match the manifest (damaged or changed); nothing was restored"
            )
    try:
        with duckdb.connect(str(source / STORE_FILE), read_only=True) as copy:
            counts = table_counts(copy)
    except duckdb.Error as exc:
        raise BackupError(f"{source / STORE_FILE}: does not open ({exc}); nothing was restored") from exc
    if counts != tables:
        raise BackupError(f"{source / STORE_FILE}: row counts differ from the manifest; nothing was restored")
    return manifest


def restore(ws: Workspace, source: Path, *, actor: str, reason: str, live_pids: set[int]) -> dict[str, Any]:
    """Replace the workspace's data with the backup at ``source``; returns its manifest.

    ``live_pids`` are the workspace's running processes: a restore under a
    running service would leave the store describing processes that are not
    the ones running, so it is refused until they are stopped.
    """
    source = Path(source)
    manifest = verify(source)
    if live_pids:
        raise StateConflictError(
            f"{ws.root}: {len(live_pids)} process(es) of this workspace are running "
            f"(pids {', '.join(map(str, sorted(live_pids)))}); stop them with 'down' before restoring"
        )
    staging = ws.root / f".restore-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for rel in manifest["files"]:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, staging / rel)
            if sha256(staging / rel) != manifest["files"][rel]["sha256"]:
                raise BackupError(f"{source / rel}: changed while it was copied; nothing was restored")
            _fsync(staging / rel)
        with connect(ws.db_path, migrate=False) as con, WRITE_LOCK:
            con.execute("CHECKPOINT")  # the old WAL is empty, so nothing of it replays onto the new file
        with WRITE_LOCK:
            os.replace(staging / STORE_FILE, ws.db_path)  # the store: whole old or whole new
            ws.db_path.with_name(ws.db_path.name + ".wal").unlink(missing_ok=True)
            for folder in FOLDERS:
                _swap_folder(ws.root / folder, staging / folder)
            for toml in ws.root.glob("*.toml"):
                toml.unlink()
            for staged in staging.glob("*.toml"):
                os.replace(staged, ws.root / staged.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with connect(ws.db_path) as con, transaction(con):
        append_events(
            con,
            [
                {
                    "actor": actor,
                    "action": "store:restored",
                    "reason": reason,
                    "after": {
                        "source": str(source.resolve()),
                        "backup_created_at": manifest["created_at"],
                        "tables": manifest["tables"],
                    },
                }
            ],
        )
    return manifest


def _swap_folder(current: Path, staged: Path) -> None:
    """Put ``staged`` where ``current`` is (an empty folder when the backup had none)."""
    if not staged.exists():
        staged.mkdir(parents=True)
    old = current.with_name(f".{current.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if current.exists():
        os.replace(current, old)
    os.replace(staged, current)
    shutil.rmtree(old, ignore_errors=True)
