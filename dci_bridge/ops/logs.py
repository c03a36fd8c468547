"""Process logging: one JSON object per line (or plain text), on standard error.

The process entry points configure logging (`dci-bridge serve`/`demo`, and the ASGI factory
each server worker runs); the app itself never does. Loggers are named `dci_bridge.<area>`;
structured fields go in `extra={"fields": {...}}` and become top-level JSON keys.

Never log personal data: no names, identifiers, dates of birth, request or response bodies,
and no exception messages (they may quote input). `JsonFormatter` writes an exception's
type and stack frames only.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import traceback
from typing import Any, TextIO

import msgspec

ACCESS_LOGGER = "dci_bridge.access"
_encoder = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", ...fields}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = record.__dict__.get("fields")
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["stack"] = "".join(traceback.format_tb(record.exc_info[2]))
        return _encoder.encode(entry).decode()


class TextFormatter(logging.Formatter):
    """`time level logger message key=value ...` without exception messages."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__.get("fields")
        extra = ""
        if isinstance(fields, dict):
            extra = " " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        when = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%H:%M:%S")
        line = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}{extra}"
        if record.exc_info and record.exc_info[0] is not None:
            line += f"\n{record.exc_info[0].__name__}\n" + "".join(
                traceback.format_tb(record.exc_info[2])
            )
        return line


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Send every log record at `level` or above to `stream` (standard error) as `fmt`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # ours is dci_bridge.access
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))  # chatty at info
