"""Builders of DCI envelopes as plain JSON-ready dicts (requests, and callbacks for `client`).

Plain dicts rather than structs on purpose: negative cases must be able to send what no
struct would let them build (missing fields, wrong types, 100-character ids).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from conformance.config import Config

VERSION = "1.0.0"

Json = dict[str, Any]


def new_id(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def timestamp(offset: timedelta = timedelta(0)) -> str:
    """An RFC 3339 UTC timestamp with offset `Z`, milliseconds precision."""
    moment = datetime.now(UTC) + offset
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Builder:
    """Makes request envelopes with the configured identity and test data."""

    def __init__(self, config: Config, callback_url: Any = None) -> None:
        self.config = config
        self._callback_url = callback_url
        """Callable[[str], str | None]: the sender_uri for an action, or None."""

    def header(
        self, action: str, total_count: int, *, sender_uri: bool = True, **extra: Any
    ) -> Json:
        header: Json = {
            "version": VERSION,
            "message_id": new_id("msg-"),
            "message_ts": timestamp(),
            "action": action,
            "sender_id": self.config.identity.sender_id,
            "total_count": total_count,
            "is_msg_encrypted": False,
        }
        if self.config.identity.receiver_id:
            header["receiver_id"] = self.config.identity.receiver_id
        if sender_uri and self._callback_url is not None:
            uri = self._callback_url(action)
            if uri:
                header["sender_uri"] = uri
        header.update(extra)
        return header

    # -- search ---------------------------------------------------------------------------
    def criteria(
        self,
        query_type: str,
        query: Any,
        *,
        pagination: Json | None = None,
        sort: list[Json] | None = None,
    ) -> Json:
        criteria: Json = {
            "version": VERSION,
            "reg_type": self.config.data.registry_type,
            "reg_record_type": self.config.data.record_type,
            "query_type": query_type,
            "query": query,
        }
        if pagination is not None:
            criteria["pagination"] = pagination
        if sort is not None:
            criteria["sort"] = sort
        return criteria

    def search_item(self, criteria: Json, *, reference_id: str | None = None, **extra: Any) -> Json:
        item: Json = {
            "reference_id": reference_id or new_id("ref-"),
            "timestamp": timestamp(),
            "search_criteria": criteria,
            "locale": "eng",
        }
        item.update(extra)
        return item

    def idtype_query(self, identifier: Any) -> Json:
        return {"type": identifier.type, "value": identifier.value}

    def search(self, items: list[Json], *, transaction_id: str | None = None) -> Json:
        return {
            "header": self.header("search", len(items)),
            "message": {
                "transaction_id": transaction_id or new_id("txn-"),
                "search_request": items,
            },
        }

    def simple_search(self, query_type: str, query: Any, **criteria_extra: Any) -> Json:
        return self.search([self.search_item(self.criteria(query_type, query, **criteria_extra))])

    def missing_id_search(self) -> Json:
        return self.simple_search(
            "idtype-value", self.idtype_query(self.config.data.missing_identifier)
        )

    # -- subscribe ------------------------------------------------------------------------
    def subscribe(self, *, transaction_id: str | None = None, **criteria_extra: Any) -> Json:
        criteria: Json = {
            "version": VERSION,
            "reg_type": self.config.data.registry_type,
            "reg_event_type": self.config.data.event_type,
            "filter_type": "predicate",
            "filter": self.config.data.predicate_query,
            "notify_record_type": self.config.data.record_type,
        }
        criteria.update(criteria_extra)
        item = {
            "reference_id": new_id("ref-"),
            "timestamp": timestamp(),
            "locale": "eng",
            "subscribe_criteria": criteria,
        }
        return {
            "header": self.header("subscribe", 1),
            "message": {
                "transaction_id": transaction_id or new_id("txn-"),
                "subscribe_request": [item],
            },
        }

    def unsubscribe(self, codes: list[str], *, transaction_id: str | None = None) -> Json:
        return {
            "header": self.header("unsubscribe", len(codes)),
            "message": {
                "transaction_id": transaction_id or new_id("txn-"),
                "timestamp": timestamp(),
                "subscription_codes": codes,
            },
        }

    # -- txn status -----------------------------------------------------------------------
    def txn_status(self, txn_type: str, attribute_type: str, attribute_value: Any) -> Json:
        return {
            "header": self.header("txn-status", 1),
            "message": {
                "transaction_id": new_id("txn-"),
                "txnstatus_request": {
                    "reference_id": new_id("ref-"),
                    "txn_type": txn_type,
                    "attribute_type": attribute_type,
                    "attribute_value": attribute_value,
                    "locale": "eng",
                },
            },
        }


class CallbackBuilder:
    """Makes the callbacks a registry sends (the `client` profile plays the registry)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def _header(self, action: str, *, callback: bool = True, count: int = 1) -> Json:
        header: Json = {
            "version": VERSION,
            "message_id": new_id("msg-"),
            "message_ts": timestamp(),
            "action": action,
            "sender_id": self.config.identity.sender_id,
            "total_count": count,
            "is_msg_encrypted": False,
        }
        if callback:
            header.update(status="succ", completed_count=count)
        if self.config.identity.receiver_id:
            header["receiver_id"] = self.config.identity.receiver_id
        return header

    def person(self) -> Json:
        return {
            "@type": "CRVS_Person",
            "identifier": [{"identifier_type": "BRN", "identifier_value": "CONFORMANCE-0001"}],
            "name": {"surname": "Test", "given_name": "Conformance"},
            "sex": "female",
            "birth_date": "2000-01-01",
        }

    def on_search(self) -> Json:
        return {
            "header": self._header("on-search"),
            "message": {
                "transaction_id": new_id("txn-"),
                "correlation_id": new_id("cor-"),
                "search_response": [
                    {
                        "reference_id": new_id("ref-"),
                        "timestamp": timestamp(),
                        "status": "succ",
                        "data": {
                            "reg_type": self.config.data.registry_type,
                            "reg_record_type": self.config.data.record_type,
                            "reg_records": [self.person()],
                        },
                        "pagination": {"page_size": 10, "page_number": 1, "total_count": 1},
                        "locale": "eng",
                    }
                ],
            },
        }

    def on_subscribe(self) -> Json:
        return {
            "header": self._header("on-subscribe", callback=False),
            "message": {
                "transaction_id": new_id("txn-"),
                "correlation_id": new_id("cor-"),
                "subscribe_response": [
                    {
                        "reference_id": new_id("ref-"),
                        "timestamp": timestamp(),
                        "status": "succ",
                        "subscriptions": [
                            {
                                "code": new_id("sub-"),
                                "status": "subscribe",
                                "timestamp": timestamp(),
                                "reg_type": self.config.data.registry_type,
                                "reg_event_type": self.config.data.event_type,
                                "notify_record_type": self.config.data.record_type,
                            }
                        ],
                    }
                ],
            },
        }

    def on_unsubscribe(self) -> Json:
        return {
            "header": self._header("on-unsubscribe", callback=False),
            "message": {
                "transaction_id": new_id("txn-"),
                "correlation_id": new_id("cor-"),
                "timestamp": timestamp(),
                "status": "succ",
                "subscription_status": [{"code": new_id("sub-"), "status": "unsubscribe"}],
            },
        }

    def txn_on_status(self) -> Json:
        inner = self.on_search()["message"]
        return {
            "header": self._header("txn-on-status"),
            "message": {
                "transaction_id": inner["transaction_id"],
                "correlation_id": new_id("cor-"),
                "txnstatus_response": {"txn_type": "search", "txn_status": inner},
            },
        }

    def notify(self) -> Json:
        return {
            "header": self._header("notify"),
            "message": {
                "transaction_id": new_id("txn-"),
                "notify_event": [
                    {
                        "reference_id": new_id("ref-"),
                        "timestamp": timestamp(),
                        "data": {
                            "reg_type": self.config.data.registry_type,
                            "reg_event_type": self.config.data.event_type,
                            "reg_record_type": self.config.data.record_type,
                            "reg_records": [self.person()],
                        },
                    }
                ],
            },
        }
