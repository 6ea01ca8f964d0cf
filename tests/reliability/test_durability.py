"""Data durability: backup-store / restore-store, and the store and segments surviving a SIGKILL mid-write."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from engine import services
from engine.access import AccessDeniedError
from engine.cli import main
from engine.errors import StateConflictError
from engine.rollback import backups
from engine.rollback.manager import document_failure
from engine.store import connect
from engine.store.backup import MANIFEST, STORE_FILE, BackupError, sha256, table_counts
from engine.workspace import Workspace
from tests.governance.test_governance import RUN, SYSTEM, judged
from tests.reliability.fingerprint import store_fingerprint

REPO = Path(__file__).resolve().parents[2]


def with_documents(ws: Workspace) -> Workspace:
    """SYSTEM judged on a stored run (a sample segment, a verdict), with a backup and a rollback plan."""
    judged(ws)
    backups.ensure_backup(ws, SYSTEM, REPO / "data" / "generated_systems" / SYSTEM)
    ws.rollback_dir.mkdir(parents=True, exist_ok=True)
    (ws.rollback_dir / f"{SYSTEM}.md").write_text("# Rollback plan\n")
    document_failure(ws, SYSTEM, "team decision", "lead", None, {"verified": True})
    return ws


def counts(ws: Workspace) -> dict[str, int]:
    with connect(ws.db_path) as con:
        return table_counts(con)


def data_files(ws: Workspace) -> dict[str, str]:
    """sha256 of every file a backup carries, by path in the workspace."""
    out = {}
    for folder in ("samples", "migration", "backups", "generated_systems_v2"):
        for p in sorted((ws.root / folder).rglob("*")):
            if p.is_file():
                out[p.relative_to(ws.root).as_posix()] = sha256(p)
    out |= {p.name: sha256(p) for p in ws.root.glob("*.toml")}
    return out


def test_backup_change_restore_gives_back_the_manifest(sample_ws: Workspace, tmp_path: Path) -> None:
    ws = with_documents(sample_ws)
    before = counts(ws)
    result = services.backup_store(ws, tmp_path / "bk", actor="lead")
    manifest = json.loads((result.path / MANIFEST).read_text())
    assert manifest["tables"] == before == result.tables
    assert manifest["tables"]["verdicts"] == 1 and manifest["tables"]["systems"] == 52
    listed = {k: v["sha256"] for k, v in manifest["files"].items() if k != STORE_FILE}
    assert listed == data_files(ws)
    assert any(k.startswith("samples/") and k.endswith(".parquet") for k in listed)
    assert any(k.startswith("migration/rollback/") for k in listed)
    assert any(k.startswith("backups/") for k in listed)
    assert services.list_events(ws, action="store:backup").height == 1

    # things change after the backup: a hold, a lost segment, a stray document, a new conversion
    services.hold(ws, SYSTEM, actor="lead", reason="freeze")
    segment = next((ws.samples_dir / f"system={SYSTEM}" / f"run={RUN}").glob("*.parquet"))
    segment.unlink()
    (ws.failures_dir / "stray.json").write_text("{}")
    services.convert_systems(ws, ["simple_rest_api"], actor="lead")
    assert counts(ws) != before

    restored = services.restore_store(ws, result.path, actor="lead", reason="bad night, back to 09:00")
    assert restored["tables"] == manifest["tables"]
    after = counts(ws)
    assert {k: v for k, v in after.items() if k != "events"} == {
        k: v for k, v in manifest["tables"].items() if k != "events"
    }
    assert after["events"] == manifest["tables"]["events"] + 1  # the restore itself, recorded
    newest = services.list_events(ws, limit=1).row(0, named=True)
    assert newest["action"] == "store:restored" and newest["actor"] == "lead"
    assert data_files(ws) == listed  # same files, same bytes: the segment back, the stray gone
    assert services.holds(ws).is_empty()
    assert services.status(ws, SYSTEM).state == "judged"
    assert not list(ws.root.glob(".restore-*")) and not list(ws.root.glob(".*.old-*"))


def damage(backup: Path, how: str) -> None:
    segment = next(backup.glob("samples/**/*.parquet"))
    if how == "flip a byte of the store":
        path = backup / STORE_FILE
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "flip a byte of a segment":
        data = bytearray(segment.read_bytes())
        data[10] ^= 0x01
        segment.write_bytes(bytes(data))
    elif how == "truncate a segment":
        segment.write_bytes(segment.read_bytes()[:-7])
    elif how == "delete a segment":
        segment.unlink()
    elif how == "add a file":
        (backup / "migration" / "failures" / "extra.json").write_text("{}")
    elif how == "cut the manifest short":
        path = backup / MANIFEST
        path.write_text(path.read_text()[:100])
    elif how == "edit a row count in the manifest":
        path = backup / MANIFEST
        manifest = json.loads(path.read_text())
        manifest["tables"]["systems"] += 1
        path.write_text(json.dumps(manifest))


DAMAGE = [
    "flip a byte of the store",
    "flip a byte of a segment",
    "truncate a segment",
    "delete a segment",
    "add a file",
    "cut the manifest short",
    "edit a row count in the manifest",
]


def test_a_damaged_backup_is_refused_and_the_store_is_unchanged(
    sample_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = with_documents(sample_ws)
    original = services.backup_store(ws, tmp_path / "bk", actor="lead").path
    services.hold(ws, SYSTEM, actor="lead", reason="changed after the backup")
    fingerprint, files = store_fingerprint(ws), data_files(ws)
    for i, how in enumerate(DAMAGE):
        copy = tmp_path / f"damaged-{i}"
        subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
        damage(copy, how)
        with pytest.raises(BackupError, match="nothing was restored"):
            services.restore_store(ws, copy, actor="lead", reason="try it")
        assert store_fingerprint(ws) == fingerprint, how
        assert data_files(ws) == files, how
    # the CLI: exit status 2 and one line naming what is wrong, not a traceback
    code = main(["--workspace", str(ws.root), "restore-store", str(copy), "--reason", "try it"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "manifest" in err and "Traceback" not in err
    assert store_fingerprint(ws) == fingerprint


def test_backup_and_restore_through_the_cli(
    sample_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = with_documents(sample_ws)
    before = counts(ws)
    assert main(["--workspace", str(ws.root), "--json", "backup-store", "--to", str(tmp_path / "bk")]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["tables"] == before and Path(made["path"]).is_dir()
    services.hold(ws, SYSTEM, actor="lead", reason="freeze")
    argv = ["--workspace", str(ws.root), "restore-store", made["path"], "--reason", "undo the hold"]
    assert main(argv) == 0
    assert "restored" in capsys.readouterr().out
    assert services.holds(ws).is_empty()


def test_backup_and_restore_are_for_operators_and_refused_while_processes_run(
    sample_ws: Workspace, tmp_path: Path
) -> None:
    ws = with_documents(sample_ws)
    with pytest.raises(AccessDeniedError):
        services.backup_store(ws, tmp_path / "bk", actor="a-viewer")
    made = services.backup_store(ws, tmp_path / "bk", actor="lead").path
    with pytest.raises(AccessDeniedError):
        services.restore_store(ws, made, actor="a-viewer", reason="mine now")
    with pytest.raises(BackupError, match="outside the workspace"):
        services.backup_store(ws, ws.root / "inside", actor="lead")
    # a process of this workspace still running (as a service or the gateway would be)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "--owner", ws.owner_tag])
    try:
        time.sleep(0.2)
        with pytest.raises(StateConflictError, match=f"pids {sleeper.pid}.*'down'"):
            services.restore_store(ws, made, actor="lead", reason="while running")
    finally:
        sleeper.kill()
        sleeper.wait()


WRITER = """
import os, sys, datetime as dt
from pathlib import Path
import polars as pl
from engine.deploy.gateway import SAMPLE_COLUMNS, write_segment
from engine.store import connect, transaction
from engine.store.events import append_events
from engine.workspace import Workspace

import io, time

write_parquet = pl.DataFrame.write_parquet


def slow_disk(frame, file, **kw):  # each file reaches the disk in pieces: most kills land mid-file
    data = io.BytesIO()
    write_parquet(frame, data, **kw)
    raw, step = data.getvalue(), len(data.getvalue()) // 8 + 1
    with open(file, "wb") as out:
        for start in range(0, len(raw), step):
            out.write(raw[start : start + step])
            out.flush()
            time.sleep(0.02)


pl.DataFrame.write_parquet = slow_disk
ws = Workspace(Path(sys.argv[1]))
folder = ws.samples_dir / "system=todo_api_system" / "run=kill-test"
folder.mkdir(parents=True, exist_ok=True)
rows, events = int(sys.argv[2]), int(sys.argv[3])
now = dt.datetime.now(dt.UTC)
frame = pl.DataFrame(
    {
        "ts": [now] * rows, "run_id": ["kill-test"] * rows, "request_id": list(range(rows)),
        "endpoint": ["list"] * rows, "version": ["old"] * rows, "slot": ["blue"] * rows,
        "primary": [True] * rows, "status": [200] * rows, "ok": [True] * rows,
        "latency_ms": [1.5] * rows, "digest": ["d" * 16] * rows, "match": [True] * rows,
        "body": ["x" * 40] * rows, "called_first": [None] * rows,
        "service_ms": [None] * rows, "cpu_wait_ms": [None] * rows,
    },
    schema=SAMPLE_COLUMNS,
)
batch = 0
while True:
    with connect(ws.db_path) as con, transaction(con):
        append_events(con, [
            {"actor": "writer", "action": "durability:tick", "reason": f"{batch}:{i}", "after": {"i": i}}
            for i in range(events)
        ])
    write_segment(frame, folder / f"part-{batch:06d}.parquet")
    print(batch, flush=True)
    batch += 1
"""


@pytest.mark.parametrize("seed", [7, 11, 23])
def test_the_store_and_segments_survive_a_sigkill_mid_write(sample_ws: Workspace, seed: int) -> None:
    ws = sample_ws
    rows, events = 50_000, 50
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(ws.root), str(rows), str(events)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert writer.stdout is not None
    said: list[int] = []
    reader = threading.Thread(target=lambda: said.extend(int(line) for line in writer.stdout))
    reader.start()
    deadline = time.monotonic() + 10
    while not said and time.monotonic() < deadline:  # wait until it wrote once; from then on,
        time.sleep(0.01)  # the kill lands wherever the writer is, not just after a confirmation
    assert said, "the writer never confirmed a write"
    time.sleep(random.Random(seed).uniform(0.1, 1.2))
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    reader.join(5)
    confirmed = said[-1]

    with connect(ws.db_path) as con:  # opens (replaying the WAL) and is whole
        ticks = con.execute(
            "SELECT reason, after FROM events WHERE action = 'durability:tick' ORDER BY id"
        ).fetchall()
    batches = len(ticks) // events
    assert len(ticks) % events == 0, len(ticks)  # whole transactions only, never part of one
    assert confirmed + 1 <= batches <= confirmed + 2  # all it confirmed, at most one it had not yet said
    assert [r for r, _ in ticks] == [f"{b}:{i}" for b in range(batches) for i in range(events)]
    assert all(json.loads(a)["i"] == int(r.split(":")[1]) for r, a in ticks)

    folder = ws.samples_dir / f"system={SYSTEM}" / "run=kill-test"
    parts = sorted(folder.glob("part-*.parquet"))
    assert confirmed + 1 <= len(parts) <= confirmed + 2
    with duckdb.connect() as con:
        for part in parts:  # every segment reads fully: none is half-written
            n = con.execute("SELECT count(*), max(request_id) FROM read_parquet(?)", [str(part)]).fetchall()
            assert n == [(rows, rows - 1)], part
    assert services.status(ws, SYSTEM).version >= 1  # the app's reads work on the recovered store
