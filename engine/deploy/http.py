"""A lean HTTP/1.1 server and a pooled keep-alive client on asyncio protocols.

Why not a framework: the gateway sits in front of every request of a
parallel run, so its own cost must stay small beside the services'. A
starlette handler forwarding through an HTTP client library measured 0.035x
of direct here; a stream proxy with pooled keep-alive connections keeps
about 1.0x (DESIGN.md section 11). Only what the gateway and the workload
need is supported: ``Content-Length`` bodies (no chunked encoding), keep-alive,
loopback peers.

Why protocols and not asyncio's streams: a message read with streams costs a
``readline`` per header line, each a coroutine, a buffer scan and a copy, and
the gateway reads two messages per request (the caller's, the slot's answer).
Measured under ``wrk`` here (bench/gateway_vs_nginx.py), the stream gateway
spent ~260-300 us of CPU per proxied request against nginx's ~80-100; a
protocol keeps the bytes in one buffer, finds the end of the head with one
``find`` and splits it once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

MAX_HEADER_LINES = 100
MAX_HEAD_BYTES = 64 * 1024
"""A head (request or status line and headers) longer than this is refused (asyncio's stream line limit)."""
MAX_BODY = 16 * 1024 * 1024
IDLE_TIMEOUT_S = 60.0
"""How long the server waits for a client's next request (or the rest of one) before closing it.

A client that connects and goes silent (a hung or stopped peer) would
otherwise hold a connection here forever."""
WRITE_TIMEOUT_S = 30.0
"""How long the server waits for a client to take an answer off the wire (a peer that stopped reading)."""
CLIENT_TIMEOUT_S = 10.0
"""Default bound on one request of :class:`Upstream`: connect, send and the whole answer."""
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict", 502: "Bad Gateway"}
_PAUSE_READING_AT = 256 * 1024
"""Bytes a client may send ahead (pipelined) while its current request is being handled."""


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


def _message(buffer: bytearray) -> tuple[str, dict[str, str], bytes, int] | None:
    """The first whole message in ``buffer``: (first line, headers, body, bytes it took); None until whole.

    The head ends at its first empty line, ``\\r\\n`` or a bare ``\\n`` alike.
    Header names in lower case. Raises HttpError for what this module does not
    speak (chunked bodies, a length out of range, an oversized head) and
    ValueError for a length that is not a number.
    """
    end = buffer.find(b"\n\r\n")  # CRLF heads (all but hand-made ones): the head ends here, +1
    bare = buffer.find(b"\n\n", 0, end + 1) if end >= 0 else buffer.find(b"\n\n")
    if bare >= 0:
        end, start = bare, bare + 2
    elif end >= 0:
        start = end + 3
    else:
        if len(buffer) > MAX_HEAD_BYTES:
            raise HttpError("head too long")
        return None
    lines = buffer[:end].decode("latin-1").split("\n")  # a CRLF line keeps its \r: stripped below
    if len(lines) > MAX_HEADER_LINES + 1:
        raise HttpError("too many header lines")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers and "chunked" in headers["transfer-encoding"]:
        raise HttpError("chunked bodies are not supported")
    length = int(headers.get("content-length") or 0)
    if length < 0 or length > MAX_BODY:
        raise HttpError(f"body length {length} out of range")
    if len(buffer) < start + length:
        return None
    return lines[0].rstrip("\r"), headers, bytes(buffer[start : start + length]), start + length


def _encode_response(response: Response, keep_alive: bool) -> bytes:
    if not response.headers and response.content_type == "application/json" and keep_alive:
        # the gateway's every answer: the head's fixed parts made once (_JSON_HEAD), the length put in
        prefix = _JSON_HEAD.get(response.status)
        if prefix is not None:
            return b"%s%d\r\nconnection: keep-alive\r\n\r\n%s" % (prefix, len(response.body), response.body)
    head = (
        f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}\r\n"
        f"content-type: {response.content_type}\r\n"
        f"content-length: {len(response.body)}\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in response.headers.items())
        + f"connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode("latin-1") + response.body


_JSON_HEAD = {
    status: f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: ".encode()
    for status, reason in REASONS.items()
}


class _ServerConnection(asyncio.Protocol):
    """One client connection: requests answered one at a time, in order, until it closes or goes silent.

    Reading a request is bounded by ``idle_timeout_s`` from the end of the
    previous answer (or the connection's start), writing an answer by
    :data:`WRITE_TIMEOUT_S`; the handler is not (the gateway's own upstream
    calls carry their timeouts). A request the module cannot read closes the
    connection, as does an error in the handler.
    """

    def __init__(self, handler: Handler, idle_timeout_s: float):
        self.handler = handler
        self.idle_timeout_s = idle_timeout_s
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False
        self.eof = False
        self.last = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None
        self.writable: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.last = self.loop.time()
        self.idle_timer = self.loop.call_at(self.last + self.idle_timeout_s, self._check_idle)

    def _check_idle(self) -> None:
        """The idle bound, as one timer per connection moved on lazily (not one per request)."""
        assert self.transport is not None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self.busy:
            due = now + self.idle_timeout_s  # re-armed in full once the answer is out
        else:
            due = self.last + self.idle_timeout_s
            if due <= now:
                self.transport.close()
                return
        self.idle_timer = self.loop.call_at(due, self._check_idle)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next()
        elif len(self.buffer) > _PAUSE_READING_AT:
            assert self.transport is not None
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        return self.busy  # keep the transport open for the answer being prepared, else close

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    def _next(self) -> None:
        """Start on the next whole request in the buffer, if there is one."""
        assert self.transport is not None
        try:
            message = _message(self.buffer)
        except (HttpError, ValueError):
            self.transport.close()
            return
        if message is None:
            return
        request_line, headers, body, used = message
        del self.buffer[:used]
        method, path, *_ = request_line.split(" ") + ["", ""]
        keep_alive = headers.get("connection", "").lower() != "close"
        self.busy = True
        self.task = self.loop.create_task(self._answer(Request(method, path, headers, body), keep_alive))

    async def _answer(self, request: Request, keep_alive: bool) -> None:
        transport = self.transport
        assert transport is not None
        try:
            response = await self.handler(request)
        except asyncio.CancelledError:
            transport.close()
            raise
        except Exception as exc:  # noqa: BLE001 - said as asyncio says it, and this connection ends
            self.loop.call_exception_handler(
                {"message": "HTTP handler failed", "exception": exc, "protocol": self}
            )
            transport.close()
            return
        if transport.is_closing():
            return
        transport.write(_encode_response(response, keep_alive))
        if self.writable is not None:  # the client is not taking its answers off the wire
            try:
                async with asyncio.timeout(WRITE_TIMEOUT_S):
                    await self.writable
            except TimeoutError:
                transport.abort()
                return
        if not keep_alive or self.eof:
            transport.close()
            return
        self.busy = False
        self.last = self.loop.time()
        transport.resume_reading()
        if self.buffer:
            self._next()


async def start_server(
    handler: Handler, host: str, port: int, idle_timeout_s: float = IDLE_TIMEOUT_S
) -> asyncio.Server:
    """Serve ``handler`` on ``host:port`` until the returned server is closed."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: _ServerConnection(handler, idle_timeout_s),
        host,
        port,
        reuse_address=True,
        backlog=1024,
    )


class _ClientConnection(asyncio.Protocol):
    """A keep-alive connection of :class:`Upstream`: one request at a time, its answer parsed as it comes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            self.close()  # the peer spoke unasked: nothing it says on this connection can be trusted
            return
        try:
            message = _message(self.buffer)
            if message is None:
                return
            status_line, headers, body, used = message
            status = int(status_line.split(" ", 2)[1])
        except (HttpError, ValueError, IndexError) as exc:
            waiter.set_exception(HttpError(str(exc) or type(exc).__name__))
            return
        del self.buffer[:used]
        waiter.set_result((status, headers, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionResetError(f"connection closed before the response ({exc})"))

    def eof_received(self) -> bool:
        return False  # close; a waiting request learns it in connection_lost

    async def round_trip(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send one request, wait for its whole answer (:meth:`Upstream.exchange` bounds the wait)."""
        if self.lost or self.transport is None:
            raise ConnectionResetError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        try:
            return await self.waiter
        finally:
            self.waiter = None

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


class Upstream:
    """Keep-alive connections to one ``host:port``, reused across requests (one request at a time each)."""

    def __init__(self, host: str, port: int, max_idle: int = 256):
        self.host, self.port, self.max_idle = host, port, max_idle
        self._idle: list[_ClientConnection] = []
        self._host_header = f"host: {host}:{port}\r\ncontent-type: application/json\r\n"
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
        connection = None
        while self._idle and connection is None:
            connection = self._idle.pop()
            if connection.lost:  # the peer closed it while it sat in the pool
                connection = None
        reused = connection is not None
        if connection is None:
            _, connection = await asyncio.get_running_loop().create_connection(
                _ClientConnection, self.host, self.port
            )
        request = (
            f"{method} {path} HTTP/1.1\r\n{self._host_header}content-length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        try:
            status, headers, payload = await connection.round_trip(request)
        except (HttpError, ConnectionError) as exc:
            connection.close()
            if reused:  # a pooled connection the peer had already closed: retry once on a fresh one
                self.drop_idle()
                return await self._exchange(method, path, body)
            raise HttpError(f"{self.host}:{self.port}: {exc or type(exc).__name__}") from exc
        except BaseException:
            connection.close()
            raise
        if (
            headers.get("connection", "").lower() == "close"
            or self.closed
            or connection.lost
            or connection.buffer
            or len(self._idle) >= self.max_idle
        ):
            connection.close()
        else:
            self._idle.append(connection)
        return status, headers, payload

    def drop_idle(self) -> None:
        """Close every idle connection (in-flight ones finish and close themselves after ``close``)."""
        while self._idle:
            self._idle.pop().close()

    def close(self) -> None:
        self.closed = True
        self.drop_idle()
