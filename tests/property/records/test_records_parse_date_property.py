"""`parse_date`'s fast path for `YYYY-MM-DD` accepts and refuses exactly what the full
checks do (a regular expression, then the calendar), for any ten characters."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from dci_bridge.records._fhir import MappingError, parse_date, parse_instant

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def _reference(value: Any) -> str | None:
    """`parse_date` without the fast path."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise MappingError("$", "date is not a string")
    day = value.strip()[:10]
    match = _PARTIAL.match(day)
    if not match:
        raise MappingError("$", "not a FHIR date")
    try:
        if match.group(3):
            dt.date.fromisoformat(day)
        elif match.group(2) and not 1 <= int(match.group(2)) <= 12:
            raise ValueError(day)
    except ValueError:
        raise MappingError("$", "not a calendar date") from None
    if len(value.strip()) > 10:
        parse_instant(value, "$")
    return day


def _outcome(read: Any, value: Any) -> tuple[str, str | None]:
    try:
        return "ok", read(value)
    except MappingError as exc:
        return "error", exc.message


_CHARS = st.sampled_from(list("0123456789-- WT:Z+\u0661\u06f5"))


@given(st.text(_CHARS, min_size=10, max_size=10))
@example("2001-02-29")
@example("2000-02-29")
@example("2001-13-01")
@example("\u0662001-01-01")
@example("2001-01-01")
def test_fast_path_agrees_with_the_full_checks(value: str) -> None:
    assert _outcome(lambda v: parse_date(v, "$"), value) == _outcome(_reference, value)


@given(st.dates(min_value=dt.date(1000, 1, 1)))
def test_every_calendar_day_is_read_as_written(day: dt.date) -> None:
    assert parse_date(day.isoformat(), "$") == day.isoformat()
