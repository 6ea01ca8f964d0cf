"""Concurrency: two clicks at once, a CLI command while another process holds the store, reads during writes.

Two Promote or two Roll back clicks on the same system at the same moment
(two threads of the app, or two CLI processes) give exactly one transition and
one clear "state changed" error; the race runs through the real use cases up
to the point where the claim (version check and running-operation check in
one transaction, ``engine.store.systems.claim``) decides. A command that finds
the store's file locked by another process waits, and then says which process
holds it. Reading a run's evidence works while its segments are being written.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from engine import services
from engine.deploy import strategies
from engine.deploy.gateway import SampleBuffer
from engine.errors import StateConflictError
from engine.parallel.run import WatchOutcome
from engine.parallel.workload import WorkloadStats
from engine.rollback import backups
from engine.rollback.manager import RollbackOutcome
from engine.store import connect
from engine.store import systems as systems_store
from engine.store.db import first_row
from engine.store.samples import query_run
from engine.workspace import Workspace
from tests.governance.test_governance import RUN, SYSTEM, judged

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def judged_ws(sample_ws: Workspace) -> Iterator[Workspace]:
    """SYSTEM judged GO on a stored run, with a backup of its old version; every process stopped after."""
    ws = judged(sample_ws)
    with connect(ws.db_path) as con:
        source = Path(
            con.execute("SELECT source_path FROM systems WHERE name = ?", [SYSTEM]).fetchall()[0][0]
        )
    backups.ensure_backup(ws, SYSTEM, source if source.is_dir() else source.parent)
    try:
        yield ws
    finally:
        services.down(ws, actor="tester")


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run ``calls`` in threads released at the same moment; each result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the test looks at what each click got
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def state_events(ws: Workspace, action: str) -> int:
    return services.list_events(ws, system=SYSTEM, action=action).height


def operations(ws: Workspace, kind: str) -> int:
    """How many ``kind`` operations were ever started on SYSTEM."""
    with connect(ws.db_path) as con:
        row = first_row(con, "SELECT count(*) FROM operations WHERE system = ? AND kind = ?", [SYSTEM, kind])
    assert row is not None
    return int(row[0])


def one_winner_one_conflict(results: list[Any], kind: type) -> tuple[Any, StateConflictError]:
    won = [r for r in results if isinstance(r, kind)]
    lost = [r for r in results if isinstance(r, StateConflictError)]
    assert len(won) == 1 and len(lost) == 1, results
    assert "state changed" in str(lost[0]) and "reload" in str(lost[0])
    return won[0], lost[0]


def test_two_rollback_clicks_at_once_in_two_threads_roll_back_once(judged_ws: Workspace) -> None:
    ws = judged_ws
    seen = services.status(ws, SYSTEM).version
    results = at_once(
        *(
            lambda who=who: services.rollback(
                ws, SYSTEM, actor=who, reason="team decision", expected_version=seen
            )
            for who in ("lead", "tester")
        )
    )
    won, _ = one_winner_one_conflict(results, RollbackOutcome)
    assert won.state == "rolled_back" and won.verified
    status = services.status(ws, SYSTEM)
    assert (status.state, status.version) == ("rolled_back", seen + 1)
    assert state_events(ws, "state:rolled_back") == 1
    assert operations(ws, "rollback") == 1  # the loser did nothing: no second restore
    assert [p["role"] for p in status.processes] == ["blue"]  # one restored blue, not two
    assert len(list(ws.failures_dir.glob(f"{SYSTEM}_*.json"))) == 1


def test_two_promote_clicks_at_once_in_two_threads_promote_once(
    judged_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = judged_ws

    def clean_window(ws: Workspace, system: str, **kw: Any) -> WatchOutcome:
        """The monitor window, shortened: it passes clean after a moment (the race is decided before)."""
        time.sleep(0.5)
        return WatchOutcome(run_id="monitor-test", status="completed", stats=WorkloadStats())

    monkeypatch.setattr(strategies, "watch", clean_window)
    seen = services.status(ws, SYSTEM).version
    results = at_once(
        *(
            lambda who=who: services.promote(
                ws, SYSTEM, actor=who, reason="GO", expected_version=seen, warm_s=0
            )
            for who in ("lead", "tester")
        )
    )
    won, _ = one_winner_one_conflict(results, strategies.PromoteOutcome)
    assert won.promoted and won.state == "done"
    assert state_events(ws, "state:promoted") == 1
    assert state_events(ws, "state:done") == 1
    assert operations(ws, "promote") == 1
    assert services.status(ws, SYSTEM).version == seen + 3  # promoted, monitoring, done: one promotion


def test_two_claims_in_the_worst_order_let_one_through(
    sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim on its own, B reading while A's claim is open: DuckDB alone would let both through.

    Both would find no rollback running and both insert one (inserts never
    conflict in DuckDB); one write transaction at a time per process
    (``engine.store.db.transaction``) makes B read after A committed.
    """
    ws = judged(sample_ws)
    with connect(ws.db_path) as con:
        seen = int(systems_store.get_system(con, SYSTEM)["version"])
    a_reading, b_read = threading.Event(), threading.Event()
    real_running = systems_store.running_operations
    local = threading.local()

    def running_in_order(con: Any, system: str | None = None) -> Any:
        found = real_running(con, system)
        if getattr(local, "who", None) == "lead":
            a_reading.set()
            b_read.wait(1.0)  # B reads now, unless it has to wait for A's transaction to end
        elif getattr(local, "who", None) == "tester":
            b_read.set()
        return found

    monkeypatch.setattr(systems_store, "running_operations", running_in_order)

    def claim(who: str) -> Any:
        local.who = who
        if who == "tester":
            a_reading.wait(5.0)
        with connect(ws.db_path) as con:
            return systems_store.claim(con, SYSTEM, "rollback", actor=who, seen_version=seen)

    results = at_once(lambda: claim("lead"), lambda: claim("tester"))
    one_winner_one_conflict(results, int)
    assert operations(ws, "rollback") == 1


def test_a_stale_promote_after_a_rollback_is_refused(judged_ws: Workspace) -> None:
    ws = judged_ws
    seen = services.status(ws, SYSTEM).version
    services.rollback(ws, SYSTEM, actor="lead", reason="team decision", expected_version=seen)
    with pytest.raises(StateConflictError, match="state changed since you loaded it"):
        services.promote(ws, SYSTEM, actor="tester", reason="GO", expected_version=seen)
    assert state_events(ws, "state:promoted") == 0


def cli(ws: Workspace, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "--workspace", str(ws.root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def test_two_rollback_commands_at_once_in_two_processes_roll_back_once(judged_ws: Workspace) -> None:
    ws = judged_ws
    seen = services.status(ws, SYSTEM).version
    args = ("rollback", SYSTEM, "--reason", "team decision", "--expected-version", str(seen))
    procs = [cli(ws, *args, "--actor", who) for who in ("lead", "tester")]
    outs = [(p.wait(60), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in outs)
    assert codes == [0, 2], outs
    loser = next(err for code, _, err in outs if code == 2)
    assert loser.startswith("error: ") and "state changed" in loser and "Traceback" not in loser
    status = services.status(ws, SYSTEM)
    assert (status.state, status.version) == ("rolled_back", seen + 1)
    assert state_events(ws, "state:rolled_back") == 1
    assert operations(ws, "rollback") == 1
    assert [p["role"] for p in status.processes] == ["blue"]


def hold_store(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding a write connection to ``path`` for ``seconds`` (says 'held' once it has it)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('held', flush=True); time.sleep(float(sys.argv[2])); c.close(); time.sleep(60)",
            str(path),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_cli_command_while_another_process_holds_the_store_says_which_one(sample_ws: Workspace) -> None:
    holder = hold_store(sample_ws.db_path, 120)
    try:
        started = time.monotonic()
        proc = cli(sample_ws, "status", SYSTEM)
        code = proc.wait(30)
        _, err = proc.communicate()
        assert time.monotonic() - started >= 4  # it waited for the lock before giving up
    finally:
        holder.kill()
        holder.wait()
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert f"in use by process {holder.pid} (python" in err and "try again" in err
    assert services.status(sample_ws, SYSTEM).version >= 1  # the store opens again once released


def test_a_cli_command_waits_for_a_lock_released_within_the_wait(sample_ws: Workspace) -> None:
    holder = hold_store(sample_ws.db_path, 1.5)
    try:
        started = time.monotonic()
        proc = cli(sample_ws, "status", SYSTEM)
        code = proc.wait(30)
        out, err = proc.communicate()
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert code == 0, err
    assert f"{SYSTEM}: " in out and waited >= 1.0


def slow_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parquet files reach the disk in pieces, as on a slow or busy disk: a reader can meet half a file."""
    write_parquet = pl.DataFrame.write_parquet

    def in_pieces(frame: pl.DataFrame, file: Any, **kw: Any) -> None:
        data = io.BytesIO()
        write_parquet(frame, data, **kw)
        raw = data.getvalue()
        with open(file, "wb") as out:
            for start in range(0, len(raw), len(raw) // 4 + 1):
                out.write(raw[start : start + len(raw) // 4 + 1])
                out.flush()
                time.sleep(0.01)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", in_pieces)


def test_reading_run_evidence_works_while_segments_are_being_written(
    sample_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway's writer (temp name, then rename) in one thread; the Go/No-Go page's reads in another."""
    ws = judged(sample_ws)
    slow_disk(monkeypatch)
    base = query_run(ws, SYSTEM, RUN, "SELECT count(*) AS n FROM s")
    assert base is not None
    base_rows = int(base["n"][0])
    per_segment, segments = 5_000, 40
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        buffer = SampleBuffer(ws.samples_dir)
        now = dt.datetime.now(dt.UTC)
        try:
            for seg in range(segments):
                for i in range(per_segment):
                    slot = "blue" if i % 2 == 0 else "green"
                    buffer.add(
                        SYSTEM,
                        RUN,
                        ts=now + dt.timedelta(milliseconds=seg * per_segment + i),
                        request_id=seg * per_segment + i // 2,
                        slot=slot,
                        primary=slot == "blue",
                        version="old" if slot == "blue" else "new",
                        endpoint="list",
                        status=200,
                        ok=True,
                        latency_ms=1.0 + i % 7,
                        digest="d",
                        match=True,
                        body=None,
                    )
                buffer.flush()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    counts, reads = [], 0
    while not done.is_set() or reads < 2:
        frame = query_run(ws, SYSTEM, RUN, "SELECT count(*) AS n FROM s")
        assert frame is not None
        counts.append(int(frame["n"][0]))
        evidence = services.run_evidence(ws, SYSTEM)  # what the page draws; the control store stays usable
        assert evidence.run is not None and evidence.run["id"] == RUN
        assert services.status(ws, SYSTEM).state == "judged"
        reads += 1
    writer.join(30)
    assert not errors, errors
    assert all((n - base_rows) % per_segment == 0 for n in counts), counts  # whole segments only
    assert counts == sorted(counts)
    final = query_run(ws, SYSTEM, RUN, "SELECT count(*) AS n FROM s")
    assert final is not None and int(final["n"][0]) == base_rows + per_segment * segments
    with duckdb.connect() as con:  # every segment reads fully on its own
        for part in sorted((ws.samples_dir / f"system={SYSTEM}" / f"run={RUN}").glob("*.parquet")):
            con.execute("SELECT count(*) FROM read_parquet(?)", [str(part)]).fetchall()
    assert not list(ws.samples_dir.rglob("*.tmp"))
