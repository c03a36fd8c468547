"""Deviations from the standard the decoders accept (docs/decisions.md, "Wire tolerances"),
and the query shapes read by `decode_query`."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from dci_bridge.protocol import codec
from dci_bridge.protocol.codes import ExpCondition, ExpOperator, QueryType, SortOrder, TxnType
from dci_bridge.protocol.search import (
    ExpressionQuery,
    IdTypeValueQuery,
    Predicate,
    PredicateItem,
    SearchRequest,
    SearchResponse,
)
from dci_bridge.protocol.subscribe import UnSubscribeRequest, UnSubscribeResponse
from dci_bridge.protocol.txn import TxnStatusRequest
from tests.unit.protocol.protocol_samples import ITEM, MESSAGE, TS, rejection

# --------------------------------------------------------------------------- tolerances


@pytest.mark.parametrize("locale", ["eng", "en"])
def test_two_and_three_letter_locales_are_read(locale: str) -> None:
    raw = json.dumps({**MESSAGE, "search_request": [{**ITEM, "locale": locale}]}).encode()
    message = codec.decode_message("search", raw)
    assert isinstance(message, SearchRequest)
    assert message.search_request[0].locale == locale


@pytest.mark.parametrize("locale", ["english", "EN", "e", "eng\n", ""])
def test_other_locales_are_rejected(locale: str) -> None:
    raw = json.dumps({**MESSAGE, "search_request": [{**ITEM, "locale": locale}]}).encode()
    assert rejection(codec.decode_message, "search", raw) == "$.message.search_request[0].locale"


def test_pagination_on_the_item_is_read_and_criteria_pagination_is_separate() -> None:
    raw = json.dumps({**MESSAGE, "search_request": [{**ITEM, "pagination": {"page_size": 5}}]})
    message = codec.decode_message("search", raw.encode())
    assert isinstance(message, SearchRequest)
    item = message.search_request[0]
    assert item.pagination is not None
    assert (item.pagination.page_size, item.pagination.page_number) == (5, 1)
    assert item.search_criteria.pagination is None


def test_older_reg_event_type_is_read_in_search_criteria() -> None:
    criteria = {**ITEM["search_criteria"], "reg_event_type": "spdci-common:RegistryEventType:Death"}
    raw = json.dumps({**MESSAGE, "search_request": [{**ITEM, "search_criteria": criteria}]})
    message = codec.decode_message("search", raw.encode())
    assert isinstance(message, SearchRequest)
    assert message.search_request[0].search_criteria.reg_event_type.endswith("Death")  # type: ignore[union-attr]


def test_explicit_null_for_an_optional_field_reads_as_absent() -> None:
    raw = json.dumps({**MESSAGE, "search_request": [{**ITEM, "locale": None}]}).encode()
    message = codec.decode_message("search", raw)
    assert isinstance(message, SearchRequest)
    assert message.search_request[0].locale is None
    assert b"locale" not in codec.encode(message)


def test_a_missing_sort_order_reads_as_ascending() -> None:
    criteria = {**ITEM["search_criteria"], "sort": [{"attribute_name": "birth_date"}]}
    raw = json.dumps({**MESSAGE, "search_request": [{**ITEM, "search_criteria": criteria}]})
    message = codec.decode_message("search", raw.encode())
    assert isinstance(message, SearchRequest)
    sort = message.search_request[0].search_criteria.sort
    assert sort is not None
    assert sort[0].sort_order is SortOrder.ASC


def test_unknown_fields_are_ignored() -> None:
    raw = json.dumps({**MESSAGE, "extension": {"x": 1}}).encode()
    assert isinstance(codec.decode_message("search", raw), SearchRequest)


def test_object_valued_reg_records_of_a_search_response_read_as_a_list() -> None:
    response = {
        "transaction_id": "t",
        "correlation_id": "c",
        "search_response": [
            {
                "reference_id": "r",
                "timestamp": TS,
                "status": "succ",
                "data": {"reg_record_type": "Person", "reg_records": {"name": "x"}},
            }
        ],
    }
    message = codec.decode_message("on-search", json.dumps(response).encode())
    assert isinstance(message, SearchResponse)
    data = message.search_response[0].data
    assert data is not None
    assert data.reg_records == [{"name": "x"}]
    assert json.loads(codec.encode(message))["search_response"][0]["data"]["reg_records"] == [
        {"name": "x"}
    ]


@pytest.mark.parametrize("records", [{"name": "x"}, [{"name": "x"}, {"name": "y"}]])
def test_notify_reg_records_are_kept_as_sent(records: Any) -> None:
    notify = {
        "transaction_id": "t",
        "notify_event": [
            {
                "reference_id": "r",
                "timestamp": TS,
                "data": {"reg_record_type": "Person", "reg_records": records},
            }
        ],
    }
    message = codec.decode_message("notify", json.dumps(notify).encode())
    assert json.loads(codec.encode(message))["notify_event"][0]["data"]["reg_records"] == records


@pytest.mark.parametrize(
    "raw",
    [
        {"transaction_id": "t", "timestamp": TS, "subscription_codes": ["a"]},
        {"transaction_id": "t", "timesstamp": TS, "subscription_codes": ["a"]},
        {"transaction_id": "t", "timestamp": TS, "sunscription_codes": ["a"]},
        {"transaction_id": "t", "timesstamp": TS, "sunscription_codes": ["a"]},
    ],
)
def test_unsubscribe_request_typos_are_read_and_never_written(raw: dict[str, Any]) -> None:
    message = codec.decode_message("unsubscribe", json.dumps(raw).encode())
    assert message == UnSubscribeRequest(transaction_id="t", timestamp=TS, subscription_codes=["a"])
    assert json.loads(codec.encode(message)) == {
        "transaction_id": "t",
        "timestamp": TS,
        "subscription_codes": ["a"],
    }


def test_the_new_spelling_wins_over_a_typo() -> None:
    raw = {
        "transaction_id": "t",
        "timestamp": TS,
        "timesstamp": "2000-01-01T00:00:00Z",
        "subscription_codes": ["a"],
    }
    message = codec.decode_message("unsubscribe", json.dumps(raw).encode())
    assert isinstance(message, UnSubscribeRequest)
    assert message.timestamp == TS


@pytest.mark.parametrize(
    ("raw", "missing"),
    [
        ({"transaction_id": "t", "subscription_codes": ["a"]}, "timestamp"),
        ({"transaction_id": "t", "timestamp": TS}, "subscription_codes"),
    ],
)
def test_unsubscribe_request_without_either_spelling_is_rejected(
    raw: dict[str, Any], missing: str
) -> None:
    with pytest.raises(msgspec.ValidationError, match=f"`{missing}`") as info:
        codec.decode_message("unsubscribe", json.dumps(raw).encode())
    assert codec.error_path(info.value) == "$.message"


def test_typo_timestamp_is_still_checked_as_a_date_time() -> None:
    raw = {"transaction_id": "t", "timesstamp": "", "subscription_codes": ["a"]}
    assert (
        rejection(codec.decode_message, "unsubscribe", json.dumps(raw).encode())
        == "$.message.timesstamp"
    )


def test_unsubscribe_response_typo_is_read() -> None:
    raw = {
        "transaction_id": "t",
        "correlation_id": "c",
        "timesatmp": TS,
        "status": "succ",
        "subscription_status": [{"code": "s1", "status": "unsubscribe"}],
    }
    message = codec.decode_message("on-unsubscribe", json.dumps(raw).encode())
    assert isinstance(message, UnSubscribeResponse)
    assert message.timestamp == TS
    assert "timesatmp" not in json.loads(codec.encode(message))


@pytest.mark.parametrize(("value", "kind"), [("t-1", str), (["r1", "r2"], list)])
def test_txn_status_attribute_value_is_a_string_or_a_list(value: Any, kind: type) -> None:
    raw = {
        "transaction_id": "t",
        "txnstatus_request": {
            "reference_id": "r",
            "txn_type": "search",
            "attribute_type": "reference_id_list" if kind is list else "transaction_id",
            "attribute_value": value,
        },
    }
    message = codec.decode_message("txn-status", json.dumps(raw).encode())
    assert isinstance(message, TxnStatusRequest)
    assert isinstance(message.txnstatus_request.attribute_value, kind)


def test_txn_status_request_is_one_object_not_a_batch() -> None:
    raw = {"transaction_id": "t", "txnstatus_request": [{"reference_id": "r"}]}
    assert rejection(codec.decode_message, "txn-status", json.dumps(raw).encode()) == (
        "$.message.txnstatus_request"
    )


@pytest.mark.parametrize("txn_type", [TxnType.SEARCH, TxnType.ON_SEARCH])
def test_txn_status_is_read_as_the_response_of_its_type(txn_type: TxnType) -> None:
    original = {"transaction_id": "t", "correlation_id": "c", "search_response": []}
    assert codec.decode_txn_status(txn_type, original) == SearchResponse(
        transaction_id="t", correlation_id="c", search_response=[]
    )


def test_txn_status_of_an_unsubscribe_tolerates_its_typo() -> None:
    original = {"transaction_id": "t", "correlation_id": "c", "timesatmp": TS, "status": "succ"}
    status = codec.decode_txn_status(TxnType.ON_UNSUBSCRIBE, original)
    assert isinstance(status, UnSubscribeResponse)
    assert status.timestamp == TS


# --------------------------------------------------------------------------- queries


def test_idtype_value_query() -> None:
    query = codec.decode_query(QueryType.IDTYPE_VALUE, {"type": "BRN", "value": 2024})
    assert query == IdTypeValueQuery(type="BRN", value=2024)


@pytest.mark.parametrize("query_type", [QueryType.EXPRESSION, QueryType.GRAPHQL])
def test_expression_query(query_type: QueryType) -> None:
    query = codec.decode_query(query_type, {"type": "ns", "value": {"expression": "a = 1"}})
    assert isinstance(query, ExpressionQuery)
    assert query.value.expression == "a = 1"


PREDICATE = {"attribute_name": "YOB", "operator": "ge", "attribute_value": 1980}


def test_predicate_list() -> None:
    items = [{"seq_num": 1, "expression1": PREDICATE, "condition": "and", "expression2": PREDICATE}]
    query = codec.decode_query(QueryType.PREDICATE, items)
    assert isinstance(query, list)
    assert query[0].condition is ExpCondition.AND
    assert query[0].expression1.operator is ExpOperator.GE
    assert json.loads(codec.encode(query)) == items


@pytest.mark.parametrize(
    "value",
    [
        {"expression1": PREDICATE},
        PREDICATE,
        [PREDICATE],
    ],
    ids=["single-item", "single-bare-predicate", "list-of-bare-predicates"],
)
def test_predicate_shapes_tolerated(value: Any) -> None:
    expected = Predicate(attribute_name="YOB", operator=ExpOperator.GE, attribute_value=1980)
    assert codec.decode_query(QueryType.PREDICATE, value) == [PredicateItem(expression1=expected)]


@pytest.mark.parametrize(
    ("query_type", "value", "path"),
    [
        (QueryType.IDTYPE_VALUE, {"type": "UIN"}, "$"),
        (QueryType.IDTYPE_VALUE, {"type": "UIN", "value": None}, "$.value"),
        (QueryType.IDTYPE_VALUE, {"type": "UIN", "value": [1]}, "$.value"),
        (QueryType.EXPRESSION, {"type": "x", "value": "a = 1"}, "$.value"),
        (
            QueryType.PREDICATE,
            [{"expression1": {**PREDICATE, "operator": "like"}}],
            "$[0].expression1.operator",
        ),
        (QueryType.PREDICATE, "YOB > 1980", "$"),
    ],
)
def test_query_shape_errors_have_paths_relative_to_the_query(
    query_type: QueryType, value: Any, path: str
) -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        codec.decode_query(query_type, value)
    assert (codec.error_path(info.value) or "$") == path
