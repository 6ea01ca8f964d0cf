"""The sandbox worker: a lean, single-threaded process that forks one confined child per job.

``python -m engine.sandbox.worker`` reads JSON jobs, one a line, on stdin
(each with an ``id``) and answers each with one JSON line on stdout carrying
the same ``id``, in the order the jobs end. It never runs code under test
itself: for each job it forks a child (:mod:`engine.sandbox.child`), watches
it through a ``pidfd`` with the job's time limit, kills the child's whole
process group when the limit passes, and turns how the child ended into a
result. Up to :data:`MAX_CHILDREN` children run at once, so one worker serves
every caller of an engine process (two systems validated side by side, two
sessions of the app) and its start-up, importing the engine, is paid once.
A fork of this small process costs a few milliseconds, where a new
interpreter importing the engine costs a quarter of a second or more.

Being single-threaded is what makes the fork safe (no lock held by another
thread is copied into the child). It imports an ``engine.*`` target's module
once, before forking, so each child starts with it loaded; a target outside
the engine is imported only in the child, since importing runs code.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from engine.sandbox import child, landlock

OUTPUT_TAIL_BYTES = 2000
MAX_CHILDREN = 8
"""Children running at once; later jobs wait their turn (their time limit starts when they start)."""


@dataclass
class _Running:
    """One forked child and what the worker needs to answer for it."""

    job: dict[str, Any]
    pid: int
    pidfd: int
    result_fd: int
    output_fd: int
    start: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        return self.start + float(self.job["timeout_s"])


def main() -> None:
    abi = landlock.abi_version()
    stdin, stdout = sys.stdin.fileno(), sys.stdout.buffer
    selector = selectors.DefaultSelector()
    selector.register(stdin, selectors.EVENT_READ)
    waiting: collections.deque[dict[str, Any]] = collections.deque()
    running: dict[int, _Running] = {}
    buffer, reading = b"", True

    def answer(job: dict[str, Any], result: dict[str, Any]) -> None:
        stdout.write(json.dumps(result | {"id": job.get("id")}, default=str).encode() + b"\n")
        stdout.flush()

    while reading or waiting or running:
        while waiting and len(running) < MAX_CHILDREN:
            job = waiting.popleft()
            try:
                started = start(job, abi)
            except Exception as exc:  # noqa: BLE001 - a bad job is answered, the worker goes on
                answer(job, {"ok": False, "failure": f"sandbox error: {type(exc).__name__}: {exc}"})
                continue
            running[started.pidfd] = started
            selector.register(started.pidfd, selectors.EVENT_READ)
        next_deadline = min((r.deadline for r in running.values()), default=None)
        timeout = None if next_deadline is None else max(0.0, next_deadline - time.monotonic())
        for key, _ in selector.select(timeout):
            if key.fd == stdin:
                chunk = os.read(stdin, 1 << 16)
                if not chunk:  # the engine process closed the pipe (or ended): finish what runs, then go
                    selector.unregister(stdin)
                    reading = False
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    try:
                        waiting.append(json.loads(line))
                    except ValueError as exc:
                        answer({}, {"ok": False, "failure": f"sandbox error: bad job: {exc}"})
            else:
                done = running.pop(key.fd)
                selector.unregister(key.fd)
                answer(done.job, finish(done, timed_out=False))
        now = time.monotonic()
        for fd in [fd for fd, r in running.items() if r.deadline <= now]:
            done = running.pop(fd)
            selector.unregister(fd)
            answer(done.job, finish(done, timed_out=True))


def start(job: dict[str, Any], abi: int) -> _Running:
    """Fork a child that confines itself and calls the target (:func:`engine.sandbox.child.run`)."""
    module = job["target"].partition(":")[0]
    if (module == "engine" or module.startswith("engine.")) and module not in sys.modules:
        importlib.import_module(module)  # our own code: load it once here, every child inherits it
        gc.freeze()  # a child's collections then skip what it inherited: no copy-on-write of those pages
    result_fd = os.memfd_create("sandbox-result", os.MFD_CLOEXEC)
    output_fd = os.memfd_create("sandbox-output", os.MFD_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        child.run(job, result_fd, output_fd, abi)  # never returns
    return _Running(job, pid, os.pidfd_open(pid), result_fd, output_fd)


def finish(done: _Running, *, timed_out: bool) -> dict[str, Any]:
    """Kill what the child left (or the child, past its time), reap it, and say how it ended."""
    try:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(done.pid, signal.SIGKILL)  # what it started, too (the child leads its own group)
        _, status, _ = os.wait4(done.pid, 0)
        elapsed = time.monotonic() - done.start
        emitted, result = _read_result(done.result_fd)
        answer: dict[str, Any] = {"emitted": emitted, "elapsed_s": round(elapsed, 4)}
        answer["output"] = _tail(done.output_fd)
        if timed_out:
            return answer | {"ok": False, "failure": f"timed out after {float(done.job['timeout_s']):g} s"}
        if result is not None:
            return answer | result
        return answer | {"ok": False, "failure": _ending(status)}
    finally:
        for fd in (done.pidfd, done.result_fd, done.output_fd):
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
