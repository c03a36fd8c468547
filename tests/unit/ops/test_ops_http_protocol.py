"""`HeadHoldingTransport` (the served bridge's transport under uvicorn): a response head is
sent together with the body that follows it in the same pass of the event loop, and bytes
are never reordered, changed or lost."""

from __future__ import annotations

import asyncio

import pytest

from dci_bridge.ops.http_protocol import HeadHoldingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    """The real transport, as far as the proxy uses it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, lines: list[bytes]) -> None:
        self.calls.append(("writelines", list(lines)))

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def close(self) -> None:
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.calls.append(("abort", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)


@pytest.fixture
def pair():
    loop = asyncio.new_event_loop()
    real = Recorder()
    yield loop, real, HeadHoldingTransport(real, loop)  # type: ignore[arg-type]
    loop.close()


def _tick(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))


def test_a_head_and_its_body_go_out_in_one_write(pair):
    loop, real, transport = pair
    transport.write(HEAD)
    assert real.calls == []
    transport.write(b"{}")
    assert real.calls == [("write", HEAD + b"{}")]
    _tick(loop)
    assert real.calls == [("write", HEAD + b"{}")]  # nothing left to release


def test_a_head_alone_goes_out_at_the_end_of_the_pass(pair):
    loop, real, transport = pair
    transport.write(HEAD)
    _tick(loop)
    assert real.calls == [("write", HEAD)]
    transport.write(b"{}")
    assert real.calls == [("write", HEAD), ("write", b"{}")]


def test_other_writes_are_not_held(pair):
    _, real, transport = pair
    transport.write(b"5\r\nhello\r\n")
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the client waits for this one
    transport.write(bytearray(b"HTTP/1.1 200 OK\r\n\r\n"))
    assert [data for _, data in real.calls] == [
        b"5\r\nhello\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
    ]


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("close", [("write", HEAD), ("close", None)]),
        ("write_eof", [("write", HEAD), ("write_eof", None)]),
        ("writelines", [("write", HEAD), ("writelines", [b"a", b"b"])]),
        ("abort", [("abort", None)]),
    ],
)
def test_what_is_held_goes_first_or_is_dropped_with_an_abort(pair, action, expected):
    loop, real, transport = pair
    transport.write(HEAD)
    if action == "writelines":
        transport.writelines([b"a", b"b"])
    else:
        getattr(transport, action)()
    _tick(loop)
    assert real.calls == expected


def test_everything_else_is_the_real_transport(pair):
    _, real, transport = pair
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5)
    real.closing = True
    assert transport.is_closing() is True
