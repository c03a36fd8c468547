"""The OpenCRVS client over a real loopback socket whose server drops a kept-alive connection
just as the next request arrives (its idle timeout firing): a query is sent once more on a
new connection; a request not marked idempotent fails with `TransportError`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from dci_bridge.upstream.opencrvs.http import KEEPALIVE_S, TransportError, UpstreamHttp

pytestmark = pytest.mark.anyio

ANSWER = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
)


class DroppingServer:
    """Answers the first request of every connection, keeps it alive, and closes it without an
    answer when a second request arrives on it."""

    def __init__(self) -> None:
        self.connections = 0
        self.answered = 0
        self.dropped = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            for number in range(2):
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                if number == 0:
                    writer.write(ANSWER)
                    await writer.drain()
                    self.answered += 1
                else:
                    self.dropped += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[DroppingServer, str]]:
    dropping = DroppingServer()
    listener = await asyncio.start_server(dropping.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield dropping, f"http://127.0.0.1:{port}/graphql"
    finally:
        listener.close()
        await listener.wait_closed()


async def test_an_idempotent_request_is_sent_again_on_a_new_connection(server):
    dropping, url = server
    http = UpstreamHttp(max_connections=1, timeout_s=5)
    try:
        assert await http.request("POST", url, body=b"{}", idempotent=True) == (200, b'{"ok":true}')
        # the pooled connection is reused; the server drops it under the request
        assert await http.request("POST", url, body=b"{}", idempotent=True) == (200, b'{"ok":true}')
    finally:
        await http.aclose()
    assert dropping.dropped == 1
    assert dropping.answered == 2
    assert dropping.connections == 2


async def test_a_request_not_marked_idempotent_is_not_sent_twice(server):
    dropping, url = server
    http = UpstreamHttp(max_connections=1, timeout_s=5)
    try:
        await http.request("POST", url, body=b"{}")
        with pytest.raises(TransportError):
            await http.request("POST", url, body=b"{}")
    finally:
        await http.aclose()
    assert dropping.dropped == 1
    assert dropping.answered == 1


class KeepingServer:
    """Answers every request of a connection and keeps it open; counts connections."""

    def __init__(self) -> None:
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        await reader.readexactly(int(line.split(b":", 1)[1]))
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.mark.slow
async def test_a_connection_idle_longer_than_keepalive_is_not_reused():
    """Below the usual 5 s server timeout, the pool drops an idle connection itself: a
    request after a short pause reuses the connection, one after `KEEPALIVE_S` opens a new
    one (and never meets a connection the server is closing)."""
    assert 0 < KEEPALIVE_S < 5
    keeping = KeepingServer()
    listener = await asyncio.start_server(keeping.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/graphql"
    http = UpstreamHttp(max_connections=1, timeout_s=5)
    try:
        await http.request("POST", url, body=b"{}")
        await asyncio.sleep(0.2)
        await http.request("POST", url, body=b"{}")
        assert keeping.connections == 1
        await asyncio.sleep(KEEPALIVE_S + 1.0)
        await http.request("POST", url, body=b"{}")
        assert keeping.connections == 2
    finally:
        await http.aclose()
        listener.close()
        await listener.wait_closed()
