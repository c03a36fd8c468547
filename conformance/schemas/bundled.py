"""JSON Schemas of the DCI CRVS wire messages, written from the spec digest (NEW text).

These are the suite's own reading of the standard, used when no generated schemas from
`specs/schemas/` are given. Objects are open (unknown fields allowed, tolerant reader) but
required fields, types, enums, length limits and formats are enforced. Date-times must carry
an offset (`Z` or `+hh:mm`), as the spec's examples and format require.
"""

from __future__ import annotations

from typing import Any

DATE_TIME = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"

Schema = dict[str, Any]


def _obj(required: list[str], **props: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": props}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/$defs/{name}"}


def _str(max_length: int | None = None, **extra: Any) -> Schema:
    out: Schema = {"type": "string", **extra}
    if max_length is not None:
        out["maxLength"] = max_length
    return out


def _enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def _array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


STATUS = ("rcvd", "pdng", "succ", "rjct")
ERROR_CODES = (
    "err.request.bad",
    "err.request.unauthorized",
    "err.request.forbidden",
    "err.request.not_found",
    "err.request.timeout",
    "err.version.not_supported",
    "err.request.too_many_requests",
    "err.sender_id.invalid",
    "err.sender_uri.invalid",
    "err.receiver_id.invalid",
    "err.signature.missing",
    "err.signature.invalid",
    "err.encryption.invalid",
    "err.service.unavailable",
)
HEADER_REASON_CODES = (
    "rjct.version.invalid",
    "rjct.message_id.duplicate",
    "rjct.message_ts.invalid",
    "rjct.action.invalid",
    "rjct.action.not_supported",
    "rjct.total_count.invalid",
    "rjct.total_count.limit_exceeded",
    "rjct.errors.too_many",
)
SEARCH_REASON_CODES = (
    "rjct.reference_id.invalid",
    "rjct.reference_id.duplicate",
    "rjct.timestamp.invalid",
    "rjct.search_criteria.invalid",
    "rjct.filter.invalid",
    "rjct.sort.invalid",
    "rjct.pagination.invalid",
    "rjct.search.too_many_records_found",
)
SUBSCRIBE_REASON_CODES = (
    "rjct.reference_id.invalid",
    "rjct.reference_id.duplicate",
    "rjct.timestamp.invalid",
    "rjct.notify_types.invalid",
    "rjct.notify_details.invalid",
    "rjct.person_id.invalid",
    "rjct.event.already_subscribed",
)
UNSUBSCRIBE_REASON_CODES = (
    "rjct.reference_id.invalid",
    "rjct.reference_id.duplicate",
    "rjct.timestamp.invalid",
    "rjct.subscription_code.invalid",
    "rjct.requester.invalid",
    "rjct.event.already_unsubscribed",
)
QUERY_TYPES = ("idtype-value", "expression", "predicate", "graphql")


def _defs() -> dict[str, Schema]:
    d: dict[str, Schema] = {}
    d["DateTime"] = _str(pattern=DATE_TIME)
    d["Locale"] = _str(pattern="^[a-z]{3}$")
    d["TransactionId"] = _str(99)
    d["CorrelationId"] = _str(99)
    d["ReferenceId"] = {"type": "string"}
    d["MsgHeader"] = _obj(
        ["message_id", "message_ts", "action", "sender_id", "total_count"],
        version=_str(),
        message_id=_str(),
        message_ts=_ref("DateTime"),
        action=_str(),
        sender_id=_str(),
        sender_uri=_str(),
        receiver_id=_str(),
        total_count={"type": "integer"},
        is_msg_encrypted={"type": "boolean"},
        meta={"type": "object"},
    )
    d["MsgCallbackHeader"] = _obj(
        ["message_id", "message_ts", "action", "status"],
        version=_str(),
        message_id=_str(),
        message_ts=_ref("DateTime"),
        action=_str(),
        status=_enum(*STATUS),
        status_reason_code=_enum(*HEADER_REASON_CODES),
        status_reason_message=_str(999),
        total_count={"type": "integer"},
        completed_count={"type": "integer"},
        sender_id=_str(),
        receiver_id=_str(),
        is_msg_encrypted={"type": "boolean"},
        meta={"type": "object"},
    )
    d["EncryptedMessage"] = _obj(
        ["header", "ciphertext", "encrypted_key", "tag", "iv"],
        header=_obj(["alg", "enc", "kid"], alg=_str(), enc=_str(), kid=_str()),
        ciphertext=_str(),
        encrypted_key=_str(),
        tag=_str(),
        iv=_str(),
    )
    d["Ack"] = _obj(
        ["message"],
        message=_obj(
            ["ack_status", "timestamp", "correlation_id"],
            ack_status=_enum("ACK", "NACK", "ERR"),
            timestamp=_ref("DateTime"),
            error=_obj(["code"], code=_enum(*ERROR_CODES), message=_str(999)),
            correlation_id=_ref("CorrelationId"),
        ),
    )
    d["HttpErrorResponse"] = _obj(
        ["errors"], errors=_array(_obj(["code"], code=_str(), message=_str()), minItems=1)
    )
    d["Pagination"] = _obj(
        ["page_size", "page_number", "total_count"],
        page_size={"type": "integer"},
        page_number={"type": "integer"},
        total_count={"type": "integer"},
    )
    predicate = _obj(
        ["attribute_name", "operator", "attribute_value"],
        attribute_name=_str(),
        operator=_enum("gt", "lt", "eq", "ge", "le", "in"),
        attribute_value={},
    )
    d["SearchCriteria"] = _obj(
        ["query_type", "query"],
        version=_str(),
        reg_type=_str(),
        reg_record_type=_str(),
        query_type=_enum(*QUERY_TYPES),
        query={
            "anyOf": [
                _obj(["type", "value"], type=_str(), value={}),
                _array(
                    _obj(
                        ["expression1"],
                        seq_num={"type": "number"},
                        expression1=predicate,
                        condition=_enum("and", "or", "not"),
                        expression2=predicate,
                    )
                ),
            ]
        },
        sort=_array(
            _obj(
                ["attribute_name", "sort_order"],
                attribute_name=_str(),
                sort_order=_enum("asc", "desc"),
            )
        ),
        pagination=_obj(
            ["page_size"], page_size={"type": "integer"}, page_number={"type": "integer"}
        ),
        consent={"type": "object"},
        authorize={"type": "object"},
    )
    d["SearchRequest"] = _obj(
        ["transaction_id", "search_request"],
        transaction_id=_ref("TransactionId"),
        search_request=_array(
            _obj(
                ["reference_id", "timestamp", "search_criteria"],
                reference_id=_ref("ReferenceId"),
                timestamp=_ref("DateTime"),
                search_criteria=_ref("SearchCriteria"),
                locale=_ref("Locale"),
            ),
        ),
    )
    d["SearchResponse"] = _obj(
        ["transaction_id", "correlation_id", "search_response"],
        transaction_id=_ref("TransactionId"),
        correlation_id=_ref("CorrelationId"),
        search_response=_array(
            _obj(
                ["reference_id", "timestamp", "status"],
                reference_id=_ref("ReferenceId"),
                timestamp=_ref("DateTime"),
                status=_enum(*STATUS),
                status_reason_code=_enum(*SEARCH_REASON_CODES),
                status_reason_message=_str(999),
                data=_obj(
                    ["reg_records"],
                    version=_str(),
                    reg_type=_str(),
                    reg_record_type=_str(),
                    reg_records=_array({"type": "object"}),
                ),
                pagination=_ref("Pagination"),
                locale=_ref("Locale"),
            )
        ),
    )
    frequency = _obj(
        ["start_time", "end_time", "frequency"],
        start_time=_ref("DateTime"),
        end_time=_ref("DateTime"),
        frequency=_str(),
    )
    d["SubscribeRequest"] = _obj(
        ["transaction_id", "subscribe_request"],
        transaction_id=_ref("TransactionId"),
        subscribe_request=_array(
            _obj(
                ["reference_id", "timestamp", "subscribe_criteria"],
                reference_id=_ref("ReferenceId"),
                timestamp=_ref("DateTime"),
                locale=_ref("Locale"),
                subscribe_criteria=_obj(
                    ["reg_event_type", "filter", "notify_record_type"],
                    version=_str(),
                    reg_type=_str(),
                    reg_event_type=_str(),
                    frequency=frequency,
                    filter_type=_enum(*QUERY_TYPES),
                    filter={},
                    notify_record_type=_str(),
                    authorize={"type": "object"},
                ),
            ),
        ),
    )
    d["SubscriptionInfo"] = _obj(
        ["code", "status", "timestamp"],
        version=_str(),
        code=_str(99),
        status=_enum("subscribe", "unsubscribe"),
        timestamp=_ref("DateTime"),
        reg_type=_str(),
        reg_event_type=_str(),
        frequency=frequency,
        filter_type=_enum(*QUERY_TYPES),
        filter={},
        notify_record_type=_str(),
        locale=_ref("Locale"),
    )
    d["SubscribeResponse"] = _obj(
        ["transaction_id", "correlation_id", "subscribe_response"],
        transaction_id=_ref("TransactionId"),
        correlation_id=_ref("CorrelationId"),
        subscribe_response=_array(
            _obj(
                ["reference_id", "timestamp", "status"],
                reference_id=_ref("ReferenceId"),
                timestamp=_ref("DateTime"),
                status=_enum(*STATUS),
                status_reason_code=_enum(*SUBSCRIBE_REASON_CODES),
                status_reason_message=_str(999),
                subscriptions=_array(_ref("SubscriptionInfo")),
                pagination=_ref("Pagination"),
                locale=_ref("Locale"),
            )
        ),
    )
    d["UnSubscribeRequest"] = _obj(
        ["transaction_id", "timestamp", "subscription_codes"],
        transaction_id=_ref("TransactionId"),
        timestamp=_ref("DateTime"),
        subscription_codes=_array(_str(99)),
    )
    d["UnSubscribeResponse"] = _obj(
        ["transaction_id", "correlation_id", "timestamp", "status"],
        transaction_id=_ref("TransactionId"),
        correlation_id=_ref("CorrelationId"),
        timestamp=_ref("DateTime"),
        status=_enum(*STATUS),
        status_reason_code=_enum(*UNSUBSCRIBE_REASON_CODES),
        status_reason_message=_str(999),
        subscription_status=_array(
            _obj(["code", "status"], code=_str(99), status=_enum("subscribe", "unsubscribe"))
        ),
    )
    d["NotifyEventRequest"] = _obj(
        ["transaction_id", "notify_event"],
        transaction_id=_ref("TransactionId"),
        notify_event=_array(
            _obj(
                ["reference_id", "timestamp", "data"],
                reference_id=_ref("ReferenceId"),
                timestamp=_ref("DateTime"),
                locale=_ref("Locale"),
                # reg_records: object in the schema text, array in practice (digest §11.3)
                data=_obj(
                    ["reg_record_type", "reg_records"],
                    version=_str(),
                    reg_type=_str(),
                    reg_event_type=_str(),
                    reg_record_type=_str(),
                    reg_records={"type": ["object", "array"]},
                ),
            ),
        ),
    )
    d["TxnStatusRequest"] = _obj(
        ["transaction_id", "txnstatus_request"],
        transaction_id=_ref("TransactionId"),
        txnstatus_request=_obj(
            ["reference_id", "txn_type", "attribute_type", "attribute_value"],
            reference_id=_ref("ReferenceId"),
            txn_type=_enum("search", "subscribe", "unsubscribe"),
            attribute_type=_enum(
                "transaction_id", "reference_id_list", "correlation_id", "subscription_code_list"
            ),
            attribute_value={"anyOf": [_str(99), _array(_str(99))]},
            locale=_ref("Locale"),
        ),
    )
    d["TxnStatusResponse"] = _obj(
        ["transaction_id", "correlation_id", "txnstatus_response"],
        transaction_id=_ref("TransactionId"),
        correlation_id=_ref("CorrelationId"),
        txnstatus_response=_obj(
            ["txn_type", "txn_status"],
            # NEW spells bare types; DRAFT/V1 the on-* ones (both are the standard's text)
            txn_type=_enum(
                "search", "subscribe", "unsubscribe", "on-search", "on-subscribe", "on-unsubscribe"
            ),
            txn_status={
                "anyOf": [
                    _ref("SearchResponse"),
                    _ref("SubscribeResponse"),
                    _ref("UnSubscribeResponse"),
                ]
            },
        ),
    )
    d["JWKS"] = _obj(
        ["keys"],
        keys=_array(
            _obj(
                ["kty", "kid", "use", "alg"],
                kty=_str(),
                kid=_str(),
                use=_enum("sig", "enc"),
                alg=_str(),
            )
        ),
    )
    d["TokenResponse"] = _obj(
        ["access_token", "token_type"],
        access_token=_str(minLength=1),
        token_type={"type": "string", "pattern": "^[Bb][Ee][Aa][Rr][Ee][Rr]$"},
        expires_in={"type": ["string", "integer"]},
    )
    return d


# Envelope schemas: (header def, fixed action, message def, is message required)
ENVELOPES: dict[str, tuple[str, str, str, bool]] = {
    "SearchRequestEnvelope": ("MsgHeader", "search", "SearchRequest", True),
    "SubscribeRequestEnvelope": ("MsgHeader", "subscribe", "SubscribeRequest", True),
    "UnsubscribeRequestEnvelope": ("MsgHeader", "unsubscribe", "UnSubscribeRequest", True),
    "TxnStatusRequestEnvelope": ("MsgHeader", "txn-status", "TxnStatusRequest", True),
    "SyncSearchResponse": ("MsgCallbackHeader", "on-search", "SearchResponse", False),
    "OnSearchCallback": ("MsgCallbackHeader", "on-search", "SearchResponse", False),
    "SyncTxnStatusResponse": ("MsgCallbackHeader", "txn-on-status", "TxnStatusResponse", False),
    "TxnOnStatusCallback": ("MsgCallbackHeader", "txn-on-status", "TxnStatusResponse", False),
    "OnSubscribeCallback": ("MsgHeader", "on-subscribe", "SubscribeResponse", True),
    "OnUnsubscribeCallback": ("MsgHeader", "on-unsubscribe", "UnSubscribeResponse", True),
    "NotifyCallback": ("MsgCallbackHeader", "notify", "NotifyEventRequest", False),
}


def bundled_schemas() -> dict[str, Schema]:
    """Every named schema (definitions and envelopes), each self-contained with `$defs`."""
    defs = _defs()
    for name, (header, action, message, message_required) in ENVELOPES.items():
        defs[name] = {
            "type": "object",
            "required": ["header", "message"] if message_required else ["header"],
            "properties": {
                "signature": _str(),
                "header": {"allOf": [_ref(header), _obj(["action"], action={"const": action})]},
                "message": {"type": "object"},
            },
            # plain message unless the header says it is encrypted (then a JWE object)
            "if": {
                "properties": {
                    "header": _obj(["is_msg_encrypted"], is_msg_encrypted={"const": True})
                }
            },
            "then": {"properties": {"message": _ref("EncryptedMessage")}},
            "else": {"properties": {"message": _ref(message)}},
        }
    return {
        name: {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": defs,
            **_ref(name),
        }
        for name in defs
    }
