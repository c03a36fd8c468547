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
import threading
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


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that does not flush after every line (a system call per request on
    the hot path): lines are flushed at once from WARNING up, else by a background thread
    within `interval_s`, and at exit (`logging.shutdown`)."""

    def __init__(self, stream: TextIO, interval_s: float = 0.2) -> None:
        super().__init__(stream)
        self._dirty = False
        self._interval_s = interval_s
        self._stop = threading.Event()  # not `_closed`: logging.Handler.close() sets that to True
        threading.Thread(target=self._flusher, name="log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            with self.lock:  # type: ignore[union-attr]
                self.stream.write(line)
                self._dirty = True
                if record.levelno >= logging.WARNING:
                    self.stream.flush()
                    self._dirty = False
        except Exception:
            self.handleError(record)

    def _flusher(self) -> None:
        while not self._stop.wait(self._interval_s):
            if self._dirty:
                self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._dirty = False
            if self.stream and hasattr(self.stream, "flush"):
                self.stream.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()
        super().close()


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Send every log record at `level` or above to `stream` (standard error) as `fmt`."""
    handler = BufferedStreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, BufferedStreamHandler):
            old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # ours is dci_bridge.access
    # chatty at info: alembic (every connection), apscheduler (every tick), and httpx/httpcore,
    # whose request lines carry URLs (an upstream query string could carry an identifier)
    for name in ("alembic", "apscheduler", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
