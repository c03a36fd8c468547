"""OpenCRVS v2 driver: the events API (`POST {prefix}/events/search`, `GET {prefix}/events/{id}`).

The plans are written in v1's `advancedSearchParameters` (the query model both generations
answer); this driver rewrites them as v2 search clauses. v2 keeps no marriage events
(Farajaland v2) and has no `sortBy` of ours: such queries are refused per item. Records are
read with the Farajaland v2 field map (`upstream/v2_fields.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from dci_bridge.errors import UpstreamError
from dci_bridge.records._fhir import MappingError
from dci_bridge.records.locations import LocationIndex
from dci_bridge.records.mapped import MappedRecord
from dci_bridge.settings import UpstreamSettings
from dci_bridge.upstream.opencrvs.plan import refuse
from dci_bridge.upstream.opencrvs.transport import GraphQLError, Upstream, UpstreamAnswer
from dci_bridge.upstream.v2_fields import from_event

NID_FIELDS = ("mother.nid", "father.nid", "deceased.nid", "spouse.nid", "informant.nid")
_SUBJECT = {"child": "child", "deceased": "deceased"}


class _Hit(msgspec.Struct):
    id: str


class _SearchAnswer(msgspec.Struct):
    results: list[_Hit]
    total: int


_SEARCH = msgspec.json.Decoder(_SearchAnswer)
_ENCODER = msgspec.json.Encoder()


def _exact(term: Any) -> dict[str, Any]:
    return {"type": "exact", "term": term}


def _range(params: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    low, high = params.get(f"{name}Start"), params.get(f"{name}End")
    if low is None and high is None:
        return None
    cond: dict[str, Any] = {"type": "range"}
    if low is not None:
        cond["gte"] = low
    if high is not None:
        cond["lte"] = high
    return cond


def to_clauses(params: Mapping[str, Any]) -> dict[str, Any]:
    """v1 `advancedSearchParameters` as a v2 `{"type": "and", "clauses": [...]}` query."""
    clauses: list[dict[str, Any]] = []
    event = params.get("event")
    if event == "marriage":
        raise refuse("marriage records with OpenCRVS v2")
    if event is not None:
        clauses.append({"eventType": event})
    if "registrationStatuses" in params:
        clauses.append({"status": {"type": "anyOf", "terms": ["REGISTERED"]}})
    if "registrationNumber" in params:
        clauses.append(
            {"legalStatuses.REGISTERED.registrationNumber": _exact(params["registrationNumber"])}
        )
    if "recordId" in params:
        clauses.append({"id": _exact(params["recordId"])})
    if "trackingId" in params:
        clauses.append({"trackingId": _exact(params["trackingId"])})
    if "nationalId" in params:
        nid = params["nationalId"]
        clauses.append(
            {"type": "or", "clauses": [{"data": {field: _exact(nid)}} for field in NID_FIELDS]}
        )
    for prefix in _SUBJECT:
        first, last = (
            params.get(f"{prefix}FirstNames"),
            params.get(f"{prefix}LastName" if prefix == "child" else f"{prefix}FamilyName"),
        )
        for term in (first, last):
            if term is not None:
                clauses.append({"data": {f"{prefix}.name": {"type": "fuzzy", "term": term}}})
        if params.get(f"{prefix}Gender") is not None:
            clauses.append({"data": {f"{prefix}.gender": _exact(params[f"{prefix}Gender"])}})
        if params.get(f"{prefix}DoB") is not None:
            clauses.append({"data": {f"{prefix}.dob": _exact(params[f"{prefix}DoB"])}})
        dob = _range(params, f"{prefix}DoB")
        if dob is not None:
            clauses.append({"data": {f"{prefix}.dob": dob}})
    if params.get("dateOfEvent") is not None:
        clauses.append({"data": {"eventDetails.date": _exact(params["dateOfEvent"])}})
    died = _range(params, "dateOfEvent")
    if died is not None:
        clauses.append({"data": {"eventDetails.date": died}})
    registered = _range(params, "dateOfRegistration")
    if registered is not None:
        clauses.append({"legalStatuses.REGISTERED.createdAt": registered})
    if params.get("eventLocationId") is not None:
        field = "child.birthLocation" if event == "birth" else "eventDetails.deathLocation"
        clauses.append({"data": {field: _exact(params["eventLocationId"])}})
    if any(params.get(f"eventLocationLevel{i}") is not None for i in range(1, 6)):
        raise refuse("a district or province as place with OpenCRVS v2")
    return {"type": "and", "clauses": clauses}


def _read_search(answer: UpstreamAnswer) -> _SearchAnswer:
    try:
        return _SEARCH.decode(answer.content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise GraphQLError("OpenCRVS answered the event search with an unreadable body") from None


def _read_event(answer: UpstreamAnswer) -> dict[str, Any] | None:
    if answer.status == 404:
        return None
    try:
        data = msgspec.json.decode(answer.content)
    except msgspec.DecodeError:
        raise GraphQLError("OpenCRVS answered an event read with an unreadable body") from None
    if not isinstance(data, dict):
        raise GraphQLError("OpenCRVS answered an event read with an unexpected shape")
    return data


class V2Driver:
    """Searches and reads events over the v2 events API."""

    def __init__(
        self, upstream: Upstream, settings: UpstreamSettings, locations: LocationIndex
    ) -> None:
        self._upstream = upstream
        base = settings.gateway_url.rstrip("/") + "/" + settings.events_prefix.strip("/")
        self._search_url = f"{base}/events/search"
        self._event_url = f"{base}/events/"
        self._locations = locations

    async def search(
        self,
        params: Mapping[str, Any],
        *,
        count: int,
        skip: int,
        sort: Sequence[Mapping[str, str]] = (),
    ) -> tuple[int, list[str]]:
        if sort:
            raise refuse("sorting with OpenCRVS v2", "rjct.sort.invalid")
        body = _ENCODER.encode({"query": to_clauses(params), "limit": count, "offset": skip})
        found = await self._upstream.call(self._search_url, body, _read_search)
        return found.total, [hit.id for hit in found.results][:count]

    async def fetch(self, record_id: str) -> MappedRecord | None:
        data = await self._upstream.call(self._event_url + record_id, None, _read_event)
        if data is None:
            return None
        try:
            return from_event(data, self._locations)
        except MappingError as exc:
            raise UpstreamError(f"OpenCRVS sent an event we cannot read ({exc.path})") from None
