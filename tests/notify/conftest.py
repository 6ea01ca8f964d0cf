"""A real webhook receiver on 127.0.0.1 (http.server in a thread), and notify.toml / event helpers."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine.notify.sign import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from engine.store import connect
from engine.store.events import append_events
from engine.workspace import Workspace

SECRET = "s3cret-for-tests"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    def verifies(self, secret: str) -> bool:
        return verify(
            secret, self.body, self.headers.get(TIMESTAMP_HEADER), self.headers.get(SIGNATURE_HEADER)
        )


@dataclass
class Receiver:
    """Records every request; answers ``fail_status`` to the first ``fail_first`` ones, 200 after.

    With ``require_secret`` set it checks the signature like a real receiver would and answers
    401 to a request that does not verify.
    """

    url: str
    requests: list[Received] = field(default_factory=list)
    fail_first: int = 0
    fail_status: int = 500
    require_secret: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict[str, Any]]:
        return [r.json for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got = Received(self.path, dict(self.headers.items()), body)
            with state.lock:
                state.requests.append(got)
                failing = len(state.requests) <= state.fail_first
            if failing:
                status = state.fail_status
            elif state.require_secret is not None and not got.verifies(state.require_secret):
                status = 401
            else:
                status = 200
            reply = b"nope" if status >= 300 else b"ok"
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) but never answers: a hung receiver."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    finally:
        sock.close()


@pytest.fixture
def closed_url() -> str:
    """A port nothing listens on: the connection is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def store_ws(tmp_path: Path) -> Workspace:
    """A workspace with an empty, migrated store (enough for the outbox)."""
    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    with connect(ws.db_path):
        pass
    return ws


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_config(ws: Workspace, webhooks: list[dict[str, Any]], **settings: Any) -> Path:
    """Write ``notify.toml``; fast settings (no real waiting) unless the test says otherwise."""
    settings = {"timeout_s": 2.0, "backoff_s": 1.0, "max_backoff_s": 60.0, "jitter": 0.0, **settings}
    lines = [f"{k} = {toml_value(v)}" for k, v in settings.items()]
    for hook in webhooks:
        lines.append("\n[[webhooks]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in hook.items()]
    path = ws.root / "notify.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def hook(name: str, url: str, kinds: list[str] | None = None, secret: str = SECRET) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "url": url, "secret": secret}
    if kinds is not None:
        out["kinds"] = kinds
    return out


def record(ws: Workspace, *events: dict[str, Any]) -> None:
    """Append events the way the engine does (append_events)."""
    with connect(ws.db_path) as con:
        append_events(con, list(events))


def promoted(system: str = "todo_api_system", actor: str = "ann") -> dict[str, Any]:
    return {
        "actor": actor,
        "system": system,
        "action": "state:promoted",
        "reason": "GO, p50 +1 %",
        "before": {"state": "judged", "version": 7},
        "after": {"state": "promoted", "version": 8},
    }


def rolled_back(system: str = "hello_world_api", actor: str = "trigger:error_rate") -> dict[str, Any]:
    return {
        "actor": actor,
        "system": system,
        "action": "state:rolled_back",
        "reason": "automatic rollback during parallel run: error rate 9.0 % > 5 %",
        "before": {"state": "parallel_run", "version": 5},
        "after": {"state": "rolled_back", "version": 6, "failure_document": "migration/failures/x.json"},
    }


class Sleeps:
    """An injected sleep: records the delays, waits for none of them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
