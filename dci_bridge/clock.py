"""Time is injected everywhere: use cases take a Clock, tests pass a FixedClock."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import msgspec

UTC = dt.UTC


class Clock(Protocol):
    """Source of the current time (always timezone-aware UTC)."""

    def now(self) -> dt.datetime:
        """Return the current instant as an aware UTC datetime."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to; for tests and deterministic seeding."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)


_ENCODE = msgspec.json.encode


def isoformat_z(moment: dt.datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with a `Z` suffix and millisecond precision
    (`moment.astimezone(UTC).isoformat(timespec="milliseconds")` with `Z` for `+00:00`).

    Read off msgspec's RFC 3339 encoding (`"YYYY-MM-DDTHH:MM:SS[.ffffff]Z"`, quoted): a tenth
    of the time of `isoformat(timespec=...)`, which parses its keyword on every call; a
    search formats several instants."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    text = _ENCODE(moment)
    if moment.microsecond:
        return text[1:24].decode() + "Z"  # milliseconds, truncated as isoformat does
    return text[1:20].decode() + ".000Z"
