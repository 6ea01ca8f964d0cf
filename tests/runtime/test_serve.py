"""A v1 system served over HTTP on loopback by its own process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.error import HTTPError

import pytest

from engine.runtime.serve import cpu_wait_ns
from engine.sandbox import landlock
from engine.workspace import REPO_ROOT, SAMPLE_FLEET_DIR

HOSTILE = REPO_ROOT / "tests" / "data" / "fleets" / "hostile"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(system_dir: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """Serve ``system_dir`` in its own process; returns the process and its base URL once it answers."""
    port = free_port()
    args = ["--system-dir", str(system_dir), "--port", str(port), *extra]
    proc = subprocess.Popen([sys.executable, "-m", "engine.runtime.serve", *args])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            return proc, base
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.1)


@pytest.fixture
def served():
    proc, base = serve(SAMPLE_FLEET_DIR / "todo_api_system")
    yield base, int(base.rsplit(":", 1)[1])
    proc.terminate()
    proc.wait(timeout=10)


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_health_endpoints_and_calls(served) -> None:
    base, port = served
    health = json.loads(urllib.request.urlopen(base + "/health", timeout=5).read())
    assert health == {"status": "ok", "system": "todo_api_system", "runtime": "v1", "load_errors": {}}
    assert (
        "create_todo"
        in json.loads(urllib.request.urlopen(base + "/endpoints", timeout=5).read())["endpoints"]
    )
    created = post(base + "/call/create_todo", {"title": "write tests"})
    assert created["data"]["result"]["record"] == {"title": "write tests", "id": 1}
    listed = post(base + "/call/list_todos", {})
    assert listed["data"]["result"]["count"] == 1


def test_an_answer_says_how_long_the_version_took_and_how_long_it_waited_for_a_cpu(served) -> None:
    base, _ = served
    request = urllib.request.Request(
        base + "/call/list_todos", data=b"{}", headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        timing = response.headers["server-timing"]
    durations = dict((part.split(";")[0].strip(), float(part.split("dur=")[1])) for part in timing.split(","))
    assert set(durations) == {"app", "cpu-wait"}
    assert durations["app"] > 0 and durations["cpu-wait"] >= 0


def _spin_and_report(seconds: float) -> tuple[int, int]:
    """Fork a child that spins for ``seconds`` and reports its own CPU wait (ns) back through a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: spin, report, leave without running pytest's exit handlers
        os.close(read_end)
        start_wait, deadline = cpu_wait_ns(), time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            pass
        os.write(write_end, str(cpu_wait_ns() - start_wait).encode())
        os._exit(0)
    os.close(write_end)
    return pid, read_end


def test_cpu_wait_grows_only_while_a_thread_waits_for_a_cpu() -> None:
    """More spinning processes than cores: each spends part of its time runnable and not running,
    which Linux counts for it; a thread that sleeps is not waiting for a CPU, and its count stays."""
    children = [_spin_and_report(0.2) for _ in range(2 * (os.cpu_count() or 1) + 1)]
    waits = []
    for pid, read_end in children:
        with os.fdopen(read_end) as answer:
            waits.append(int(answer.read() or 0))
        os.waitpid(pid, 0)
    assert max(waits) > 0
    before = cpu_wait_ns()
    time.sleep(0.05)
    assert 0 <= cpu_wait_ns() - before < 50_000_000


def test_bad_message_is_a_502_with_the_reason(served) -> None:
    base, _ = served
    with pytest.raises(HTTPError) as info:
        post(base + "/call/create_todo", {"name": "no title field"})
    assert info.value.code == 502
    assert json.loads(info.value.read())["error"]["kind"] == "bad_message"


def test_listens_on_loopback_only(served) -> None:
    _, port = served
    if shutil.which("ss") is None:
        pytest.fail("ss is missing: apt-get install -y iproute2 (.ci/run does)")
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
    if not out.strip():
        pytest.skip("ss not available")
    local_addresses = {line.split()[3].rsplit(":", 1)[0] for line in out.strip().splitlines()}
    assert local_addresses == {"127.0.0.1"}


def test_a_served_system_meets_its_memory_limit_and_the_process_goes_on(tmp_path) -> None:
    """--memory-mb (the policy's sandbox.service_memory_mb): a request that allocates without bound fails."""
    system = tmp_path / "hoards_on_call"
    shutil.copytree(HOSTILE / "hoards_on_call", system)
    proc, base = serve(system, "--memory-mb", "64")
    try:
        for _ in range(2):
            with pytest.raises(HTTPError) as info:
                post(base + "/call/ping", {"who": "me"})
            assert info.value.code == 502
            assert "MemoryError: out of memory" in json.loads(info.value.read())["error"]["detail"]
        assert json.loads(urllib.request.urlopen(base + "/health", timeout=5).read())["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.skipif(not landlock.abi_version(), reason="the kernel has no Landlock")
def test_a_served_system_writes_only_in_its_own_folder(tmp_path) -> None:
    """--confine-writes: writes_outside's module opens /tmp/... for writing at import; the kernel refuses."""
    system = tmp_path / "writes_outside"
    shutil.copytree(HOSTILE / "writes_outside", system)
    outside = Path("/tmp/switchyard-hostile-fleet-was-here")
    outside.unlink(missing_ok=True)
    proc, base = serve(system, "--confine-writes")
    try:
        health = json.loads(urllib.request.urlopen(base + "/health", timeout=5).read())
        assert health["status"] == "degraded"
        assert health["load_errors"]["front"].startswith("PermissionError: [Errno 13]")
        assert not outside.exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _own_ms(base: str) -> float:
    """The ``app`` duration less the CPU wait of one ``/call/hello``, as the gateway reads it."""
    from engine.deploy.gateway import service_time

    request = urllib.request.Request(
        base + "/call/hello", data=b'{"name": "x"}', headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        timing = service_time({"server-timing": response.headers["server-timing"]})
    assert timing is not None
    return timing[0]


@pytest.mark.parametrize("runtime", ["v1", "v2"])
def test_the_own_time_spans_the_team_s_code_in_either_runtime(tmp_path: Path, runtime: str) -> None:
    """The judge reads a version's own time from its Server-Timing span: a copy whose entry component
    sleeps 30 ms more per call must read at least 30 ms more there, on the legacy runtime (v1) and on
    the port runtime hosting the same code (v2), or the judge would not see a slower version."""
    from bench.aa_calibration import slowed_copy
    from engine.convert.converter import convert_blueprint
    from engine.convert.writer import write_v2_system
    from engine.models import load_v1_blueprint

    system = SAMPLE_FLEET_DIR / "hello_world_api"
    slow = slowed_copy(system, tmp_path / "slow" / "hello_world_api", delay_s=0.030)
    folders = [system, slow]
    if runtime == "v2":
        folders = [
            write_v2_system(
                convert_blueprint(load_v1_blueprint(f / "blueprint.yaml"), f), tmp_path / f"v2-{i}"
            )
            for i, f in enumerate(folders)
        ]
    own = []
    for folder in folders:
        proc, base = serve(folder, "--runtime", runtime)
        try:
            own.append(min(_own_ms(base) for _ in range(5)))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert own[0] < 30 <= own[1], own
