"""uvicorn's httptools protocol, sending each response's head and body in one system call.

uvicorn writes a response's status line and headers the moment the app sends
`http.response.start`, then the body on `http.response.body`: two `write` system calls for
every answer, and on loopback each one runs the receiver's TCP path and wakes it. For a
DCI search that is one of four writes the bridge makes (two to OpenCRVS, two to the client).
`CoalescingHttpToolsProtocol` (selected in `cli/server.py`) gives uvicorn's protocol a
transport that holds a response head back until the next write, which it joins, or until
the end of the event loop's current pass (`call_soon`), whichever comes first. Bytes are
only ever delayed within that pass, never reordered or changed: a close, `write_eof` or
`writelines` sends what is held first, an abort drops it with the rest of the buffer.
Everything else is the real transport's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingHttpToolsProtocol", "HeadHoldingTransport"]

_HEAD_START = b"HTTP/1.1 "
_INTERIM = b"HTTP/1.1 1"
_HEAD_END = b"\r\n\r\n"


class HeadHoldingTransport:
    """A transport proxy holding back a response head (see the module docstring)."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
            return
        if (
            isinstance(data, bytes)
            and data.startswith(_HEAD_START)
            and data.endswith(_HEAD_END)
            and not data.startswith(_INTERIM)  # 100 Continue: the client waits for it
        ):
            self._held = data
            self._loop.call_soon(self.release)
            return
        self._transport.write(data)

    def release(self) -> None:
        """Send what is held, if anything."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def writelines(self, list_of_data: Any) -> None:
        self.release()
        self._transport.writelines(list_of_data)

    def write_eof(self) -> None:
        self.release()
        self._transport.write_eof()

    def close(self) -> None:
        self.release()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `HeadHoldingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeadHoldingTransport(transport, self.loop))  # type: ignore[arg-type]
