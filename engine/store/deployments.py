"""Control state of deployments: processes, routes, operations, runs, verdicts, checklist acknowledgements.

Each function runs in the caller's connection (and transaction, if any); the
services decide what goes together in one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import duckdb
import polars as pl

from engine.store.db import first_row, query_frame

LIVE_PROCESS_STATUSES = ("starting", "running")
STOPPING = "stopping"
"""Written before a stop's signal is sent and replaced by ``stopped`` once the process is gone: a stopper
killed in between leaves a row that says a stop was under way, which the next reconcile finishes."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- processes ---------------------------------------------------------------------------------------


def insert_process(
    con: duckdb.DuckDBPyConnection,
    *,
    system: str | None,
    role: str,
    runtime: str,
    pid: int,
    port: int,
    served_dir: str | None,
    log_path: str,
) -> int:
    row = first_row(
        con,
        "INSERT INTO processes (system, role, runtime, pid, port, status, served_dir, log_path, started_at) "
        "VALUES (?, ?, ?, ?, ?, 'starting', ?, ?, ?) RETURNING id",
        [system, role, runtime, pid, port, served_dir, log_path, _now()],
    )
    assert row is not None
    return int(row[0])


def set_process_status(
    con: duckdb.DuckDBPyConnection, process_id: int, status: str, reason: str | None = None
) -> None:
    stopped = None if status in (*LIVE_PROCESS_STATUSES, STOPPING) else _now()
    con.execute(
        "UPDATE processes SET status = ?, stopped_at = coalesce(?, stopped_at), "
        "stop_reason = coalesce(?, stop_reason) WHERE id = ?",
        [status, stopped, reason, process_id],
    )


def add_health_failure(con: duckdb.DuckDBPyConnection, process_id: int) -> int:
    row = first_row(
        con,
        "UPDATE processes SET health_failures = health_failures + 1 WHERE id = ? RETURNING health_failures",
        [process_id],
    )
    return int(row[0]) if row else 0


def live_processes(con: duckdb.DuckDBPyConnection, system: str | None = None) -> pl.DataFrame:
    """Processes the store believes are starting or running (all, or one system's)."""
    sql = "SELECT * FROM processes WHERE status IN ('starting', 'running')"
    params: list[Any] = []
    if system is not None:
        sql += " AND system = ?"
        params.append(system)
    return query_frame(con, sql + " ORDER BY id", params)


def stopping_processes(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Processes whose stop began and was not seen to end (see :data:`STOPPING`)."""
    return query_frame(con, "SELECT * FROM processes WHERE status = ? ORDER BY id", [STOPPING])


def live_slot(con: duckdb.DuckDBPyConnection, system: str, role: str) -> dict[str, Any] | None:
    """The newest live process of one system's slot (blue/green), or None."""
    frame = query_frame(
        con,
        "SELECT * FROM processes WHERE system = ? AND role = ? AND status IN ('starting', 'running') "
        "ORDER BY id DESC LIMIT 1",
        [system, role],
    )
    return frame.row(0, named=True) if frame.height else None


def live_gateway(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    frame = query_frame(
        con,
        "SELECT * FROM processes WHERE role = 'gateway' AND status IN ('starting', 'running') "
        "ORDER BY id DESC LIMIT 1",
    )
    return frame.row(0, named=True) if frame.height else None


def process_history(con: duckdb.DuckDBPyConnection, system: str) -> pl.DataFrame:
    return query_frame(con, "SELECT * FROM processes WHERE system = ? ORDER BY id", [system])


# -- routes ------------------------------------------------------------------------------------------


def get_route(con: duckdb.DuckDBPyConnection, system: str) -> dict[str, Any] | None:
    frame = query_frame(con, "SELECT * FROM routes WHERE system = ?", [system])
    return frame.row(0, named=True) if frame.height else None


def put_route(
    con: duckdb.DuckDBPyConnection,
    system: str,
    *,
    strategy: str,
    active_slot: str,
    canary_weight: float = 0.0,
    mirror: bool = False,
    record_run: str | None = None,
) -> None:
    con.execute(
        "INSERT OR REPLACE INTO routes VALUES (?, ?, ?, ?, ?, ?, ?)",
        [system, strategy, active_slot, canary_weight, mirror, record_run, _now()],
    )


def delete_route(con: duckdb.DuckDBPyConnection, system: str) -> None:
    con.execute("DELETE FROM routes WHERE system = ?", [system])


def all_routes(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query_frame(con, "SELECT * FROM routes ORDER BY system")


# -- operations (long actions, so an interrupted one is found and recorded) ------------------------


def start_operation(
    con: duckdb.DuckDBPyConnection, system: str, kind: str, actor: str, detail: dict[str, Any] | None = None
) -> int:
    row = first_row(
        con,
        "INSERT INTO operations (system, kind, status, pid, actor, started_at, detail) "
        "VALUES (?, ?, 'running', ?, ?, ?, ?) RETURNING id",
        [system, kind, os.getpid(), actor, _now(), json.dumps(detail or {})],
    )
    assert row is not None
    return int(row[0])


def end_operation(
    con: duckdb.DuckDBPyConnection, operation_id: int, status: str, detail: dict[str, Any] | None = None
) -> None:
    con.execute(
        "UPDATE operations SET status = ?, ended_at = ?, detail = coalesce(?, detail) WHERE id = ?",
        [status, _now(), json.dumps(detail) if detail is not None else None, operation_id],
    )


def update_operation(
    con: duckdb.DuckDBPyConnection, operation_id: int, *, system: str, detail: dict[str, Any]
) -> None:
    """Move a running operation on: the system it is at now and its progress (for a batch of systems)."""
    con.execute(
        "UPDATE operations SET system = ?, detail = ? WHERE id = ?",
        [system, json.dumps(detail), operation_id],
    )


def running_operations(con: duckdb.DuckDBPyConnection, system: str | None = None) -> pl.DataFrame:
    sql = "SELECT * FROM operations WHERE status = 'running'"
    params: list[Any] = []
    if system is not None:
        sql += " AND system = ?"
        params.append(system)
    return query_frame(con, sql + " ORDER BY id", params)


def latest_operation(con: duckdb.DuckDBPyConnection, system: str) -> dict[str, Any] | None:
    """The newest operation on ``system`` (its detail parsed), or None."""
    frame = query_frame(con, "SELECT * FROM operations WHERE system = ? ORDER BY id DESC LIMIT 1", [system])
    if not frame.height:
        return None
    row = frame.row(0, named=True)
    row["detail"] = json.loads(row["detail"]) if row["detail"] else {}
    return row


# -- runs --------------------------------------------------------------------------------------------


def create_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    system: str,
    kind: str,
    actor: str,
    *,
    duration_s: float,
    bucket_s: float,
    rps: float,
    continues: str | None = None,
) -> None:
    """A new run in status ``running``; ``continues`` names the earlier run whose samples it adds to
    (kept in ``outcome`` from the start, so a running run's evidence already reads both)."""
    con.execute(
        "INSERT INTO runs (id, system, kind, status, actor, started_at, duration_s, bucket_s, rps, outcome) "
        "VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            system,
            kind,
            actor,
            _now(),
            duration_s,
            bucket_s,
            rps,
            json.dumps({"continues": continues}) if continues else None,
        ],
    )


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    status: str,
    *,
    sent: int | None = None,
    lost: int | None = None,
    samples: int | None = None,
    outcome: dict[str, Any] | None = None,
) -> None:
    started = first_row(con, "SELECT outcome FROM runs WHERE id = ?", [run_id])
    kept = json.loads(started[0]) if started and started[0] else {}  # what the run recorded at its start
    con.execute(
        "UPDATE runs SET status = ?, ended_at = ?, sent = ?, lost = ?, samples = ?, outcome = ? WHERE id = ?",
        [status, _now(), sent, lost, samples, json.dumps(kept | (outcome or {})), run_id],
    )


def request_stop(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    rows = con.execute(
        "UPDATE runs SET stop_requested = true WHERE id = ? AND status = 'running' RETURNING id", [run_id]
    ).fetchall()
    return bool(rows)


def get_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    frame = query_frame(con, "SELECT * FROM runs WHERE id = ?", [run_id])
    return frame.row(0, named=True) if frame.height else None


def list_runs(con: duckdb.DuckDBPyConnection, system: str) -> pl.DataFrame:
    return query_frame(con, "SELECT * FROM runs WHERE system = ? ORDER BY started_at DESC", [system])


def latest_run(
    con: duckdb.DuckDBPyConnection, system: str, kind: str = "parallel", status: str | None = None
) -> dict[str, Any] | None:
    sql = "SELECT * FROM runs WHERE system = ? AND kind = ?"
    params: list[Any] = [system, kind]
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    frame = query_frame(con, sql + " ORDER BY started_at DESC LIMIT 1", params)
    return frame.row(0, named=True) if frame.height else None


# -- verdicts ----------------------------------------------------------------------------------------


def insert_verdict(
    con: duckdb.DuckDBPyConnection, system: str, run_id: str, result: dict[str, Any], actor: str
) -> int:
    row = first_row(
        con,
        "INSERT INTO verdicts (ts, system, run_id, verdict, new_better, actor, result) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [_now(), system, run_id, result["verdict"], bool(result["new_better"]), actor, json.dumps(result)],
    )
    assert row is not None
    return int(row[0])


def latest_verdict(con: duckdb.DuckDBPyConnection, system: str) -> dict[str, Any] | None:
    frame = query_frame(
        con, "SELECT * FROM verdicts WHERE system = ? ORDER BY ts DESC, id DESC LIMIT 1", [system]
    )
    if not frame.height:
        return None
    row = frame.row(0, named=True)
    row["result"] = json.loads(row["result"])
    return row


# -- checklist acknowledgements ----------------------------------------------------------------------


def add_ack(con: duckdb.DuckDBPyConnection, system: str, item: str, actor: str, note: str | None) -> None:
    con.execute(
        "INSERT INTO checklist_acks (ts, system, item, actor, note) VALUES (?, ?, ?, ?, ?)",
        [_now(), system, item, actor, note],
    )


def latest_ack(con: duckdb.DuckDBPyConnection, system: str, item: str) -> dict[str, Any] | None:
    frame = query_frame(
        con,
        "SELECT * FROM checklist_acks WHERE system = ? AND item = ? ORDER BY ts DESC, id DESC LIMIT 1",
        [system, item],
    )
    return frame.row(0, named=True) if frame.height else None
