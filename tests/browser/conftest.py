"""The app (``streamlit run app.py``) on a fresh workspace, and Debian's chromium driven by Playwright.

Neither is skipped when missing: CI (``.ci/run``) installs both, so a missing
browser or package is a broken machine and the tests fail saying which.

Both fixtures are module-scoped, not session-scoped, on purpose: while
Playwright's sync API is open it keeps an event loop running in the main
thread, and every later test that calls ``asyncio.run`` (the gate's smoke
checks, for one) would fail with "cannot be called from a running event
loop"; the server and the processes it started are also stopped as soon as
the browser tests are done instead of loading the 2 cores for the rest of the run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine import access, services
from engine.workspace import WORKSPACE_ENV, Workspace

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class App:
    url: str
    ws: Workspace
    log: Path
    pid: int

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it if it does not go within 20 s."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def playwright_browser() -> Iterator[Any]:
    """Headless chromium from /usr/bin (Playwright's own browser download needs a network we lack)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); .ci/run does"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -r requirements-dev.txt")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """``streamlit run app.py`` on a new workspace; stopped afterwards with every process it started."""
    base = tmp_path_factory.mktemp("browser")
    ws = Workspace(base / "ws")
    log = base / "streamlit.log"
    port = _free_port()
    env = {**os.environ, WORKSPACE_ENV: str(ws.root)}
    env.pop("SWITCHYARD_ACTOR", None)  # the OS user starts the server, so it is the workspace's operator
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),  # no --server.address: the repo's .streamlit/config.toml decides (loopback)
        "--server.fileWatcherType",
        "none",  # the tree may change under a running test; no reruns from that
        "--browser.gatherUsageStats",
        "false",
    ]
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    started = App(url, ws, log, server.pid)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not come up on {url}:\n{started.log_tail()}")
            time.sleep(0.3)
        yield started
    finally:
        _stop(server)
        if ws.exists():  # deploys, runs and rollbacks leave services and a gateway running
            services.down(ws, actor=access.engine_actor("browser test teardown"))
