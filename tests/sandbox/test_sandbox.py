"""Code run through engine.sandbox cannot end, hang, exhaust or write past the process that asked for it."""

from __future__ import annotations

import concurrent.futures
import os
import textwrap
import time
from pathlib import Path

import pytest

from engine.sandbox import landlock, run_isolated

LOAD = "engine.sandbox.targets:load_module"


def load(tmp_path: Path, source: str, **limits: object):
    """Import a module with ``source`` in the sandbox (its folder writable)."""
    folder = tmp_path / "system"
    folder.mkdir(exist_ok=True)
    module = folder / "component.py"
    module.write_text(textwrap.dedent(source), encoding="utf-8")
    options: dict[str, object] = {"timeout_s": 5.0, "memory_mb": 128, "writable": [folder], "cwd": folder}
    return run_isolated(LOAD, {"path": str(module)}, **(options | limits))


def test_a_module_that_loads_gives_its_names_and_output(tmp_path: Path) -> None:
    result = load(tmp_path, "print('hello from a module')\nVALUE = 42\n_private = 1\n")
    assert result.ok and result.failure is None
    assert result.value == ["VALUE"]
    assert "hello from a module" in result.output


HOSTILE = {
    "exit": ("import os\nos._exit(7)\n", "exited with status 7"),
    "sys_exit": ("import sys\nsys.exit(3)\n", "exited with status 3"),
    "raise": (
        "x = 1\nraise ValueError('no such region')\n",
        "raised ValueError: no such region (component.py:2)",
    ),
    "write_outside": (
        "open(__import__('tempfile').gettempdir() + '/switchyard-sandbox-test-{marker}', 'w')\n",
        "tried to write outside its folder: ",
    ),
    "write_caught": (
        "try:\n    open('/tmp/switchyard-sandbox-test-{marker}', 'a')\nexcept Exception:\n    pass\n",
        "tried to write outside its folder: /tmp/switchyard-sandbox-test-",
    ),
    "remove_outside": (
        "import os\nos.remove('/tmp/switchyard-sandbox-test-{marker}')\n",
        "tried to write outside",
    ),
    "subprocess": ("import subprocess\nsubprocess.run(['true'])\n", "tried to start a process: true"),
    # a fork bomb's first fork (bounded at 16 processes, should the guard ever be gone)
    "fork_bomb": ("import os\nfor _ in range(4):\n    os.fork()\n", "tried to start a process (os.fork)"),
    "signal": (
        "import os, signal\nos.kill(os.getppid(), signal.SIGTERM)\n",
        "tried to send a signal to process",
    ),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_module_fails_with_its_reason(tmp_path: Path, kind: str) -> None:
    marker = f"{os.getpid()}-{kind}"
    source, reason = HOSTILE[kind]
    result = load(tmp_path, source.replace("{marker}", marker))
    assert not result.ok
    assert result.failure is not None and result.failure.startswith(reason), result.failure
    assert not Path(f"/tmp/switchyard-sandbox-test-{marker}").exists()


def test_a_module_that_hangs_is_killed_at_its_time_limit(tmp_path: Path) -> None:
    result = load(tmp_path, "while True:\n    pass\n", timeout_s=0.5)
    assert not result.ok and result.failure == "timed out after 0.5 s"
    assert 0.5 <= result.elapsed_s < 3


def test_a_module_that_allocates_without_bound_meets_its_memory_limit(tmp_path: Path) -> None:
    source = "chunks = []\nfor _ in range(256):\n    chunks.append(bytearray(4 << 20))\n"  # 1 GiB, then done
    result = load(tmp_path, source, memory_mb=48)
    assert not result.ok and result.failure == "exceeded the 48 MiB memory limit"


def test_writes_inside_its_folder_are_allowed(tmp_path: Path) -> None:
    source = "import os\nos.makedirs('data', exist_ok=True)\nopen('data/state.json', 'w').write('{}')\n"
    result = load(tmp_path, source)
    assert result.ok, result.failure
    assert (tmp_path / "system" / "data" / "state.json").read_text() == "{}"


@pytest.mark.skipif(not landlock.abi_version(), reason="the kernel has no Landlock")
def test_a_write_behind_the_audit_hooks_back_is_refused_by_the_kernel(tmp_path: Path) -> None:
    target = f"/tmp/switchyard-sandbox-test-{os.getpid()}-ctypes"
    source = f"""
        import ctypes, os
        fd = ctypes.CDLL(None, use_errno=True).open({target!r}.encode(), os.O_WRONLY | os.O_CREAT, 0o644)
        if fd < 0:
            raise PermissionError(ctypes.get_errno(), 'refused')
        """
    result = load(tmp_path, source)
    assert not result.ok and result.failure.startswith("raised PermissionError: [Errno 13]"), result.failure
    assert not Path(target).exists()


def test_printing_without_end_is_cut_at_the_output_limit(tmp_path: Path) -> None:
    result = load(tmp_path, "while True:\n    print('x' * 65536)\n")
    assert not result.ok and result.failure.startswith("wrote more than 64 MiB"), result.failure
    assert len(result.output) == 2000


def test_records_emitted_before_a_crash_are_kept(tmp_path: Path) -> None:
    source = "from engine.sandbox import emit\nemit({'step': 1})\nemit({'step': 2})\nimport os\nos._exit(9)\n"
    result = load(tmp_path, source)
    assert result.failure == "exited with status 9"
    assert result.emitted == [{"step": 1}, {"step": 2}]


def test_calls_fork_from_a_reused_worker_instead_of_starting_interpreters(tmp_path: Path) -> None:
    workers = set()
    for _ in range(12):
        result = load(tmp_path, "import os\nfrom engine.sandbox import emit\nemit(os.getppid())\n")
        assert result.ok
        workers.update(result.emitted)
    assert len(workers) == 1


def test_a_malformed_call_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="package.module:function"):
        run_isolated("no_colon", {}, timeout_s=1, memory_mb=16)
    with pytest.raises(ValueError, match="must exist"):
        run_isolated(LOAD, {}, timeout_s=1, memory_mb=16, writable=[tmp_path / "absent"])


def test_calls_from_two_threads_run_side_by_side_in_one_worker(tmp_path: Path) -> None:
    slow, quick = tmp_path / "slow", tmp_path / "quick"
    for folder, source in ((slow, "import time\ntime.sleep(1.5)\n"), (quick, "X = 1\n")):
        folder.mkdir()
        (folder / "component.py").write_text(
            "import os\nfrom engine.sandbox import emit\nemit(os.getppid())\n" + source, encoding="utf-8"
        )

    def call(folder: Path):
        return run_isolated(LOAD, {"path": str(folder / "component.py")}, timeout_s=5, memory_mb=64)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow_call = pool.submit(call, slow)
        time.sleep(0.2)
        quick_call = pool.submit(call, quick)
        quick_result = quick_call.result(timeout=5)
        assert not slow_call.done()  # the quick one did not queue behind the sleeping one
        slow_result = slow_call.result(timeout=10)
    assert quick_result.ok and slow_result.ok
    assert quick_result.emitted == slow_result.emitted  # one worker forked both


def test_a_child_holds_no_descriptor_of_the_worker_or_of_other_children(tmp_path: Path) -> None:
    source = "import os\nfrom engine.sandbox import emit\nemit(sorted(os.listdir('/proc/self/fd')))\n"
    result = load(tmp_path, source)
    assert result.ok, result.failure
    (fds,) = result.emitted
    assert len(fds) == 6  # stdin, stdout, stderr, the result file, the output file, and listdir's own
