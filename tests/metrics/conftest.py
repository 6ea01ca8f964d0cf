"""A real Prometheus on loopback, for the tests marked ``prometheus``."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from engine.deploy.supervisor import free_port
from engine.metrics.prometheus import scrape_config

PROMETHEUS = shutil.which("prometheus")
START_TIMEOUT_S = 30


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``check`` every 0.25 s until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if check():
                return
        time.sleep(0.25)
    pytest.fail(f"waited {timeout_s:.0f} s for {what}")


def prometheus_query(url: str, promql: str) -> list:
    with urllib.request.urlopen(
        f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}", timeout=5
    ) as response:
        return json.loads(response.read())["data"]["result"]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[dict[str, int]], str]]:
    """``start(targets)`` runs Prometheus on a free loopback port scraping each ``label -> port`` every
    second (or with ``config``, a whole prometheus.yml as a dict) and returns its URL once it is
    ready; it is stopped after the test."""
    if PROMETHEUS is None:  # not skipped: .ci/run (the README's test command) installs it
        pytest.fail("the prometheus binary is missing: apt-get install -y prometheus (.ci/run does)")
    started: list[subprocess.Popen[bytes]] = []

    def start(targets: dict[str, int] | None = None, *, config: dict | None = None) -> str:
        port = free_port()
        written = tmp_path / "prometheus.yml"
        written.write_text(yaml.safe_dump(config or scrape_config(targets or {}, scrape_interval_s=1)))
        log = (tmp_path / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={written}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(proc)
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited: {(tmp_path / 'prometheus.log').read_text()[-800:]}")
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                return response.status == 200

        wait_for(ready, START_TIMEOUT_S, "prometheus to be ready")
        return url

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
