"""The sandbox worker: a lean, single-threaded process that forks one confined child per job.

``python -m engine.sandbox.worker`` reads one JSON job a line on stdin and
answers one JSON line on stdout. It never runs code under test itself: for
each job it forks a child (:mod:`engine.sandbox.child`), waits for it with
the job's time limit (a ``pidfd``, so no polling), kills the child's whole
process group when the limit passes, and turns how the child ended into a
result. A fork of this small process costs a few milliseconds, where a new
interpreter importing the engine costs a quarter of a second or more: that
is what keeps validating a 52-system fleet cheap.

Being single-threaded is what makes the fork safe (no lock held by another
thread is copied into the child). It imports an ``engine.*`` target's module
once, before forking, so each child starts with it loaded; a target outside
the engine is imported only in the child, since importing runs code.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import sys
import time
from typing import Any

from engine.sandbox import child, landlock

OUTPUT_TAIL_BYTES = 2000


def main() -> None:
    abi = landlock.abi_version()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while line := stdin.readline():
        try:
            answer = run_job(json.loads(line), abi)
        except Exception as exc:  # noqa: BLE001 - a bad job is answered, the worker goes on
            answer = {"ok": False, "failure": f"sandbox error: {type(exc).__name__}: {exc}"}
        stdout.write(json.dumps(answer, default=str).encode() + b"\n")
        stdout.flush()


def run_job(job: dict[str, Any], abi: int) -> dict[str, Any]:
    """Fork, confine and call in the child; wait at most ``timeout_s``; say how it ended."""
    module = job["target"].partition(":")[0]
    if (module == "engine" or module.startswith("engine.")) and module not in sys.modules:
        importlib.import_module(module)  # our own code: load it once here, every child inherits it
        gc.freeze()  # a child's collections then skip what it inherited: no copy-on-write of those pages
    result_fd = os.memfd_create("sandbox-result", os.MFD_CLOEXEC)
    output_fd = os.memfd_create("sandbox-output", os.MFD_CLOEXEC)
    try:
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            child.run(job, result_fd, output_fd, abi)  # never returns
        timed_out = not _wait(pid, float(job["timeout_s"]))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # what it started, too (the child leads its own group)
        _, status, _ = os.wait4(pid, 0)
        elapsed = time.monotonic() - start
        emitted, result = _read_result(result_fd)
        answer: dict[str, Any] = {"emitted": emitted, "elapsed_s": round(elapsed, 4)}
        answer["output"] = _tail(output_fd)
        if timed_out:
            return answer | {"ok": False, "failure": f"timed out after {float(job['timeout_s']):g} s"}
        if result is not None:
            return answer | result
        return answer | {"ok": False, "failure": _ending(status)}
    finally:
        os.close(result_fd)
        os.close(output_fd)


def _wait(pid: int, timeout_s: float) -> bool:
    """Whether ``pid`` ended within ``timeout_s`` (it is not reaped here)."""
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout_s)
        return bool(ready)
    finally:
        os.close(fd)


def _read_result(fd: int) -> tuple[list[Any], dict[str, Any] | None]:
    os.lseek(fd, 0, os.SEEK_SET)
    emitted, result = [], None
    with os.fdopen(os.dup(fd), "rb") as stream:
        for line in stream:
            try:
                doc = json.loads(line)
            except ValueError:
                break  # torn: the child died while writing it
            if "emit" in doc:
                emitted.append(doc["emit"])
            elif "result" in doc:
                result = doc["result"]
    return emitted, result


def _tail(fd: int) -> str:
    size = os.fstat(fd).st_size
    return os.pread(fd, OUTPUT_TAIL_BYTES, max(0, size - OUTPUT_TAIL_BYTES)).decode(errors="replace")


def _ending(status: int) -> str:
    """How a child that left no result ended, in words."""
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return f"was killed by signal {name}"
    return f"ended with wait status {status}"


if __name__ == "__main__":
    main()
