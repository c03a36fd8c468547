"""OpenCRVS v2 mode of the simulator: the events API and lifecycle hooks (digest section 6).

- `POST {prefix}/events/search` with `{"query": {"type": "and"|"or", "clauses": [...]},
  "limit", "offset"}` -> `{"results": [EventIndex], "total": n}`. Clause keys: `id`,
  `eventType`, `status` (`exact`/`anyOf`), `trackingId`, `updatedAt` (`exact`/`range`),
  `legalStatuses.REGISTERED.registrationNumber` and `legalStatuses.REGISTERED.createdAt`,
  and `data` (form field id -> `exact`/`fuzzy`/`range`/`anyOf`); nested and/or clauses.
- `GET {prefix}/events/{id}` -> the event with its actions (CREATE, DECLARE with the
  declaration, REGISTER with the registration number, all Accepted).
`prefix` is `/api/events` or `/events` (the gateway's proxy path). Births and deaths only
(Farajaland v2 has no marriage event). Tokens carry `record.search` / `record.read`.
Lifecycle hooks: `/_sim/register` POSTs the new event to
`{hook_url}/trigger/events/{type}/actions/REGISTER` with a bearer token.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from dci_bridge.clock import isoformat_z
from dci_bridge.records.mapped import MappedRecord, RecordEvent
from dci_bridge.upstream.v2_fields import to_declaration

if TYPE_CHECKING:
    from dci_bridge.upstream.simulator.app import OpenCrvsSimulator
    from dci_bridge.upstream.simulator.tokens import Claims

PREFIXES = ("/api/events/", "/events/")
V2_SCOPES = ("record.search", "record.read")
_EVENTS = (RecordEvent.BIRTH, RecordEvent.DEATH)
_NS = uuid.UUID("6a1e0c9e-2b7d-4c55-9a43-1f0e5d7c9b21")


class ClauseError(ValueError):
    """A search body the events API's validation would refuse (400)."""


def _actions(record: MappedRecord) -> list[dict[str, Any]]:
    when = isoformat_z(record.last_modified) if record.last_modified else None
    base = {
        "status": "Accepted",
        "createdBy": str(uuid.uuid5(_NS, f"user:{record.office_id}")),
        "createdByUserType": "user",
        "createdByRole": "LOCAL_REGISTRAR",
        "createdAtLocation": record.office_id,
        "createdAt": when,
    }

    def action(kind: str, **extra: Any) -> dict[str, Any]:
        ident = str(uuid.uuid5(_NS, f"{record.record_id}:{kind}"))
        return {"id": ident, "type": kind, "transactionId": ident, **base, **extra}

    return [
        action("CREATE"),
        action("DECLARE", declaration=to_declaration(record), annotation={}),
        action("REGISTER", declaration={}, registrationNumber=record.registration_number),
    ]


def event_document(record: MappedRecord) -> dict[str, Any]:
    when = isoformat_z(record.last_modified) if record.last_modified else None
    return {
        "id": record.record_id,
        "type": record.event.value,
        "trackingId": record.tracking_id,
        "createdAt": when,
        "updatedAt": when,
        "actions": _actions(record),
    }


def event_index(record: MappedRecord) -> dict[str, Any]:
    when = isoformat_z(record.last_modified) if record.last_modified else None
    subject = record.subjects[0] if record.subjects else None
    date = None
    if subject is not None:
        date = subject.birth_date if record.event is RecordEvent.BIRTH else subject.death_date
    return {
        "id": record.record_id,
        "type": record.event.value,
        "status": "REGISTERED" if record.is_registered else "DECLARED",
        "trackingId": record.tracking_id,
        "legalStatuses": {
            "DECLARED": {"createdAt": when, "createdAtLocation": record.office_id},
            "REGISTERED": {
                "registrationNumber": record.registration_number,
                "createdAt": when,
                "createdAtLocation": record.office_id,
            },
        },
        "dateOfEvent": date,
        "placeOfEvent": record.place.location_id if record.place else None,
        "createdAt": when,
        "updatedAt": when,
        "flags": [],
        "declaration": to_declaration(record),
    }


def _match_value(have: Any, cond: Any) -> bool:
    if not isinstance(cond, Mapping):
        raise ClauseError("a condition must be an object with a type")
    kind = cond.get("type")
    if kind == "exact":
        return have is not None and str(have) == str(cond.get("term"))
    if kind == "fuzzy":
        term = str(cond.get("term") or "").lower().split()
        words = str(have or "").lower().split()
        return bool(term) and all(t in words for t in term)
    if kind == "anyOf":
        terms = cond.get("terms")
        if not isinstance(terms, list):
            raise ClauseError("anyOf needs terms")
        return have is not None and str(have) in {str(t) for t in terms}
    if kind == "range":
        if have is None:
            return False
        text = str(have)
        gte, lte = cond.get("gte"), cond.get("lte")
        if gte is not None and text[: len(str(gte))] < str(gte):
            return False
        return not (lte is not None and text[: len(str(lte))] > str(lte))
    raise ClauseError(f"unknown condition type {kind!r}")


def _data_value(declaration: Mapping[str, Any], field: str) -> Any:
    if field in declaration:
        value = declaration[field]
        if isinstance(value, Mapping):  # a name: search its parts as one text
            return " ".join(str(v) for v in value.values() if v)
        return value
    head, _, part = field.rpartition(".")
    parent = declaration.get(head)
    return parent.get(part) if isinstance(parent, Mapping) else None


def matches(index: Mapping[str, Any], clause: Any) -> bool:
    if not isinstance(clause, Mapping):
        raise ClauseError("a clause must be an object")
    if clause.get("type") in ("and", "or"):
        parts = clause.get("clauses")
        if not isinstance(parts, list):
            raise ClauseError("and/or need clauses")
        results = (matches(index, c) for c in parts)
        return all(results) if clause["type"] == "and" else any(results)
    registered = index["legalStatuses"]["REGISTERED"]
    for key, cond in clause.items():
        if key == "eventType":
            if index["type"] != cond:
                return False
        elif key in ("id", "trackingId", "status", "updatedAt", "createdAt"):
            if not _match_value(index.get(key), cond):
                return False
        elif key == "legalStatuses.REGISTERED.registrationNumber":
            if not _match_value(registered.get("registrationNumber"), cond):
                return False
        elif key == "legalStatuses.REGISTERED.createdAt":
            if not _match_value(registered.get("createdAt"), cond):
                return False
        elif key == "data":
            if not isinstance(cond, Mapping):
                raise ClauseError("data must map field ids to conditions")
            for field, fcond in cond.items():
                if not _match_value(_data_value(index["declaration"], field), fcond):
                    return False
        else:
            raise ClauseError(f"unknown clause field {key!r}")
    return True


def handle(
    sim: OpenCrvsSimulator, method: str, path: str, body: bytes, claims: Claims
) -> tuple[int, Any]:
    rest = next(path.removeprefix(p) for p in PREFIXES if path.startswith(p))
    if rest == "events/search" and method == "POST":
        if "record.search" not in claims.scope:
            return 403, {"message": "Insufficient scope", "code": "FORBIDDEN"}
        try:
            request = msgspec.json.decode(body) if body else {}
            query = request.get("query") if isinstance(request, dict) else None
            limit, offset = request.get("limit", 100), request.get("offset", 0)
            if not isinstance(limit, int) or not isinstance(offset, int) or query is None:
                raise ClauseError("query, limit and offset are required")
            found = [
                doc.record
                for doc in sim.population.docs
                if doc.record.event in _EVENTS and matches(_index_of(sim, doc.record), query)
            ]
        except (msgspec.DecodeError, ClauseError) as exc:
            return 400, {"message": str(exc), "code": "BAD_REQUEST"}
        found.sort(key=lambda r: (r.last_modified is None, r.record_id))
        page = found[offset : offset + limit]
        if found:
            sim.searches[(claims.sub, "v2")] = sim.searches.get((claims.sub, "v2"), 0) + 1
        return 200, {"results": [_index_of(sim, r) for r in page], "total": len(found)}
    if rest.startswith("events/") and method == "GET":
        if "record.read" not in claims.scope:
            return 403, {"message": "Insufficient scope", "code": "FORBIDDEN"}
        record = sim.population.get(rest.removeprefix("events/"))
        if record is None or record.event not in _EVENTS:
            return 404, {"message": "Event not found", "code": "NOT_FOUND"}
        sim.fetches += 1
        return 200, event_document(record)
    return 404, {"message": "Not Found", "code": "NOT_FOUND"}


def _index_of(sim: OpenCrvsSimulator, record: MappedRecord) -> dict[str, Any]:
    """The EventIndex of a record (cached on the simulator; a re-registered record differs)."""
    cached = sim.v2_index.get(record.record_id)
    if cached is None or cached[0] is not record:
        cached = sim.v2_index[record.record_id] = (record, event_index(record))
    return cached[1]


async def send_hook(sim: OpenCrvsSimulator, record: MappedRecord, event: str) -> dict[str, Any]:
    """POST the registered event to the country-config hook, as v2's events service does."""
    if not sim.hook_url:
        return {"sent": False}
    url = f"{sim.hook_url.rstrip('/')}/trigger/events/{event}/actions/REGISTER"
    token = sim.tokens.issue("events-service", ["record.read"], 600)
    try:
        answer = await sim.hub.http.post(
            url,
            content=msgspec.json.encode(event_document(record)),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=sim.config.delivery_timeout_s,
        )
    except httpx.HTTPError as exc:
        return {"sent": False, "url": url, "error": type(exc).__name__}
    return {"sent": True, "url": url, "status": answer.status_code}
