"""Exposure of the app itself: ``streamlit run app.py`` listens on loopback only, and a visitor from
another address is a viewer when no identity provider is configured.

The server is the ``app`` fixture's, started without ``--server.address``: the
repo's ``.streamlit/config.toml`` decides where it listens. The visitor from
elsewhere comes through a reverse proxy on loopback that names the client in
X-Forwarded-For, as the README asks of one (the server trusts that header from
127.0.0.1 only); a small one runs here, so the browser's own headers play no part.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from engine import services
from tests.browser.test_journey import LONG
from tests.reliability.test_loopback import listening_sockets, sockets_of

pytestmark = pytest.mark.browser
REMOTE = "203.0.113.9"


def test_the_app_listens_on_loopback_only_by_default(app: Any) -> None:
    listening = listening_sockets()
    mine = [listening[i] for i in sockets_of(app.pid) if i in listening]
    port = int(app.url.rsplit(":", 1)[1])
    assert ("127.0.0.1", port) in mine, mine
    assert all(address == "127.0.0.1" for address, _ in mine), mine  # not 0.0.0.0, not ::


@contextlib.contextmanager
def forwarding_proxy(target_port: int, client: str) -> Iterator[str]:
    """A reverse proxy on 127.0.0.1 passing every connection to ``target_port`` with
    ``X-Forwarded-For: client`` added to its first request (a WebSocket has a connection of its own)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    address: list[str] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        request_line = await client_reader.readline()
        upstream_writer.write(request_line + f"X-Forwarded-For: {client}\r\n".encode())
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    async def serve() -> None:
        stop.append(asyncio.Event())
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        address.append(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        started.set()
        await stop[0].wait()
        server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # the connections still piped
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    stop: list[asyncio.Event] = []
    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    assert started.wait(10), "the proxy did not start"
    try:
        yield address[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(timeout=10)
        loop.close()


def test_a_visitor_from_another_address_is_a_viewer_and_is_told_why(
    playwright_browser: Any, app: Any
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=LONG)
    proxied = playwright_browser.new_context(viewport={"width": 1400, "height": 900})
    local = playwright_browser.new_context(viewport={"width": 1400, "height": 900})
    proxy = contextlib.ExitStack()
    try:
        via = proxy.enter_context(forwarding_proxy(int(app.url.rsplit(":", 1)[1]), REMOTE))
        page = proxied.new_page()
        page.set_default_timeout(LONG)
        page.goto(f"{via}/conversion")
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar).to_contain_text(f"anonymous from {REMOTE} (no identity provider) · viewer")
        expect(sidebar).to_contain_text(f"You reach this app from another machine ({REMOTE})")
        expect(page.get_by_role("button", name="Convert")).to_be_disabled()
        expect(page.get_by_test_id("stAlertContentInfo").first).to_contain_text("identity provider")

        page = local.new_page()  # the same server, from this machine: the OS user, an operator
        page.set_default_timeout(LONG)
        page.goto(f"{app.url}/conversion")
        expect(page.get_by_test_id("stSidebar")).to_contain_text(f"{services.default_actor()} · operator")
        expect(page.get_by_role("button", name="Convert")).to_be_enabled()
    except Exception:
        print(f"\nstreamlit log:\n{app.log_tail()}")
        raise
    finally:
        proxied.close()
        local.close()
        proxy.close()
