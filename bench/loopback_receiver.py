"""The benches' callback receiver, run as its own process (so it does not share a GIL with
the load generator being timed):

    python bench/loopback_receiver.py PORT ARRIVALS_FILE

Answers every POST with a DCI ACK and appends one line per DCI message received:
`<time.time()> <time.monotonic()> <header.action> <message.correlation_id or -> <path>`.
Both clocks are system-wide, so other processes can compare them with their own.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import msgspec
import uvicorn

from dci_bridge.ops.asgi import read_body

ACK = b'{"message":{"ack_status":"ACK","timestamp":"2026-11-23T10:00:00Z","correlation_id":"c"}}'


class _Header(msgspec.Struct):
    action: str = "-"


class _Message(msgspec.Struct):
    correlation_id: str = "-"


class _Envelope(msgspec.Struct):
    header: _Header = msgspec.field(default_factory=_Header)
    message: _Message | None = None


_DECODE = msgspec.json.Decoder(_Envelope)


def make_app(arrivals: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await read_body(receive)
        try:
            envelope = _DECODE.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            envelope = None
        if envelope is not None:
            corr = envelope.message.correlation_id if envelope.message else "-"
            arrivals.write(
                f"{time.time():.6f} {time.monotonic():.6f} {envelope.header.action}"
                f" {corr} {scope['path']}\n"
            )
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": ACK})

    return app


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    with open(path, "a", buffering=1) as arrivals:
        uvicorn.run(
            make_app(arrivals),
            host="127.0.0.1",
            port=port,
            log_level="error",
            access_log=False,
            lifespan="off",
            http="httptools",
            loop="uvloop",
        )


if __name__ == "__main__":
    main()
