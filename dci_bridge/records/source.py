"""The record source interface: what the search use case needs from any registry backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from dci_bridge.protocol.codes import IdentifierType
from dci_bridge.records.query import RecordQuery


class RecordPage(msgspec.Struct, frozen=True):
    """One page of results: each record is the encoded JSON of a `CrvsPerson`."""

    records: Sequence[msgspec.Raw]
    total_count: int


class RecordSource(Protocol):
    """A registry the bridge can answer DCI searches from.

    `search` returns the requested page of persons matching the query and the total number
    of matches. It raises `ItemRejection` for a query this source cannot answer
    (`rjct.search_criteria.invalid` / `rjct.filter.invalid`), never a wrong answer, and
    `UpstreamError` when the backend fails or times out. `get` fetches one person by an
    identifier, or None.
    """

    async def search(self, query: RecordQuery) -> RecordPage: ...

    async def get(self, id_type: IdentifierType, value: str) -> msgspec.Raw | None: ...

    async def aclose(self) -> None: ...
