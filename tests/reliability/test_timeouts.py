"""Timeouts on every network call (issue 7 point 5): read off the source, then proven against hung peers.

A peer that accepts a connection and never answers (a SIGSTOPped process, a
full backlog) makes any call without a timeout wait forever: a health check
would stop the parallel run's watch, a reload would stop a rollback. So:

* a scan of ``engine/`` finds every call that waits on a peer (urllib,
  ``http.client``, sockets, asyncio streams and connections, the engine's own
  HTTP client) and fails unless it is bounded: a ``timeout`` argument that is
  not None, inside ``asyncio.wait_for`` or ``async with asyncio.timeout``, or
  in a function every caller of which is bounded; no ``timeout`` parameter
  defaults to None, no call passes None; and a network library the scan does
  not know of fails it too;
* each of the engine's own clients and its server give up on a hung peer
  within their bound.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.deploy import http, slots, supervisor
from engine.notify import deliver

ENGINE = Path(__file__).resolve().parents[2] / "engine"

WAITS_ON_PEER = {
    "urlopen",
    "create_connection",
    "HTTPConnection",
    "HTTPSConnection",
    "open_connection",
    "readline",
    "readexactly",
    "readuntil",
    "drain",
    "recv",
    "recv_into",
    "accept",
    "sendall",
    "connect",
    "round_trip",
}
"""Calls that wait on a peer, by the name called; ``.open(...)`` on an opener is matched separately.

``round_trip`` is the engine's own HTTP client connection (engine/deploy/http.py): an asyncio
protocol whose answer is a future the peer's bytes complete, so no library call marks the wait."""
SOCKET_METHODS = {"connect", "accept", "recv", "recv_into", "sendall"}
"""Of those, the names other objects use too: matched only on a receiver named like a socket."""

KNOWN_NETWORK_MODULES = {"urllib.request", "urllib.error", "http.client", "socket", "asyncio", "uvicorn"}
UNKNOWN_NETWORK_MODULES = {
    "requests",
    "httpx",
    "aiohttp",
    "urllib3",
    "websockets",
    "websocket",
    "grpc",
    "smtplib",
}


@dataclass
class Found:
    path: str
    line: int
    call: str
    bounded: bool
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.call}: {self.why}"


def _called_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _is_opener_open(node: ast.Call) -> bool:
    """``opener.open(...)`` / ``_opener(url).open(...)`` / ``build_opener(...).open(...)``."""
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "open"
        and "opener" in ast.unparse(func.value).lower()
    )


def _timeout_given(node: ast.Call) -> bool | None:
    """True: a timeout that is not None; False: ``timeout=None``; None: no timeout argument."""
    for keyword in node.keywords:
        if keyword.arg in ("timeout", "timeout_s"):
            return not (isinstance(keyword.value, ast.Constant) and keyword.value.value is None)
    if _called_name(node) == "urlopen" and len(node.args) >= 3:
        return True
    return None


class _Module:
    """One source file: parent links, so a call can be placed in its function and its timeout blocks."""

    def __init__(self, path: Path):
        self.path = str(path.relative_to(ENGINE.parent))
        self.tree = ast.parse(path.read_text(), filename=self.path)
        self.parent: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parent[child] = node

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        while node in self.parent:
            node = self.parent[node]
            yield node

    def lexically_bounded(self, node: ast.AST) -> bool:
        """Inside ``asyncio.wait_for(<here>, t)`` or ``async with asyncio.timeout(t): <here>``."""
        child = node
        for up in self.ancestors(node):
            if (
                isinstance(up, ast.Call)
                and _called_name(up) == "wait_for"
                and up.args
                and up.args[0] is child
            ):
                return len(up.args) > 1 or _timeout_given(up) is True
            if isinstance(up, ast.AsyncWith) and child in up.body:
                if any(
                    isinstance(item.context_expr, ast.Call) and _called_name(item.context_expr) == "timeout"
                    for item in up.items
                ):
                    return True
            child = up
        return False

    def enclosing_function(self, node: ast.AST) -> str | None:
        for up in self.ancestors(node):
            if isinstance(up, ast.FunctionDef | ast.AsyncFunctionDef):
                return up.name
        return None


def _modules() -> list[_Module]:
    return [_Module(p) for p in sorted(ENGINE.rglob("*.py"))]


def scan() -> list[Found]:
    """Every call in engine/ that waits on a peer, with whether (and why) it is bounded."""
    modules = _modules()
    calls_to: dict[str, list[tuple[_Module, ast.Call]]] = {}
    for module in modules:
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Call) and _called_name(node):
                calls_to.setdefault(_called_name(node), []).append((module, node))

    def function_bounded(name: str, seen: frozenset[str]) -> tuple[bool, str]:
        sites = [(m, c) for m, c in calls_to.get(name, []) if m.enclosing_function(c) != name]
        if not sites:
            return False, f"{name}() is never called inside engine/ under a bound"
        for module, call in sites:
            ok, why = call_bounded(module, call, seen | {name}, primitive=False)
            if not ok:
                return False, f"called from {module.path}:{call.lineno} unbounded ({why})"
        return True, f"every caller of {name}() is bounded"

    def call_bounded(
        module: _Module, call: ast.Call, seen: frozenset[str], primitive: bool = True
    ) -> tuple[bool, str]:
        # a timeout argument counts on the library call itself; passed to an engine function that
        # wraps one, it proves nothing (the function may drop it), so the bound must be found around it
        given = _timeout_given(call) if primitive else None
        if given is not None:
            return given, "timeout argument" if given else "timeout=None"
        if module.lexically_bounded(call):
            return True, "inside wait_for / asyncio.timeout"
        function = module.enclosing_function(call)
        if function is None or function in seen:
            return False, "no timeout and no bounded caller"
        return function_bounded(function, seen)

    found = []
    for module in modules:
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call):
                continue
            name = _called_name(node)
            if name not in WAITS_ON_PEER and not _is_opener_open(node):
                continue
            receiver = ast.unparse(node.func.value) if isinstance(node.func, ast.Attribute) else ""
            if name in SOCKET_METHODS and "sock" not in receiver.lower():
                continue  # duckdb.connect, graph.connect: same name, no peer
            if name == "readline" and receiver.split(".")[-1] == "stdin":
                # a child reading its own parent's pipe (the sandbox worker waiting for its next job):
                # no peer to hang on; the parent bounds each answer it waits for and ends the child
                # by closing the pipe (tests/sandbox/test_sandbox.py pins the time limit)
                continue
            ok, why = call_bounded(module, node, frozenset())
            found.append(Found(module.path, node.lineno, ast.unparse(node.func), ok, why))
    return found


def test_every_call_that_waits_on_a_peer_has_a_bound() -> None:
    found = scan()
    names = {f.call.rsplit(".", 1)[-1] for f in found}
    # the scan sees the engine's real clients and server (else it would pass by finding nothing)
    assert {"urlopen", "open", "create_connection", "round_trip"} <= names, names
    assert {f.path for f in found} >= {
        "engine/deploy/supervisor.py",
        "engine/deploy/http.py",
        "engine/notify/deliver.py",
        "engine/metrics/prometheus.py",
    }
    unbounded = [str(f) for f in found if not f.bounded]
    assert not unbounded, "network calls without a timeout:\n" + "\n".join(unbounded)


def test_no_timeout_defaults_to_or_is_passed_as_none() -> None:
    problems = []
    for module in _modules():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                named = args.posonlyargs + args.args
                pairs = list(zip(named[len(named) - len(args.defaults) :], args.defaults, strict=True))
                pairs += [
                    (a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None
                ]
                for arg, default in pairs:
                    if "timeout" in arg.arg and isinstance(default, ast.Constant) and default.value is None:
                        problems.append(f"{module.path}:{node.lineno} {node.name}({arg.arg}=None)")
            if isinstance(node, ast.Call) and _timeout_given(node) is False:
                problems.append(f"{module.path}:{node.lineno} {ast.unparse(node.func)}(timeout=None)")
    assert not problems, "\n".join(problems)


def test_the_engine_uses_no_network_library_the_scan_does_not_know() -> None:
    """A new client library (requests, httpx, ...) would slip past the scan: it has to be taught first."""
    used = set()
    for module in _modules():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                used |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                used.add(node.module)
    assert not {u for u in used if u.split(".")[0] in UNKNOWN_NETWORK_MODULES}


def test_the_scan_catches_a_call_without_a_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan itself: an unbounded urlopen, a stream read outside any bound, and a bounded pair."""
    package = tmp_path / "engine"
    package.mkdir()
    (package / "bad.py").write_text(
        "import asyncio, urllib.request\n"
        "def fetch(url):\n    return urllib.request.urlopen(url).read()\n"
        "async def head(reader):\n    return await reader.readline()\n"
        "async def fine(reader):\n    return await asyncio.wait_for(head(reader), 1)\n"
        "async def loose(reader):\n    return await head(reader)\n"
        "def ok(url):\n    return urllib.request.urlopen(url, timeout=2).read()\n"
    )
    monkeypatch.setitem(globals(), "ENGINE", package)
    verdicts = {(f.line, f.bounded) for f in scan()}
    assert verdicts == {(3, False), (5, False), (11, True)}


# --------------------------------------------------------------------------- against a hung peer


@contextlib.contextmanager
def hung_peer() -> Iterator[int]:
    """A port whose listener never accepts: the kernel completes the handshake, nobody ever answers.

    That is what a SIGSTOPped version looks like from outside.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def took(call: Callable[..., object], *args: object, **kwargs: object) -> tuple[float, object]:
    """(seconds, result or the exception raised); fails the test if the call is still waiting after 10 s.

    The call runs in a thread, so a missing timeout fails the test instead of hanging the suite (leaving
    the hung peer's context closes its socket, which lets the stuck call go).
    """
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = call(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the caller asserts on it
            box["result"] = exc

    start = time.monotonic()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():
        pytest.fail(f"{getattr(call, '__name__', call)} still waiting on a hung peer after 10 s")
    return time.monotonic() - start, box["result"]


def test_the_supervisors_calls_give_up_on_a_hung_peer() -> None:
    with hung_peer() as port:
        elapsed, result = took(supervisor.healthy, port)
        assert result is False and elapsed < 2
        elapsed, result = took(supervisor.get_json, port, "/endpoints", timeout=0.5)
        assert isinstance(result, OSError) and elapsed < 1.5
        elapsed, result = took(supervisor.post_json, port, "/_switchyard/reload", timeout=0.5)
        assert isinstance(result, OSError) and elapsed < 1.5


def test_upstream_gives_up_on_a_hung_peer() -> None:
    async def ask(port: int) -> None:
        upstream = http.Upstream("127.0.0.1", port)
        try:
            await upstream.request("POST", "/call/x", b"{}", timeout=0.5)
        finally:
            upstream.close()

    with hung_peer() as port:
        elapsed, result = took(asyncio.run, ask(port))
    assert isinstance(result, TimeoutError) and elapsed < 1.5


def test_a_smoke_test_of_a_hung_version_reports_it_once_within_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/endpoints answers, every call hangs: one problem after one timeout, not one per request."""
    monkeypatch.setattr(slots, "SMOKE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(
        supervisor, "get_json", lambda port, path, timeout=2.0: {"endpoints": {"a": {"x": "int"}, "b": {}}}
    )
    with hung_peer() as port:
        elapsed, problems = took(slots.smoke_test, port)
    assert isinstance(problems, list) and len(problems) == 1 and "no answer" in problems[0]
    assert elapsed < 1.5  # not 6 requests x the timeout


def test_the_smoke_test_reports_garbage_instead_of_raising() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = int(sock.getsockname()[1])

        def answer_garbage() -> None:
            with contextlib.suppress(OSError):
                conn, _ = sock.accept()
                with conn:
                    conn.recv(4096)
                    conn.sendall(b"\x00\xffnot http\r\n\r\n")

        threading.Thread(target=answer_garbage, daemon=True).start()
        elapsed, problems = took(slots.smoke_test, port)
    assert isinstance(problems, list) and problems[0].startswith("/endpoints: no usable answer (PeerError")
    assert elapsed < 3


def test_the_gateways_server_drops_a_client_that_goes_silent() -> None:
    """A client that connects and sends nothing (or half a request) is closed after the idle bound."""

    async def scenario() -> tuple[bytes, bytes, float]:
        async def handler(request: http.Request) -> http.Response:
            return http.Response(200, b"{}")

        server = await http.start_server(handler, "127.0.0.1", 0, idle_timeout_s=0.3)
        port = server.sockets[0].getsockname()[1]
        start = time.monotonic()
        try:
            silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", port)
            half_reader, half_writer = await asyncio.open_connection("127.0.0.1", port)
            half_writer.write(b"POST /x HTTP/1.1\r\ncontent-length: 10\r\n\r\n{")
            silent = await asyncio.wait_for(silent_reader.read(), 3)
            half = await asyncio.wait_for(half_reader.read(), 3)
            silent_writer.close()
            half_writer.close()
            return silent, half, time.monotonic() - start
        finally:
            server.close()

    silent, half, elapsed = asyncio.run(scenario())
    assert silent == b"" and half == b""  # closed, nothing sent
    assert elapsed < 2


def test_a_notification_to_a_hung_receiver_gives_up_within_its_timeout() -> None:
    with hung_peer() as port:
        elapsed, attempt = took(deliver.post_json, f"http://127.0.0.1:{port}/hook", b"{}", {}, 0.5)
    assert not attempt.ok and "timed out" in (attempt.error or "") and elapsed < 1.5  # type: ignore[attr-defined]
