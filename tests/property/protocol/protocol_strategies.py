"""Hypothesis strategies for every DCI struct, derived from the structs' own type info.

`instances(SearchRequest)` draws valid values of any struct by walking
`msgspec.inspect.type_info`: the constraints on the fields (lengths, patterns, enums) are
the ones the decoder enforces, so what is drawn is what the bridge must accept. With
`standard=True` only the standard's forms are drawn (three-letter locales, NEW txn types,
objects where the standard types an untyped field as object), i.e. what the exported JSON
Schemas must accept.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from dci_bridge.protocol.codes import TxnType
from dci_bridge.protocol.primitives import DATE_TIME_PATTERN, LOCALE_TOLERANT_PATTERN
from dci_bridge.protocol.search import (
    QUERY_SCHEMA,
    ExpressionQuery,
    IdTypeValueQuery,
    PredicateItem,
    SearchResponse,
)
from dci_bridge.protocol.subscribe import SubscribeResponse, UnSubscribeResponse
from dci_bridge.protocol.txn import TXN_STATUS_SCHEMA

TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
INTS = st.integers(min_value=-(2**53), max_value=2**53)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
JSON_SCALARS = st.none() | st.booleans() | INTS | FLOATS | TEXT
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
JSON_OBJECTS = st.dictionaries(TEXT, JSON, max_size=4)


@st.composite
def date_times(draw: st.DrawFn) -> str:
    """RFC 3339 date-times with an offset, in the spellings the pattern allows."""
    m = draw(st.datetimes(min_value=dt.datetime(1, 1, 1)))
    separator = draw(st.sampled_from("Tt"))
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}{separator}"
    text += f"{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    if draw(st.booleans()):
        text += "." + str(draw(st.integers(0, 999_999))).zfill(draw(st.integers(1, 6)))
    offset = draw(
        st.sampled_from(["Z", "z"])
        | st.builds(
            lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
            st.sampled_from("+-"),
            st.integers(0, 23),
            st.integers(0, 59),
        )
    )
    return text + offset


@cache
def instances(cls: type[Any], *, standard: bool = False) -> st.SearchStrategy[Any]:
    """Valid instances of the struct `cls`."""
    return _strategy(mi.type_info(cls), standard)


def _strategy(t: mi.Type, standard: bool) -> st.SearchStrategy[Any]:
    if isinstance(t, mi.Metadata):
        extra = t.extra_json_schema or {}
        if extra.get("anyOf") == QUERY_SCHEMA["anyOf"]:
            return _as_json(
                st.one_of(
                    instances(IdTypeValueQuery, standard=standard),
                    instances(ExpressionQuery, standard=standard),
                    st.lists(instances(PredicateItem, standard=standard), max_size=3),
                )
            )
        if extra.get("oneOf") == TXN_STATUS_SCHEMA["oneOf"]:
            return _as_json(
                st.one_of(
                    instances(SearchResponse, standard=standard),
                    instances(SubscribeResponse, standard=standard),
                    instances(UnSubscribeResponse, standard=standard),
                )
            )
        if extra.get("type") == "object":
            return JSON_OBJECTS
        return _strategy(t.type, standard)
    if isinstance(t, mi.StrType):
        if t.pattern == DATE_TIME_PATTERN:
            return date_times()
        if t.pattern == LOCALE_TOLERANT_PATTERN:
            return st.from_regex(r"[a-z]{3}" if standard else r"[a-z]{2,3}", fullmatch=True)
        size = min(t.max_length or 12, 120)
        return st.text(st.characters(codec="utf-8"), min_size=t.min_length or 0, max_size=size)
    if isinstance(t, mi.IntType):
        return INTS
    if isinstance(t, mi.FloatType):
        return FLOATS
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.AnyType):
        return JSON_OBJECTS if standard else JSON
    if isinstance(t, mi.RawType):
        return JSON.map(lambda v: msgspec.Raw(msgspec.json.encode(v)))
    if isinstance(t, mi.ListType):
        return st.lists(_strategy(t.item_type, standard), max_size=3)
    if isinstance(t, mi.DictType):
        return st.dictionaries(TEXT, _strategy(t.value_type, standard), max_size=3)
    if isinstance(t, mi.UnionType):
        return st.one_of([_strategy(member, standard) for member in t.types])
    if isinstance(t, mi.EnumType):
        members = list(t.cls)
        if standard and t.cls is TxnType:
            members = [TxnType.SEARCH, TxnType.SUBSCRIBE, TxnType.UNSUBSCRIBE]
        return st.sampled_from(members)
    if isinstance(t, mi.StructType):
        required = {f.name: _strategy(f.type, standard) for f in t.fields if f.required}
        optional = {f.name: _strategy(f.type, standard) for f in t.fields if not f.required}
        return st.fixed_dictionaries(required, optional=optional).map(lambda kw: t.cls(**kw))
    raise TypeError(f"no strategy for {t!r}")


def _as_json(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Structs as the plain JSON data an untyped (`Any`) field holds after decoding."""
    return strategy.map(msgspec.to_builtins)
