"""Run code we did not write (a team's fleet) in a child process that cannot take the engine down.

:func:`run_isolated` calls ``package.module:function(payload)`` in a forked
child and returns a :class:`SandboxResult`: the JSON value it returned, or
one line saying why it failed. Whatever the code does, the caller (the CLI,
the app's server) goes on running, and nothing reaches the store unless the
caller writes it from the result.

What is confined, per call:

* **time**: the child and every process in its process group are killed
  with SIGKILL after ``timeout_s`` ("timed out after 10 s");
* **memory**: ``RLIMIT_DATA`` allows the worker's own data size plus
  ``memory_mb`` (heap and private writable mappings; address space only
  reserved, as thread arenas are, does not count); an allocation past it fails (Python raises MemoryError,
  reported as "exceeded the 512 MiB memory limit"); a C extension that does
  not check its allocations may crash instead ("was killed by signal SIGSEGV");
* **writes**: only beneath ``writable`` (and ``/dev/null``). Two layers: a
  Python audit hook sees opens for writing, renames, removals, mkdir, chmod,
  links, and any attempt to start a process or signal another one, and ends
  the child at once with the reason ("tried to write outside its folder:
  /tmp/x"); and, where the kernel has Landlock (Linux 5.13+), the kernel
  itself refuses writes outside those folders, for ``ctypes``, C extensions
  and started processes too (the call then fails with PermissionError). With
  Landlock ABI 6+ the child may not signal processes outside its sandbox;
* **output**: no file it writes (its printed output included) may grow
  past 64 MiB (``RLIMIT_FSIZE``); the last 2000 bytes printed come back in
  ``output``;
* **exit**: ``os._exit(7)`` or ``sys.exit(7)`` ends only the child ("exited
  with status 7"); an exception escaping the target is "raised ValueError:
  ... (file.py:12)".

What is *not* confined: reading (any file the engine's user may read, the
child may read: it must import the standard library and its dependencies);
the network (a module may open sockets); CPU share (a child may use a whole
core until its time limit). Without Landlock the audit hook alone guards
writes, and it only sees what goes through Python: ``ctypes`` or a C
extension can write past it. Code that deliberately starts a process behind
the hook's back (``ctypes``, ``_posixsubprocess``) and moves it to another
process group may outlive the time limit; Landlock's write limits still hold
for that process. The hook is a guard against mistakes and careless code
(a module writing its cache to ``/tmp``); Landlock is the barrier.

Cost: calls are served by one small worker process per engine process
(:mod:`engine.sandbox.worker`) that forks one child per call, several at
once, so a call costs a fork (milliseconds), not an interpreter start (a
quarter of a second and more). The code under test runs in the child only;
the worker is never exposed to it, and the child closes every descriptor it
inherited from the worker but its own two.

In the child, the target may stream records with :func:`emit`; they come
back in ``SandboxResult.emitted`` even if the child dies afterwards, which is
how a caller knows how far it got (which module was being imported).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.sandbox.child import emit

__all__ = ["SandboxResult", "confinement", "emit", "run_isolated"]

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKER_GRACE_S = 15.0
"""Beyond a call's own time limit, how long the caller waits for the worker's answer before it gives the
worker up as broken (the worker enforces the limit; this only guards against the worker itself hanging)."""


@dataclass(frozen=True)
class SandboxResult:
    """How one isolated call ended: ``value`` if ``ok``, else ``failure`` (one line)."""

    ok: bool
    value: Any = None
    failure: str | None = None
    emitted: list[Any] = field(default_factory=list)
    """Records the target streamed with :func:`emit`, in order, kept whatever way the child ended."""
    output: str = ""
    """The last 2000 characters the child printed (stdout and stderr together)."""
    elapsed_s: float = 0.0


def run_isolated(
    target: str,
    payload: Any,
    *,
    timeout_s: float,
    memory_mb: int,
    writable: Iterable[Path] = (),
    cwd: Path | None = None,
) -> SandboxResult:
    """Call ``target`` ("package.module:function") with ``payload`` in a confined child; see the module doc.

    ``payload`` must be JSON-able, and so must the function's return value.
    ``writable``: folders (or files) the child may write beneath; every one
    must exist. ``cwd``: the child's working folder (default: the worker's).
    Raises ValueError for a malformed call; every failure of the code itself
    is a result with ``ok=False``, never an exception.
    """
    if ":" not in target:
        raise ValueError(f"target {target!r} is not 'package.module:function'")
    if timeout_s <= 0 or memory_mb <= 0:
        raise ValueError("timeout_s and memory_mb must be positive")
    folders = [Path(p).resolve() for p in writable]
    missing = [str(p) for p in folders if not p.exists()]
    if missing:
        raise ValueError(f"writable paths must exist: {', '.join(missing)}")
    job = {
        "target": target,
        "payload": payload,
        "timeout_s": float(timeout_s),
        "memory_mb": int(memory_mb),
        "writable": [str(p) for p in folders],
        "cwd": str(Path(cwd).resolve()) if cwd is not None else None,
    }
    answer = _shared_worker().ask(job, timeout_s + WORKER_GRACE_S)
    return SandboxResult(
        ok=bool(answer.get("ok")),
        value=answer.get("value"),
        failure=answer.get("failure"),
        emitted=list(answer.get("emitted", [])),
        output=str(answer.get("output", "")),
        elapsed_s=float(answer.get("elapsed_s", 0.0)),
    )


def confinement() -> str:
    """What confines a child on this machine, in words (for reports and the docs)."""
    from engine.sandbox.landlock import abi_version

    abi = abi_version()
    writes = f"an audit hook and Landlock ABI {abi}" if abi else "an audit hook (no Landlock on this kernel)"
    return f"time limit, memory limit (RLIMIT_DATA), writes confined by {writes}"


class _Worker:
    """The worker process, the pipe pair to it, and the callers waiting for their answers.

    Calls from any thread go to one worker, each tagged with an id; a reader
    thread hands each answer to the caller waiting for that id. A worker that
    dies, or does not answer within a call's time limit plus the grace, is
    killed and every call waiting on it fails with that reason; the next call
    starts a new worker.
    """

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.sandbox.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=REPO_ROOT,
            start_new_session=True,  # a Ctrl-C meant for the CLI does not reach it mid-call
        )
        self._ids = itertools.count(1)
        self._waiting: dict[int, concurrent.futures.Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_answers, name="sandbox-answers", daemon=True)
        self._reader.start()

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def ask(self, job: dict[str, Any], wait_s: float) -> dict[str, Any]:
        """Send one job and wait for its answer (a failure answer if the worker breaks or stalls)."""
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        with self._lock:
            job_id = next(self._ids)
            self._waiting[job_id] = future
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps(job | {"id": job_id}).encode() + b"\n")
                self.proc.stdin.flush()
            except OSError as exc:
                self._waiting.pop(job_id, None)
                return self._broken(f"could not send the job: {exc}")
        try:
            return future.result(timeout=wait_s)
        except concurrent.futures.TimeoutError:
            self.close()  # it enforces the time limit itself: past the grace it is stuck, not busy
            return _failure("the sandbox worker stopped answering")

    def _read_answers(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            answer = json.loads(line)
            with self._lock:
                future = self._waiting.pop(answer.get("id"), None)
            if future is not None:
                future.set_result(answer)
        self._broken(f"the sandbox worker ended (status {self.proc.wait()})")

    def _broken(self, reason: str) -> dict[str, Any]:
        """Fail every call still waiting; returns the failure answer."""
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_result(_failure(reason))
        return _failure(reason)

    def close(self) -> None:
        """End the worker: closing its stdin ends its loop; a stuck one is killed with its group."""
        if self.owner != os.getpid():
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=1.0)
        except (OSError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _failure(reason: str) -> dict[str, Any]:
    return {"ok": False, "failure": reason}


_worker: _Worker | None = None
_worker_lock = threading.Lock()


def _shared_worker() -> _Worker:
    """This process's worker, started on first use (and again if it died)."""
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.alive():
            _worker = _Worker()
        return _worker


@atexit.register
def _close_worker() -> None:
    with _worker_lock:
        if _worker is not None:
            _worker.close()
