"""The OpenCRVS HTTP client's reading of answers, for any body, any framing and any way the
bytes are cut into reads: the body handed back is exactly the body sent; a kept-alive
connection stays reusable and one that the answer ends by closing does not; an answer cut
short is an error, never a shorter body. And request headers, once encoded, are read back
by an HTTP parser as exactly the names and values given."""

from __future__ import annotations

import asyncio
import itertools

import httptools
from hypothesis import given, settings
from hypothesis import strategies as st

from dci_bridge.upstream.opencrvs.http import Headers, TransportError, _Connection, _Origin


class FakeTransport:
    """Stands in for the socket: the test feeds the connection's reads itself."""

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.closing = False
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.connection.connection_lost(None)


def _framed(status: int, body: bytes, framing: str, chunk_sizes: list[int]) -> bytes:
    head = b"HTTP/1.1 %d X\r\n" % status
    if framing == "length":
        return head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    if framing == "chunked":
        out, start = [head + b"Transfer-Encoding: chunked\r\n\r\n"], 0
        sizes = iter(chunk_sizes)
        while start < len(body):
            size = max(1, next(sizes, len(body)))
            piece = body[start : start + size]
            out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
            start += size
        out.append(b"0\r\n\r\n")
        return b"".join(out)
    return head + b"Connection: close\r\n\r\n" + body  # ends with the connection


def _cut(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({0, len(data), *(point % (len(data) + 1) for point in points)})
    return [data[a:b] for a, b in itertools.pairwise(marks)]


def _exchange(data_pieces: list[bytes], *, close_after: bool) -> tuple[object, _Connection]:
    """Feed the pieces to a fresh connection waiting for an answer; what the waiter got (a
    (status, body) pair, an exception, or None when still waiting) and the connection."""
    loop = asyncio.new_event_loop()
    try:
        origin = _Origin("http", "127.0.0.1", 80, 1, None)
        origin.open = 1
        connection = _Connection(origin)
        connection.connection_made(FakeTransport(connection))  # type: ignore[arg-type]
        waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        connection.send(b"GET / HTTP/1.1\r\n\r\n", waiter)
        for piece in data_pieces:
            connection.data_received(piece)
        if close_after:
            connection.connection_lost(None)
        if not waiter.done():
            return None, connection
        exc = waiter.exception()
        return (exc if exc is not None else waiter.result()), connection
    finally:
        loop.close()


statuses = st.sampled_from([200, 201, 400, 401, 404, 500, 503])
framings = st.sampled_from(["length", "chunked", "close"])


@settings(max_examples=300, deadline=None)
@given(
    status=statuses,
    body=st.binary(max_size=3000),
    framing=framings,
    chunk_sizes=st.lists(st.integers(1, 700), max_size=20),
    points=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_any_answer_cut_anywhere_reads_back_exactly(status, body, framing, chunk_sizes, points):
    wire = _framed(status, body, framing, chunk_sizes)
    got, connection = _exchange(_cut(wire, points), close_after=framing == "close")
    assert got == (status, body)
    assert connection.reusable is (framing != "close")


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(min_size=1, max_size=2000),
    framing=st.sampled_from(["length", "chunked"]),
    chunk_sizes=st.lists(st.integers(1, 500), max_size=10),
    keep=st.data(),
)
def test_an_answer_cut_short_by_the_close_is_an_error(body, framing, chunk_sizes, keep):
    wire = _framed(200, body, framing, chunk_sizes)
    short = wire[: keep.draw(st.integers(0, len(wire) - 1))]
    got, connection = _exchange([short] if short else [], close_after=True)
    assert isinstance(got, TransportError)
    assert connection.reusable is False


header_names = st.text(
    alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    min_size=1,
    max_size=20,
).filter(
    lambda name: name.lower() not in {"host", "content-length", "transfer-encoding", "connection"}
)
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=60,
).map(str.strip)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(header_names, header_values, max_size=8))
def test_encoded_headers_parse_back_to_the_same_names_and_values(values):
    lowered = {}
    for name, value in values.items():
        lowered.setdefault(name.lower(), (name, value))
    values = dict(lowered.values())  # HTTP names are case-insensitive: one of each
    seen: list[tuple[bytes, bytes]] = []

    class Collect:
        def on_header(self, name: bytes, value: bytes) -> None:
            seen.append((name, value))

    parser = httptools.HttpRequestParser(Collect())
    parser.feed_data(b"GET / HTTP/1.1\r\n" + Headers(values).block + b"\r\n")
    assert [(n.decode("latin-1"), v.decode("latin-1")) for n, v in seen] == list(values.items())
