"""A lean HTTP/1.1 server and a pooled keep-alive client on asyncio streams.

Why not a framework: the gateway sits in front of every request of a
parallel run, so its own cost must stay small beside the services'. A
starlette handler forwarding through an HTTP client library measured 0.035x
of direct here; a stream proxy with pooled keep-alive connections keeps
about 1.0x (DESIGN.md section 11). Only what the gateway and the workload
need is supported: ``Content-Length`` bodies (no chunked encoding), keep-alive,
loopback peers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MAX_HEADER_LINES = 100
MAX_BODY = 16 * 1024 * 1024
IDLE_TIMEOUT_S = 60.0
"""How long the server waits for a client's next request (or the rest of one) before closing it.

A client that connects and goes silent (a hung or stopped peer) would
otherwise hold a connection and a coroutine here forever."""
WRITE_TIMEOUT_S = 30.0
"""How long the server waits for a client to take an answer off the wire (a peer that stopped reading)."""
CLIENT_TIMEOUT_S = 10.0
"""Default bound on one request of :class:`Upstream`: connect, send and the whole answer."""
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict", 502: "Bad Gateway"}


class HttpError(Exception):
    """The peer broke the protocol or went away."""


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    """Further header lines (names in lower case), e.g. a version's ``server-timing``."""


Handler = Callable[[Request], Awaitable[Response]]


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
    """The first line and the headers of a message; None on a clean end of stream."""
    first = await reader.readline()
    if not first:
        return None
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            return first.decode("latin-1").rstrip("\r\n"), headers
        if not line:
            raise HttpError("connection closed inside the headers")
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    raise HttpError("too many header lines")


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", ""):
        raise HttpError("chunked bodies are not supported")
    length = int(headers.get("content-length", "0") or 0)
    if length < 0 or length > MAX_BODY:
        raise HttpError(f"body length {length} out of range")
    return await reader.readexactly(length) if length else b""


def _encode_response(response: Response, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}\r\n"
        f"content-type: {response.content_type}\r\n"
        f"content-length: {len(response.body)}\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in response.headers.items())
        + f"connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode("latin-1") + response.body


async def _serve_connection(
    handler: Handler,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
) -> None:
    """Answer requests on one connection until the client closes it, breaks the protocol or goes silent.

    Reading a request and writing its answer are each bounded in time; the
    handler is not (the gateway's own upstream calls carry their timeouts).
    """
    try:
        while True:
            async with asyncio.timeout(idle_timeout_s):
                head = await _read_head(reader)
                if head is None:
                    return
                request_line, headers = head
                method, path, *_ = request_line.split(" ") + ["", ""]
                body = await _read_body(reader, headers)
            response = await handler(Request(method, path, headers, body))
            keep_alive = headers.get("connection", "").lower() != "close"
            writer.write(_encode_response(response, keep_alive))
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await writer.drain()
            if not keep_alive:
                return
    except (HttpError, ValueError, ConnectionError, asyncio.IncompleteReadError, TimeoutError):
        return
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def start_server(
    handler: Handler, host: str, port: int, idle_timeout_s: float = IDLE_TIMEOUT_S
) -> asyncio.Server:
    """Serve ``handler`` on ``host:port`` until the returned server is closed."""
    return await asyncio.start_server(
        lambda r, w: _serve_connection(handler, r, w, idle_timeout_s),
        host,
        port,
        reuse_address=True,
        backlog=1024,
    )


class Upstream:
    """Keep-alive connections to one ``host:port``, reused across requests (one request at a time each)."""

    def __init__(self, host: str, port: int, max_idle: int = 256):
        self.host, self.port, self.max_idle = host, port, max_idle
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.in_flight = 0
        self.closed = False

    async def request(
        self, method: str, path: str, body: bytes = b"", timeout: float = CLIENT_TIMEOUT_S
    ) -> tuple[int, bytes]:
        """:meth:`exchange` without the headers."""
        status, _, payload = await self.exchange(method, path, body, timeout)
        return status, payload

    async def exchange(
        self, method: str, path: str, body: bytes = b"", timeout: float = CLIENT_TIMEOUT_S
    ) -> tuple[int, dict[str, str], bytes]:
        """One request: ``(status, headers, body)``; HttpError/OSError/TimeoutError if it fails.

        Header names in lower case (the gateway reads a version's ``server-timing``).

        ``timeout`` bounds the whole exchange (connecting, a retry on a fresh
        connection included), so a peer that accepts and never answers costs
        at most that long.
        """
        self.in_flight += 1
        try:
            # a timeout scope, not wait_for: on Python 3.11 wait_for runs the exchange as a task of its
            # own, a loop turn before the request is sent and another after the answer, which the
            # gateway's latency measurement took in (and the client paid for) on every request
            async with asyncio.timeout(timeout):
                return await self._exchange(method, path, body)
        finally:
            self.in_flight -= 1

    async def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        reused = bool(self._idle)
        reader, writer = self._idle.pop() if reused else await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(
                (
                    f"{method} {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
                    f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
                ).encode("latin-1")
                + body
            )
            await writer.drain()
            head = await _read_head(reader)
            if head is None:
                raise HttpError("connection closed before the response")
            status_line, headers = head
            status = int(status_line.split(" ", 2)[1])
            payload = await _read_body(reader, headers)
        except (HttpError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            writer.close()
            if reused:  # a pooled connection the peer had already closed: retry once on a fresh one
                self.drop_idle()
                return await self._exchange(method, path, body)
            raise HttpError(f"{self.host}:{self.port}: {exc or type(exc).__name__}") from exc
        except BaseException:
            writer.close()
            raise
        if (
            headers.get("connection", "").lower() == "close"
            or self.closed
            or len(self._idle) >= self.max_idle
        ):
            writer.close()
        else:
            self._idle.append((reader, writer))
        return status, headers, payload

    def drop_idle(self) -> None:
        """Close every idle connection (in-flight ones finish and close themselves after ``close``)."""
        while self._idle:
            self._idle.pop()[1].close()

    def close(self) -> None:
        self.closed = True
        self.drop_idle()
