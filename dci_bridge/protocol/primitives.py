"""Constrained string types shared by the DCI message structs.

Each type carries its constraint next to it (msgspec `Meta`), so decoding enforces it and
the exported JSON Schemas state it. Patterns end in `(?!\\n)$` because Python's `$` also
matches before a trailing newline; `[0-9]` rather than `\\d`, which in Python matches any
Unicode digit. Both forms mean the same in ECMA-262 regular expressions.
"""

from __future__ import annotations

import re
from typing import Annotated

from msgspec import Meta

DATE_TIME_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]"
    r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])(?!\n)$"
)
"""RFC 3339 `date-time` with a mandatory offset (`Z` or `±hh:mm`); fraction optional."""

LOCALE_PATTERN = r"^[a-z]{3}(?!\n)$"
"""The standard's `LanguageCode`: ISO 639-3, three lower-case letters."""

LOCALE_TOLERANT_PATTERN = r"^[a-z]{2,3}(?!\n)$"
"""What we accept: also ISO 639-1 two-letter codes, as in the standard's own example `en`."""

_LOCALE_RE = re.compile(LOCALE_PATTERN)

DateTime = Annotated[
    str,
    Meta(
        pattern=DATE_TIME_PATTERN,
        description="RFC 3339 date-time with a time zone offset",
        extra_json_schema={"format": "date-time"},
    ),
]
Locale = Annotated[
    str,
    Meta(pattern=LOCALE_TOLERANT_PATTERN, description="ISO 639-3 language code, e.g. `eng`"),
]
MessageId = Annotated[str, Meta(min_length=1)]
SenderId = Annotated[str, Meta(min_length=1)]
TransactionId = Annotated[str, Meta(min_length=1, max_length=99)]
CorrelationId = Annotated[str, Meta(min_length=1, max_length=99)]
SubscriptionCode = Annotated[str, Meta(min_length=1, max_length=99)]
ReferenceId = str
"""Per-item id: its rules (unique in the batch) give per-item `rjct.reference_id.*` codes."""
StatusReasonMessage = Annotated[str, Meta(max_length=999)]
Uri = Annotated[str, Meta(extra_json_schema={"format": "uri"})]
Signature = Annotated[
    str, Meta(description="Signature of {header}+{message} (MsgSignature); see docs/decisions.md")
]


def wire_locale(value: str | None) -> str | None:
    """`value` if it is a standard (three-letter) locale, else None: what a response may echo."""
    if value is not None and _LOCALE_RE.search(value):
        return value
    return None
