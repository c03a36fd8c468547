"""The hand-tuned formatters on the search path give exactly what the standard library gives."""

from __future__ import annotations

import datetime as dt
import uuid

from hypothesis import given
from hypothesis import strategies as st

from dci_bridge.clock import isoformat_z
from dci_bridge.registry.ids import UuidSource

_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
_ZONES = st.one_of(st.just(dt.UTC), _OFFSETS)
_MOMENTS = st.datetimes(
    min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=_ZONES
)


@given(_MOMENTS)
def test_isoformat_z_is_isoformat_in_utc_with_milliseconds(moment: dt.datetime) -> None:
    expected = moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    assert isoformat_z(moment) == expected.replace("+00:00", "Z")


def test_isoformat_z_whole_seconds_and_truncation() -> None:
    assert (
        isoformat_z(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == "2026-01-02T03:04:05.000Z"
    )
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, 999_999, tzinfo=dt.UTC)
    assert isoformat_z(moment) == "2026-01-02T03:04:05.999Z"  # truncated, never rounded up
    plus_two = dt.timezone(dt.timedelta(hours=2))
    moment = dt.datetime(2026, 1, 1, 1, 0, 0, 1_000, tzinfo=plus_two)
    assert isoformat_z(moment) == "2025-12-31T23:00:00.001Z"


def test_new_ids_are_canonical_random_uuid4() -> None:
    source = UuidSource()
    ids = [source.new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical: lower case, hyphens in place
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    # 122 random bits: every hex digit outside the fixed version and variant nibbles varies
    for position in (0, 7, 9, 15, 20, 35):
        assert len({text[position] for text in ids}) > 8
