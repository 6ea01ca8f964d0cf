"""The two slots of a system: blue (old, v1 on the RPC runtime) and green (new, v2 on the port runtime).

Each slot serves from its own copy under ``live/<name>/``, so a later
re-conversion or a restore never changes files under a running process.
Blue is always served from a backup, which is what a rollback restores.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from engine.deploy import supervisor
from engine.deploy.http import HttpError, Upstream
from engine.judge.policy import SandboxPolicy
from engine.parallel.workload import request_mix
from engine.rollback.backups import copy_tree_atomically, latest_backup
from engine.store import connect, transaction
from engine.store import deployments as store
from engine.workspace import Workspace, safe_child

SERVICE_MEMORY_MB = SandboxPolicy().service_memory_mb
"""A served version's memory beyond the runtime's, when the caller does not pass the policy's."""

SMOKE_TIMEOUT_S = 5.0
"""Bound on each smoke request: a local service that takes longer is not answering."""


def slot_dir(ws: Workspace, name: str, slot: str) -> Path:
    return safe_child(ws.live_dir, name) / slot


def live(ws: Workspace, name: str, slot: str) -> dict[str, Any] | None:
    """The slot's live process row if it is really running and answering, else None."""
    with connect(ws.db_path) as con:
        row = store.live_slot(con, name, slot)
    if row is None or not supervisor.is_ours(int(row["pid"]), ws) or not supervisor.healthy(int(row["port"])):
        return None
    return row


def _start_slot(
    ws: Workspace,
    name: str,
    slot: str,
    runtime: str,
    source: Path,
    actor: str,
    timeout_s: float,
    memory_mb: int,
) -> dict[str, Any]:
    """Copy ``source`` into ``live/<name>/<slot>`` and serve it there on ``runtime``, within ``memory_mb``."""
    target = slot_dir(ws, name, slot)
    target.parent.mkdir(parents=True, exist_ok=True)
    copy_tree_atomically(source, target)
    return supervisor.start_process(
        ws,
        system=name,
        role=slot,
        runtime=runtime,
        args=[
            "engine.runtime.serve",
            "--system-dir",
            str(target),
            "--runtime",
            runtime,
            "--memory-mb",
            str(memory_mb),
            "--confine-writes",
        ],
        served_dir=target,
        health_path="/health",
        actor=actor,
        timeout_s=timeout_s,
    )


def start_blue(
    ws: Workspace, name: str, actor: str, timeout_s: float, memory_mb: int = SERVICE_MEMORY_MB
) -> dict[str, Any]:
    """Restore the newest backup into ``live/<name>/blue`` and start v1 from it."""
    return start_old(ws, name, "blue", actor, timeout_s, memory_mb)


def start_old(
    ws: Workspace, name: str, role: str, actor: str, timeout_s: float, memory_mb: int = SERVICE_MEMORY_MB
) -> dict[str, Any]:
    """Serve the old version (v1, from the newest backup) as ``role``: blue, or a copy for an A/A run."""
    backup = latest_backup(ws, name)
    if backup is None:
        raise supervisor.DeployError(
            f"{name}: no backup under {ws.backups_dir} to serve the old version from"
        )
    return _start_slot(ws, name, role, "v1", backup, actor, timeout_s, memory_mb)


def start_green(
    ws: Workspace, name: str, actor: str, timeout_s: float, memory_mb: int = SERVICE_MEMORY_MB
) -> dict[str, Any]:
    """Copy the converted system into ``live/<name>/green`` and start v2 from it."""
    source = safe_child(ws.v2_dir, name)
    if not (source / "blueprint.yaml").is_file():
        raise supervisor.DeployError(f"{name}: not converted (no {source / 'blueprint.yaml'})")
    return _start_slot(ws, name, "green", "v2", source, actor, timeout_s, memory_mb)


def stop_slot(ws: Workspace, name: str, slot: str, reason: str, actor: str) -> None:
    """Stop every live process of the slot, after the gateway has finished what it sent them."""
    with connect(ws.db_path) as con:
        rows = store.live_processes(con, name)
    for row in rows.filter(rows["role"] == slot).iter_rows(named=True):
        supervisor.wait_drained(ws, int(row["port"]))
        supervisor.stop_process(ws, row, reason, actor)


def route_alone(ws: Workspace, name: str, active: str) -> None:
    """Route ``name`` to the ``active`` slot alone: no canary share, no mirror, no run recording samples.

    Only the store's route is written (what a recovery settles before it
    publishes every route once); nothing when the system has no route.
    """
    with connect(ws.db_path) as con, transaction(con):
        route = store.get_route(con, name)
        if route is not None:
            store.put_route(con, name, strategy=route["strategy"], active_slot=active)


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def smoke_test(
    port: int, path_prefix: str = "/call", variants: int = 3, endpoints_port: int | None = None
) -> list[str]:
    """Send a few requests to every entry endpoint; each problem is one line (empty list: it answers).

    The endpoints are read from the service on ``endpoints_port`` (default
    ``port``), so the same test can go through the gateway. A service that
    does not answer, answers garbage or hangs is a problem reported here, never
    an exception: a rollback's verification turns problems into ``emergency``,
    and each request is bounded by :data:`SMOKE_TIMEOUT_S`.
    """
    try:
        endpoints = supervisor.get_json(endpoints_port or port, "/endpoints")["endpoints"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"/endpoints: no usable answer ({type(exc).__name__}: {exc})"]
    try:
        mix = request_mix(endpoints, variants=variants)
    except (ValueError, TypeError, AttributeError) as exc:  # none, or not a mapping of shapes
        return [f"/endpoints: {exc}"]

    async def run() -> list[str]:
        upstream = Upstream(supervisor.LOOPBACK, port)
        problems = []
        try:
            for endpoint, body in mix:
                try:
                    status, payload = await upstream.request(
                        "POST", f"{path_prefix}/{endpoint}", body, timeout=SMOKE_TIMEOUT_S
                    )
                except (OSError, HttpError) as exc:
                    # one request without an answer is enough: the rest would each wait out the timeout
                    problems.append(f"{endpoint}: no answer ({type(exc).__name__}: {exc})")
                    break
                if status == 200 and not _is_json(payload):
                    problems.append(f"{endpoint}: HTTP 200 but not JSON: {payload[:80]!r}")
                    continue
                if status != 200:
                    try:
                        detail = json.loads(payload or b"{}").get("error", {}).get("detail", "")
                    except (ValueError, AttributeError):
                        detail = payload[:200].decode(errors="replace")
                    problems.append(f"{endpoint}: HTTP {status} {detail}".strip())
        finally:
            upstream.close()
        return problems

    return asyncio.run(run())
