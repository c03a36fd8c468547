"""Loopback callback receivers for delivery tests: a recording ASGI app whose answer can be
changed while it runs, and raw-socket misbehaving servers (refuse, hang, trickle, huge)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dci_bridge.ops.asgi import read_body


@dataclass
class Received:
    path: str
    body: bytes
    headers: dict[str, str]
    at: float


@dataclass
class RecordingReceiver:
    """An ASGI app that records every POST and answers `status` (changeable)."""

    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    answer: bytes = (
        b'{"message":{"ack_status":"ACK","timestamp":"2026-11-23T10:00:00Z","correlation_id":"c"}}'
    )
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                if event["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self.lock:
            self.received.append(Received(scope["path"], body, headers, time.monotonic()))
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/json"), *self.headers],
            }
        )
        await send({"type": "http.response.body", "body": self.answer})

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [r.body for r in self.received]


@contextlib.contextmanager
def raw_server(behaviour: str) -> Iterator[str]:
    """A TCP server on loopback that misbehaves: `refuse` (closed port), `hang` (accepts,
    never answers), `trickle` (answers one byte per second), `huge` (a 200 with an endless
    body), `redirect` (302 to another place). Yields the base URL."""
    if behaviour == "refuse":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        yield f"http://127.0.0.1:{port}"
        return
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    port = server.getsockname()[1]
    stop = threading.Event()
    conns: list[socket.socket] = []

    def handle(conn: socket.socket) -> None:
        try:
            conn.settimeout(1.0)
            with contextlib.suppress(OSError):
                conn.recv(65536)
            if behaviour == "hang":
                while not stop.wait(0.2):
                    pass
            elif behaviour == "trickle":
                reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100
                for byte in reply:
                    if stop.wait(1.0):
                        break
                    conn.sendall(bytes([byte]))
            elif behaviour == "huge":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                chunk = b"y" * 65536
                while not stop.is_set():
                    conn.sendall(chunk)
            elif behaviour == "redirect":
                conn.sendall(
                    b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest\r\n"
                    b"Content-Length: 0\r\n\r\n"
                )
        except OSError:
            pass
        finally:
            conn.close()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conns.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(5)
        server.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()
