"""What happens inside the forked child, from the fork to ``os._exit``: limits, confinement, the call.

Order matters. First what needs files the child will no longer be allowed to
open (``/dev/null``), then the resource limits, then Landlock, then the
audit hook, and only then the target is imported and called. The child
never returns into the worker's loop: every path ends in ``os._exit``.

The result travels as JSON lines on an inherited memory file
(``memfd``): ``{"emit": ...}`` for each record the target streams with
:func:`engine.sandbox.emit`, then one ``{"result": ...}``. The worker reads it
after the child has ended, whatever way it ended, so records emitted before a
crash are kept.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import os
import resource
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.sandbox import landlock
from engine.sandbox.limits import limit_memory

OUTPUT_LIMIT_BYTES = 64 << 20
"""RLIMIT_FSIZE in the child: no file it writes (its output, its result, a file in its folder) may grow past
this, so a loop printing forever cannot fill the disk or the worker's memory."""

EXIT_VIOLATION = 113
"""The child's exit status after the audit hook refused something (the reason is in the result)."""

ENGINE_DIR = Path(__file__).resolve().parents[1]
_STDLIB_DIRS = tuple({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_WRITE_EVENTS = {
    # event: indexes of the arguments that are paths the call writes (creates, changes or removes)
    "os.rename": (0, 1),
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.link": (1,),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.mkfifo": (0,),
    "os.mknod": (0,),
    "shutil.rmtree": (0,),
}
_PROCESS_EVENTS = {
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "pty.spawn",
}


class _State:
    result_fd = -1
    memory_mb = 0
    writable: tuple[str, ...] = ()


def emit(record: Any) -> None:
    """Stream one JSON-able record to the caller now (kept even if the child dies right after)."""
    if _State.result_fd < 0:
        raise RuntimeError("emit() is only for code running under engine.sandbox.run_isolated")
    _write_line({"emit": record})


def _write_line(doc: dict[str, Any]) -> None:
    data = (json.dumps(doc, default=str) + "\n").encode()
    view = memoryview(data)
    while view:
        view = view[os.write(_State.result_fd, view) :]


def _exit(status: int) -> None:
    """``os._exit``, after what the code printed reaches the output file: ``os._exit`` skips the flush
    at exit, and a print to a file is block-buffered unless $PYTHONUNBUFFERED says otherwise."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the code under test may have closed or replaced it
            stream.flush()
    os._exit(status)


def _finish(result: dict[str, Any], status: int = 0) -> None:
    """Write the result and end the child here, without unwinding into the worker's loop."""
    try:
        _write_line({"result": result})
    except OSError:  # EFBIG: the value is larger than OUTPUT_LIMIT_BYTES
        _write_line({"result": {"ok": False, "failure": "returned more than 64 MiB"}})
    finally:
        _exit(status)


def memory_failure() -> str:
    return f"exceeded the {_State.memory_mb} MiB memory limit"


def where(exc: BaseException) -> str:
    """``file:line`` of the deepest frame outside the engine and the standard library (else the deepest)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    engine = str(ENGINE_DIR) + os.sep

    def foreign(filename: str) -> bool:
        if filename.startswith("<"):  # "<frozen os>", "<string>": the interpreter's own
            return False
        real = os.path.realpath(filename)
        return not real.startswith(engine) and not real.startswith(_STDLIB_DIRS)

    frame = next((f for f in reversed(frames) if foreign(f.filename)), frames[-1])
    return f"{os.path.basename(frame.filename)}:{frame.lineno}"


def describe(exc: BaseException) -> str:
    """One line for an exception raised by code under test: what, and where."""
    if isinstance(exc, MemoryError):
        return memory_failure()
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return f"wrote more than {OUTPUT_LIMIT_BYTES >> 20} MiB to one file (printed output included)"
    if isinstance(exc, SystemExit):
        code = exc.code
        return f"exited with status {0 if code is None else code}" if not isinstance(code, str) else code
    text = str(exc).splitlines()[0][:300] if str(exc) else ""
    location = where(exc)
    return f"raised {type(exc).__name__}: {text}" + (f" ({location})" if location else "")


def _inside(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in _State.writable)


def _path(value: Any) -> str | None:
    if isinstance(value, int) or value is None:
        return None  # a file descriptor: opened earlier, or by path (checked then)
    try:
        return os.fsdecode(os.fspath(value))
    except TypeError:
        return None


def _refuse(reason: str) -> None:
    _finish({"ok": False, "failure": reason}, EXIT_VIOLATION)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Refuse, report and end the child at the first write outside its folders or process started.

    Ending at once (rather than raising) is deliberate: code under test could
    catch an exception and carry on as if the write had worked.
    """
    if event == "open":
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        path = _path(args[0])
        if path is not None and flags & _WRITE_FLAGS and not _inside(path):
            _refuse(f"tried to write outside its folder: {os.path.abspath(path)}")
    elif event in _WRITE_EVENTS:
        for index in _WRITE_EVENTS[event]:
            path = _path(args[index]) if index < len(args) else None
            if path is not None and not _inside(path):
                _refuse(f"tried to write outside its folder: {os.path.abspath(path)} ({event})")
    elif event in _PROCESS_EVENTS:
        what = _path(args[0]) if args else None
        _refuse(f"tried to start a process{': ' + what if what else ''} ({event})")
    elif (
        event in ("os.kill", "os.killpg", "signal.pthread_kill")
        and args
        and args[0]
        not in (
            0,
            os.getpid(),
            os.getpgid(0),
        )
    ):
        _refuse(f"tried to send a signal to process {args[0]} ({event})")


def run(job: dict[str, Any], result_fd: int, output_fd: int, landlock_abi: int) -> None:
    """In the forked child: confine, call ``job['target']`` with ``job['payload']``, report, exit."""
    try:
        os.setsid()  # its own process group: a timeout kills it and everything it started
        _State.result_fd, _State.memory_mb = result_fd, int(job["memory_mb"])
        _State.writable = tuple(os.path.realpath(p) for p in job["writable"]) + ("/dev/null",)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        _close_inherited_fds(keep={0, 1, 2, result_fd, output_fd})
        _die_with_parent()
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = "1"  # thread pools reserve address space the memory limit would count
        sys.dont_write_bytecode = True  # no __pycache__ written into a fleet folder
        if job.get("cwd"):
            os.chdir(job["cwd"])
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT_BYTES, OUTPUT_LIMIT_BYTES))
        limit_memory(_State.memory_mb)
        if landlock_abi:
            landlock.restrict_writes([Path(p) for p in _State.writable], landlock_abi)
        sys.addaudithook(_audit)
    except BaseException as exc:  # noqa: BLE001 - the sandbox could not be set up: say so, run nothing
        _finish({"ok": False, "failure": f"sandbox set-up failed: {type(exc).__name__}: {exc}"}, 1)
    try:
        value = resolve(job["target"])(job["payload"])
        _write_line({"result": {"ok": True, "value": value}})
    except MemoryError:
        _finish({"ok": False, "failure": memory_failure()})
    except BaseException as exc:  # noqa: BLE001 - whatever the code did is the finding
        _finish({"ok": False, "failure": describe(exc)})
    _exit(0)


def _close_inherited_fds(keep: set[int]) -> None:
    """Close what the fork copied from the worker (its pipes, other children's result files), so the
    code under test can neither read the worker's jobs nor write another child's result."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def resolve(target: str) -> Callable[[Any], Any]:
    """``package.module:function`` -> the function (ValueError for a malformed target)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"target {target!r} is not 'package.module:function'")
    function: Callable[[Any], Any] = getattr(importlib.import_module(module_name), attr)
    return function


def _die_with_parent() -> None:
    """SIGKILL this child if its worker dies (the worker is single-threaded, so this is the worker)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
