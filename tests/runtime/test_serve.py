"""A v1 system served over HTTP on loopback by its own process."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.error import HTTPError

import pytest

from engine.workspace import SAMPLE_FLEET_DIR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served():
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.runtime.serve",
            "--system-dir",
            str(SAMPLE_FLEET_DIR / "todo_api_system"),
            "--port",
            str(port),
        ],
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.1)
    yield base, port
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
    shutil.copytree(Path(__file__).parents[1] / "data" / "fleets" / "hostile" / "hoards_on_call", system)
    port = free_port()
    args = ["--system-dir", str(system), "--port", str(port), "--memory-mb", "64"]
    proc = subprocess.Popen([sys.executable, "-m", "engine.runtime.serve", *args])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(base + "/health", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        for _ in range(2):
            with pytest.raises(HTTPError) as info:
                post(base + "/call/ping", {"who": "me"})
            assert info.value.code == 502
            assert "MemoryError: out of memory" in json.loads(info.value.read())["error"]["detail"]
        assert json.loads(urllib.request.urlopen(base + "/health", timeout=5).read())["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
