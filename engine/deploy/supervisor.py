"""Start, health-check, stop and reconcile the OS processes a workspace runs.

Every process gets ``--owner <workspace>`` on its command line and its own
session (so it outlives the CLI command that started it, and a stop signal
reaches its whole group). The store records pid, port and status; on every
start-up :func:`reconcile` compares that with what really runs: a row whose
process is gone becomes ``lost``, a process of this workspace that no live
row claims is an orphan and is stopped, and an operation whose owner died is
marked ``interrupted``. Each finding is an audit event.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import SwitchyardError
from engine.judge.policy import load_policy
from engine.metrics.decisions import refresh_decisions
from engine.store import connect, transaction
from engine.store import deployments as store
from engine.store.events import append_events
from engine.workspace import REPO_ROOT, Workspace, safe_child

LOOPBACK = "127.0.0.1"
STOP_GRACE_S = 5.0
STARTED_BY = "SWITCHYARD_STARTED_BY"
"""Environment variable naming the pid of the process that started a child (see :func:`being_started`)."""
START_GRACE_S = 60.0
"""How long a child whose starter is alive may stay unrecorded before reconcile treats it as an orphan:
well beyond the store's lock wait (``LOCK_RETRY_SECONDS``), which is what can hold up the recording."""


class DeployError(SwitchyardError):
    """A process would not start, answer or stop as it should."""


def free_port() -> int:
    """A port free on loopback right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a pid of another user counts as existing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def is_ours(pid: int, ws: Workspace) -> bool:
    """Whether ``pid`` is alive and is a process this workspace started (guards against pid reuse)."""
    if not pid_alive(pid):
        return False
    cmd = _cmdline(pid)
    return not cmd or f"--owner {ws.owner_tag}" in cmd


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


def being_started(pid: int) -> bool:
    """Whether ``pid`` is a child that its starter, still alive, has not recorded yet.

    :func:`start_process` spawns first and records the pid right after (the
    pid only exists once the child does). A :func:`reconcile` in another
    process (or thread) in between would see an unclaimed process of this
    workspace and stop it as an orphan. The child carries its starter's pid in
    its environment (``SWITCHYARD_STARTED_BY``); while that starter is alive
    and still its parent (a killed starter's children are re-parented), and
    the child is younger than ``START_GRACE_S``, it is spared. A starter that
    dies leaves a real orphan, stopped by the next reconcile.
    """
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return False
    prefix = f"{STARTED_BY}=".encode()
    starter = next((e[len(prefix) :].decode() for e in environ if e.startswith(prefix)), "")
    ppid, started_ticks = int(fields[1]), int(fields[19])
    age_s = uptime - started_ticks / os.sysconf("SC_CLK_TCK")
    return starter == str(ppid) and ppid > 1 and pid_alive(ppid) and age_s < START_GRACE_S


def owned_pids(ws: Workspace) -> set[int]:
    """Every live process whose command line carries this workspace's owner tag."""
    tag = f"--owner {ws.owner_tag}"
    found = set()
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid != os.getpid() and tag in _cmdline(pid) and not _is_zombie(pid):
            found.add(pid)
    return found


class PeerError(OSError):
    """The peer answered, but not with HTTP and JSON (garbage, an answer cut short).

    An OSError, so every caller that treats "no answer" as a failure treats
    garbage the same way instead of letting ``http.client``'s errors through.
    """


def _call(request: urllib.request.Request | str, timeout: float) -> Any:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except (http.client.HTTPException, ValueError) as exc:
        raise PeerError(f"{type(exc).__name__}: {exc}") from exc


def get_json(port: int, path: str, timeout: float = 2.0) -> dict[str, Any]:
    """GET a JSON document from a local process; OSError (PeerError for garbage) if it fails."""
    answer: dict[str, Any] = _call(f"http://{LOOPBACK}:{port}{path}", timeout)
    return answer


def post_json(port: int, path: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
    """POST JSON to a local process and read its JSON answer; OSError (PeerError for garbage) if it fails."""
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{port}{path}",
        data=json.dumps(body or {}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    return _call(request, timeout)


def healthy(port: int, path: str = "/health") -> bool:
    """Whether the process answers its health check within a second (garbage and hangs are False)."""
    try:
        answer = get_json(port, path, timeout=1.0)
    except (OSError, ValueError):
        return False
    return isinstance(answer, dict) and answer.get("status") in ("ok", "degraded")


def _wait_healthy(
    proc: subprocess.Popen[bytes],
    port: int,
    path: str,
    timeout_s: float,
    log: Path,
    *,
    log_from: int = 0,
    served_dir: Path | None = None,
) -> None:
    """Wait for ``path`` to answer, else a one-line DeployError (``log_from``: this start's log)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = _exit_reason(_log_since(log, log_from), served_dir)
            raise DeployError(
                f"process exited with code {proc.returncode} before answering" + (f": {said}" if said else "")
            )
        if healthy(port, path):
            return
        time.sleep(0.05)
    stuck = where_stuck(proc.pid, log, log_from, served_dir) if served_dir is not None else None
    raise DeployError(
        f"no answer on {path} of port {port} within {timeout_s:.0f} s" + (f": {stuck}" if stuck else "")
    )


def _log_since(log: Path, offset: int) -> str:
    try:
        with log.open("rb") as f:
            f.seek(offset)
            return f.read(1 << 20).decode(errors="replace")
    except OSError:
        return ""


STACK_SIGNAL = signal.SIGUSR1
"""On this signal a served version writes its threads' stacks to its log (``engine.runtime.serve``)."""
_FRAME = re.compile(r'^[\s|]*File "(?P<path>[^"]+)", line (?P<line>\d+),? in (?P<func>\S+)', re.M)
"""A frame in a traceback (``line 3, in f``) or in faulthandler's dump (``line 3 in f``)."""
_RAISED = re.compile(r"^[\s|]*(?!BaseExceptionGroup)([A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b.*)$", re.M)


def _exit_reason(text: str, served_dir: Path | None) -> str:
    """One line from the log of a process that ended as it started: the exception and the team's line.

    ``SystemExit: no licence server (components/front.py line 3)`` from a
    traceback; the last line said otherwise (what ``sys.exit("...")`` prints).
    """
    raised = _RAISED.findall(text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = raised[-1].strip() if raised else (lines[-1] if lines else "")
    where = _team_frames(text, served_dir)
    return said + (f" ({where[-1][0]} line {where[-1][1]})" if said and where else "")


def _team_frames(text: str, served_dir: Path | None) -> list[tuple[Path, str, str]]:
    """(file under ``served_dir``, line, function) of every frame in ``text`` that is the team's code."""
    if served_dir is None:
        return []
    root = served_dir.resolve()
    found = []
    for frame in _FRAME.finditer(text):
        path = Path(frame["path"]).resolve()
        if path.is_relative_to(root):
            found.append((path.relative_to(root), frame["line"], frame["func"]))
    return found


def where_stuck(pid: int, log: Path, log_from: int, served_dir: Path, wait_s: float = 2.0) -> str | None:
    """Where a started version that does not answer is stuck in its own code, or None if not there.

    The version dumps its stacks on :data:`STACK_SIGNAL` (faulthandler, which
    acts even in a busy loop); the innermost frame in a file under
    ``served_dir`` names the team's line: ``still importing
    components/front.py (line 6)``, or ``still in components/front.py line 9
    (__init__)`` for a component that loops while it is built.
    """
    try:
        os.kill(pid, STACK_SIGNAL)
    except OSError:
        return None
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        dump = _log_since(log, log_from)
        if "most recent call first" in dump:
            time.sleep(0.1)  # the dump is written at once; let its last lines land
            break
        time.sleep(0.05)
    else:
        return None
    frames = _team_frames(_log_since(log, log_from), served_dir)  # each thread innermost first
    if not frames:
        return None
    where, line, func = frames[0]
    if func == "<module>":
        return f"still importing {where} (line {line})"
    return f"still in {where} line {line} ({func})"


def _terminate(pid: int, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace_s``.

    SIGCONT follows the SIGTERM: a stopped (hung) process only acts on its
    pending SIGTERM once it runs again, and would otherwise hold up the stop
    for the whole grace period.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
        os.killpg(pid, signal.SIGCONT)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if _is_zombie(pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _python_path() -> str:
    """``$PYTHONPATH`` with the repository first, so ``-m engine...`` resolves from any working folder."""
    return os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)


def start_process(
    ws: Workspace,
    *,
    system: str | None,
    role: str,
    runtime: str,
    args: list[str],
    served_dir: Path | None,
    health_path: str,
    actor: str,
    timeout_s: float = 20.0,
) -> dict[str, Any]:
    """Start ``python -m <args> --port P --owner TAG`` and record it; returns its process row.

    The row is written as soon as the pid exists, so a crash before the
    health check leaves a row the next reconcile can settle; if the process
    never becomes healthy it is stopped and the row says why. Between the
    spawn and that row the child is claimed by its environment
    (:func:`being_started`), so another process's reconcile does not stop it;
    if the row cannot be written, the child is stopped before the error goes on.
    """
    ws.ensure()
    port = free_port()
    label = f"{system}-{role}" if system is not None else role
    log = ws.logs_dir / f"{role}.log" if system is None else safe_child(ws.logs_dir, system, f"-{role}.log")
    with log.open("ab") as out:
        log_from = out.tell()  # what this start writes: the log keeps earlier starts' lines
        proc = subprocess.Popen(
            # -P: the working folder is not on the import path, so a file there never shadows a module
            [sys.executable, "-P", "-m", *args, "--port", str(port), "--owner", ws.owner_tag],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=served_dir or REPO_ROOT,  # a served system's relative paths land in its own copy
            env=os.environ | {STARTED_BY: str(os.getpid()), "PYTHONPATH": _python_path()},
        )
    try:
        with connect(ws.db_path) as con, transaction(con):
            process_id = store.insert_process(
                con,
                system=system,
                role=role,
                runtime=runtime,
                pid=proc.pid,
                port=port,
                served_dir=str(served_dir) if served_dir else None,
                log_path=str(log),
            )
    except BaseException:
        _terminate(proc.pid, 1.0)  # unrecorded, it would run on unclaimed until a reconcile
        raise
    try:
        _wait_healthy(proc, port, health_path, timeout_s, log, log_from=log_from, served_dir=served_dir)
    except DeployError as exc:
        _terminate(proc.pid, 1.0)
        with connect(ws.db_path) as con, transaction(con):
            store.set_process_status(con, process_id, "failed", str(exc))
            append_events(con, [_event(actor, system, "process:failed", str(exc), role, proc.pid, port)])
        raise DeployError(f"{label}: {exc}") from exc
    with connect(ws.db_path) as con, transaction(con):
        store.set_process_status(con, process_id, "running")
        append_events(
            con, [_event(actor, system, "process:start", f"{runtime} on port {port}", role, proc.pid, port)]
        )
    return {"id": process_id, "pid": proc.pid, "port": port, "role": role, "runtime": runtime}


def _event(
    actor: str, system: str | None, action: str, reason: str, role: str, pid: int, port: int
) -> dict[str, Any]:
    return {
        "actor": actor,
        "system": system,
        "action": action,
        "reason": reason,
        "after": {"role": role, "pid": pid, "port": port},
    }


def stop_process(ws: Workspace, row: dict[str, Any], reason: str, actor: str) -> None:
    """Stop one recorded process (if still ours) and mark its row stopped.

    The row says ``stopping`` before the signal goes: a process that took its
    SIGTERM and is still draining when this stopper is killed would otherwise
    pass the next reconcile as live and then vanish under its ``running`` row.
    """
    with connect(ws.db_path) as con, transaction(con):
        store.set_process_status(con, int(row["id"]), store.STOPPING, reason)
    if is_ours(int(row["pid"]), ws):
        _terminate(int(row["pid"]))
    with connect(ws.db_path) as con, transaction(con):
        store.set_process_status(con, int(row["id"]), "stopped", reason)
        append_events(
            con,
            [
                _event(
                    actor,
                    row["system"],
                    "process:stop",
                    reason,
                    row["role"],
                    int(row["pid"]),
                    int(row["port"]),
                )
            ],
        )


def ensure_gateway(ws: Workspace, actor: str) -> int:
    """The port of this workspace's gateway, starting it if none runs."""
    with connect(ws.db_path) as con:
        row = store.live_gateway(con)
    if row is not None and is_ours(int(row["pid"]), ws) and healthy(int(row["port"]), "/_switchyard/health"):
        return int(row["port"])
    if row is not None:
        stop_process(ws, row, "gateway not answering; replaced", actor)
    write_routes_file(ws)
    started = start_process(
        ws,
        system=None,
        role="gateway",
        runtime="gateway",
        args=[
            "engine.deploy.gateway",
            "--routes",
            str(routes_file(ws)),
            "--samples-dir",
            str(ws.samples_dir),
        ],
        served_dir=None,
        health_path="/_switchyard/health",
        actor=actor,
    )
    return int(started["port"])


def routes_file(ws: Workspace) -> Path:
    return ws.run_dir / "routes.json"


AA_ROUTE = "@aa"
"""Suffix of an A/A route: ``<system>@aa`` mirrors one copy of the old version to another (a calibration)."""
AA_SLOTS = {"aa_old": ("blue", "old"), "aa_new": ("green", "new")}
"""Process role of each copy in an A/A run -> the slot it takes and the version it stands for."""


def routes_document(ws: Workspace) -> dict[str, Any]:
    """The gateway's table, built from the routes and the live processes in the store.

    An A/A route (``<system>@aa``) takes its slots from the system's two copies
    of the old version, the second labelled ``new``, and records its samples
    under the system itself (``samples_as``), so a calibration run reads like any
    other run of the system.
    """
    with connect(ws.db_path) as con:
        routes = store.all_routes(con)
        procs = store.live_processes(con)
    systems: dict[str, Any] = {}
    for route in routes.iter_rows(named=True):
        key = route["system"]
        system, aa, _ = key.partition(AA_ROUTE)
        slots = {}
        for p in procs.filter(procs["system"] == system).iter_rows(named=True):
            if aa and p["role"] in AA_SLOTS:
                slot, version = AA_SLOTS[p["role"]]
                slots[slot] = {"port": int(p["port"]), "version": version}
            elif not aa and p["role"] in ("blue", "green"):
                version = "old" if p["runtime"] == "v1" else "new"
                slots[p["role"]] = {"port": int(p["port"]), "version": version}
        systems[key] = {
            "active": route["active_slot"],
            "canary_weight": float(route["canary_weight"]),
            "mirror": bool(route["mirror"]),
            "record_run": route["record_run"],
            "slots": slots,
        } | ({"samples_as": system} if aa else {})
    return {"systems": systems, "record_requests": record_requests_settings()}


def record_requests_settings() -> dict[str, int]:
    """The policy's ``[recorded_requests]`` as the gateway reads it (``record_requests`` in the routes file).

    A policy file that does not load turns recording off rather than failing
    a switch or a rollback: request bodies may carry user data, and a setting
    that cannot be read is not consent to keep them.
    """
    try:
        recorded = load_policy().recorded_requests
    except SwitchyardError:
        return {"per_endpoint": 0, "max_body_bytes": 0}
    return {"per_endpoint": recorded.keep_per_endpoint, "max_body_bytes": recorded.max_body_bytes}


def write_routes_file(ws: Workspace) -> dict[str, Any]:
    """Write the gateway's table atomically (temp file, then rename)."""
    ws.ensure()
    document = routes_document(ws)
    target = routes_file(ws)
    temp = target.with_suffix(".json.tmp")
    temp.write_text(json.dumps(document, indent=2))
    os.replace(temp, target)
    refresh_decisions(ws)  # the gateway's /metrics reads it beside the routes
    return document


def publish_routes(ws: Workspace, actor: str) -> dict[str, Any]:
    """Write the table and make the gateway load it now; returns what was published."""
    document = write_routes_file(ws)
    port = ensure_gateway(ws, actor)
    post_json(port, "/_switchyard/reload")
    return document


def gateway_port(ws: Workspace) -> int | None:
    with connect(ws.db_path) as con:
        row = store.live_gateway(con)
    return int(row["port"]) if row is not None else None


def flush_samples(ws: Workspace) -> None:
    """Ask the gateway to write what it has buffered now (before reading a run's samples)."""
    port = gateway_port(ws)
    if port is not None:
        with contextlib.suppress(OSError):
            post_json(port, "/_switchyard/flush")


def wait_drained(ws: Workspace, port: int, timeout_s: float = 10.0) -> None:
    """Wait until the gateway has no request in flight to ``port`` (before stopping that process)."""
    gw = gateway_port(ws)
    if gw is None:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            in_flight = get_json(gw, "/_switchyard/stats").get("in_flight", {})
        except OSError:
            return
        if not in_flight.get(str(port)):
            return
        time.sleep(0.05)


Settle = Callable[[dict[str, Any]], str | None]
"""Called by :func:`reconcile` for each interrupted operation before it is recorded; says what to do next."""


def reconcile(ws: Workspace, actor: str = "supervisor", settle: Settle | None = None) -> list[dict[str, Any]]:
    """Make the store and the running processes agree; returns the findings (also recorded as events).

    An interrupted operation is handed to ``settle`` (which puts right what it
    left half done) before it is marked ``interrupted``; the finding, the
    event's reason and the operation's detail then carry ``next``, what the
    operator should do now.
    """
    findings: list[dict[str, Any]] = []
    with connect(ws.db_path) as con:
        procs = store.live_processes(con)
        operations = store.running_operations(con)
        stopping = store.stopping_processes(con)
    for row in stopping.iter_rows(named=True):  # a stop not seen to end (its stopper died): finish it
        if is_ours(int(row["pid"]), ws):
            _terminate(int(row["pid"]))
        findings.append(
            {"kind": "stop_finished", "system": row["system"], "role": row["role"], "pid": int(row["pid"])}
            | {"id": row["id"], "reason": row["stop_reason"]}
        )
    claimed = set()
    for row in procs.iter_rows(named=True):
        pid = int(row["pid"])
        if is_ours(pid, ws):
            claimed.add(pid)
            continue
        findings.append(
            {
                "kind": "lost_process",
                "system": row["system"],
                "role": row["role"],
                "pid": pid,
                "id": row["id"],
            }
        )
    for pid in sorted(owned_pids(ws) - claimed):
        if being_started(pid):
            continue  # its starter is alive and about to record it (start_process)
        cmd = _cmdline(pid)[:200]
        _terminate(pid)
        findings.append({"kind": "orphan_stopped", "system": None, "pid": pid, "cmd": cmd})
    for op in operations.iter_rows(named=True):
        pid = int(op["pid"])
        if pid == os.getpid():
            continue
        if not pid_alive(pid):
            finding = {"kind": "interrupted", "system": op["system"], "operation": op["kind"], "id": op["id"]}
            finding["detail"] = json.loads(op["detail"]) if op["detail"] else {}
            finding["next"] = settle(finding) if settle is not None else None
            findings.append(finding)
    if not findings:
        return findings
    with connect(ws.db_path) as con, transaction(con):
        events = []
        for f in findings:
            if f["kind"] == "lost_process":
                store.set_process_status(con, int(f["id"]), "lost", "process gone (found by reconcile)")
                reason = f"{f['role']} process {f['pid']} is gone"
            elif f["kind"] == "stop_finished":
                store.set_process_status(con, int(f["id"]), "stopped")
                reason = f"{f['role']} process {f['pid']} stopped; its stop ({f['reason']}) had not ended"
            elif f["kind"] == "orphan_stopped":
                reason = f"stopped orphan process {f['pid']} that no record claimed"
            else:
                store.end_operation(con, int(f["id"]), "interrupted", f["detail"] | {"next": f["next"]})
                reason = f"{f['operation']} was interrupted (its process died)"
                if f["next"]:
                    reason += f"; {f['next']}"
            events.append(
                {
                    "actor": actor,
                    "system": f["system"],
                    "action": f"reconcile:{f['kind']}",
                    "reason": reason,
                    "after": {k: v for k, v in f.items() if k != "detail"},
                }
            )
        append_events(con, events)
    return findings
