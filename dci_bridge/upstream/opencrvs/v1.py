"""OpenCRVS v1.x driver: GraphQL `searchEvents` (ids) then `fetchRegistration` per id.

Every call goes through `Upstream.call` (token, breaker, timeout, error translation). The
GraphQL answers are decoded with msgspec straight into structs of the few fields we read
(a record of another shape than documented goes to the tolerant dict reader); the query
documents are encoded once, only the variables per call. GraphQL errors
(HTTP 200 with `errors`) are recognised: "Unauthorized" (renew the token once), the daily
search quota in all its versions (message text, `DAILY_QUOTA_EXCEEDED`,
`RATE_LIMIT_EXCEEDED`), anything else an upstream failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from dci_bridge.errors import UpstreamError
from dci_bridge.records._fhir import MappingError
from dci_bridge.records.locations import LocationIndex
from dci_bridge.records.mapped import MappedRecord
from dci_bridge.upstream.opencrvs.graphql_map import (
    GqlRegistrationRecord,
    PlaceCache,
    read_registration,
    read_registration_struct,
)
from dci_bridge.upstream.opencrvs.transport import (
    GraphQLError,
    QuotaExceededError,
    Upstream,
    UpstreamAnswer,
)

SEARCH_EVENTS = (
    "query searchEvents($advancedSearchParameters: AdvancedSearchParametersInput!, "
    "$count: Int, $skip: Int, $sortBy: [SortBy!]) { searchEvents(advancedSearchParameters: "
    "$advancedSearchParameters, count: $count, skip: $skip, sortBy: $sortBy) "
    "{ totalItems results { id } } }"
)
_PERSON = (
    "id name { use firstNames familyName } gender birthDate maritalStatus dateOfMarriage "
    "identifier { id type } address { type line district state city postalCode country } "
    "telecom { system value } detailsExist deceased { deceased deathDate }"
)
_LOCATION = "eventLocation { id name alias type partOf status address { district state } }"
FETCH_REGISTRATION = (
    "query fetchRegistration($id: ID!) { fetchRegistration(id: $id) { __typename "
    "... on BirthRegistration { id registration { id type trackingId registrationNumber "
    "status { type timestamp office { id } } } "
    f"child {{ {_PERSON} }} mother {{ {_PERSON} }} father {{ {_PERSON} }} "
    f"informant {{ relationship }} {_LOCATION} createdAt }} "
    "... on DeathRegistration { id registration { id type trackingId registrationNumber "
    "status { type timestamp office { id } } } "
    f"deceased {{ {_PERSON} }} mother {{ {_PERSON} }} father {{ {_PERSON} }} "
    f"spouse {{ {_PERSON} }} informant {{ relationship }} {_LOCATION} createdAt }} "
    "... on MarriageRegistration { id registration { id type trackingId registrationNumber "
    "status { type timestamp office { id } } } "
    f"bride {{ {_PERSON} }} groom {{ {_PERSON} }} {_LOCATION} createdAt }} }} }}"
)
QUOTA_CODES = frozenset({"DAILY_QUOTA_EXCEEDED", "RATE_LIMIT_EXCEEDED"})
QUOTA_MESSAGE = "daily search quota exceeded"


class _Error(msgspec.Struct):
    message: str = ""
    extensions: dict[str, Any] | None = None


class _Hit(msgspec.Struct):
    id: str


class _SearchSet(msgspec.Struct):
    totalItems: int
    results: list[_Hit]


class _SearchData(msgspec.Struct):
    searchEvents: _SearchSet | None = None


class _SearchAnswer(msgspec.Struct):
    data: _SearchData | None = None
    errors: list[_Error] | None = None


class _FetchData(msgspec.Struct):
    fetchRegistration: dict[str, Any] | None = None


class _FetchAnswer(msgspec.Struct):
    data: _FetchData | None = None
    errors: list[_Error] | None = None


class _TypedFetchData(msgspec.Struct):
    fetchRegistration: GqlRegistrationRecord | None = None


class _TypedFetchAnswer(msgspec.Struct):
    data: _TypedFetchData | None = None
    errors: list[_Error] | None = None


_SEARCH_DECODER = msgspec.json.Decoder(_SearchAnswer)
_FETCH_DECODER = msgspec.json.Decoder(_FetchAnswer)
_TYPED_FETCH_DECODER = msgspec.json.Decoder(_TypedFetchAnswer)
_ENCODER = msgspec.json.Encoder()


def _operation(name: str, query: str) -> tuple[bytes, bytes]:
    """The constant head and tail of a GraphQL request body: the query document is encoded
    once, only the variables per call (`head + variables + tail`)."""
    head = _ENCODER.encode({"operationName": name, "query": query})[:-1] + b',"variables":'
    return head, b"}"


_SEARCH_BODY = _operation("searchEvents", SEARCH_EVENTS)
_FETCH_BODY = _operation("fetchRegistration", FETCH_REGISTRATION)


def is_quota_error(error: _Error) -> bool:
    """OpenCRVS's daily search quota error, as v1.3-1.4, v1.5-1.6 and v1.7+ word it."""
    code = str((error.extensions or {}).get("code") or "")
    return code in QUOTA_CODES or QUOTA_MESSAGE in error.message.lower()


def _check_errors(errors: Sequence[_Error] | None) -> None:
    if not errors:
        return
    for error in errors:
        if error.message.strip().lower() == "unauthorized" or (
            (error.extensions or {}).get("code") == "UNAUTHENTICATED"
        ):
            raise GraphQLError("Unauthorized", unauthorized=True)
        if is_quota_error(error):
            raise QuotaExceededError(
                "the OpenCRVS daily search quota of this integration is exhausted"
            )
    raise GraphQLError("OpenCRVS answered the search with an error")


def _read_search(answer: UpstreamAnswer) -> _SearchSet:
    if answer.status == 429:  # v1.7+ quota: extensions.http.status 429
        raise QuotaExceededError("the OpenCRVS daily search quota of this integration is exhausted")
    try:
        body = _SEARCH_DECODER.decode(answer.content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise GraphQLError("OpenCRVS answered the search with an unreadable body") from None
    _check_errors(body.errors)
    if body.data is None or body.data.searchEvents is None:
        raise GraphQLError("OpenCRVS answered the search without results")
    return body.data.searchEvents


def _read_fetch(answer: UpstreamAnswer) -> GqlRegistrationRecord | dict[str, Any] | None:
    """The record: decoded straight into typed structs when it has the documented shape, as
    plain JSON for the tolerant reader when it does not."""
    body: _TypedFetchAnswer | _FetchAnswer
    try:
        body = _TYPED_FETCH_DECODER.decode(answer.content)
    except msgspec.ValidationError:  # valid JSON of another shape
        try:
            body = _FETCH_DECODER.decode(answer.content)
        except msgspec.DecodeError:
            raise GraphQLError("OpenCRVS answered a record fetch with an unreadable body") from None
    except msgspec.DecodeError:
        raise GraphQLError("OpenCRVS answered a record fetch with an unreadable body") from None
    if body.errors and any((e.extensions or {}).get("code") == "NOT_FOUND" for e in body.errors):
        return None
    _check_errors(body.errors)
    if body.data is None:
        raise GraphQLError("OpenCRVS answered a record fetch without data")
    return body.data.fetchRegistration


class V1Driver:
    """Searches and fetches records over the v1.x gateway's GraphQL endpoint."""

    def __init__(self, upstream: Upstream, gateway_url: str, locations: LocationIndex) -> None:
        self._upstream = upstream
        self._url = gateway_url.rstrip("/") + "/graphql"
        self._locations = locations
        self._places: PlaceCache = {}

    async def search(
        self,
        params: Mapping[str, Any],
        *,
        count: int,
        skip: int,
        sort: Sequence[Mapping[str, str]] = (),
    ) -> tuple[int, list[str]]:
        """(totalItems, record ids of the page)."""
        variables: dict[str, Any] = {"advancedSearchParameters": params, "count": count}
        variables["skip"] = skip
        if sort:
            variables["sortBy"] = list(sort)
        head, tail = _SEARCH_BODY
        body = head + _ENCODER.encode(variables) + tail
        found = await self._upstream.call(self._url, body, _read_search)
        return found.totalItems, [hit.id for hit in found.results][:count]

    async def fetch(self, record_id: str) -> MappedRecord | None:
        """One record by id (None when OpenCRVS does not know it)."""
        head, tail = _FETCH_BODY
        body = head + _ENCODER.encode({"id": record_id}) + tail
        data = await self._upstream.call(self._url, body, _read_fetch)
        if data is None:
            return None
        try:
            if isinstance(data, GqlRegistrationRecord):
                return read_registration_struct(
                    data, locations=self._locations, places=self._places
                )
            return read_registration(data, locations=self._locations)
        except MappingError as exc:
            raise UpstreamError(f"OpenCRVS sent a record we cannot read ({exc.path})") from None
