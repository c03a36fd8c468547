"""Closed code lists of the DCI standard, and the helpers that read its open ones.

Closed lists (statuses, reason codes, operators) are `enum.StrEnum` so msgspec rejects
unknown values on decode. Registry, record and event types are free strings on the wire in
prefixed (`ns:org:RegistryType:Civil`) or bare (`Civil`, `live_birth`) spellings; the
`parse_*` helpers accept both and the `*_WIRE` tables give the prefixed form we emit.
"""

from __future__ import annotations

import enum

VERSION = "1.0.0"
"""The only wire protocol version (`header.version`)."""


class Action(enum.StrEnum):
    """`header.action`: one per endpoint; the callbacks are the `on-*` forms and `notify`."""

    SEARCH = "search"
    ON_SEARCH = "on-search"
    SUBSCRIBE = "subscribe"
    ON_SUBSCRIBE = "on-subscribe"
    NOTIFY = "notify"
    UNSUBSCRIBE = "unsubscribe"
    ON_UNSUBSCRIBE = "on-unsubscribe"
    TXN_STATUS = "txn-status"
    TXN_ON_STATUS = "txn-on-status"


class RequestStatus(enum.StrEnum):
    RCVD = "rcvd"
    PDNG = "pdng"
    SUCC = "succ"
    RJCT = "rjct"


class AckStatus(enum.StrEnum):
    ACK = "ACK"
    NACK = "NACK"
    ERR = "ERR"


class ErrorCode(enum.StrEnum):
    """`Error.code` of an Ack: transport and message-level failures."""

    REQUEST_BAD = "err.request.bad"
    REQUEST_UNAUTHORIZED = "err.request.unauthorized"
    REQUEST_FORBIDDEN = "err.request.forbidden"
    REQUEST_NOT_FOUND = "err.request.not_found"
    REQUEST_TIMEOUT = "err.request.timeout"
    VERSION_NOT_SUPPORTED = "err.version.not_supported"
    REQUEST_TOO_MANY_REQUESTS = "err.request.too_many_requests"
    SENDER_ID_INVALID = "err.sender_id.invalid"
    SENDER_URI_INVALID = "err.sender_uri.invalid"
    RECEIVER_ID_INVALID = "err.receiver_id.invalid"
    SIGNATURE_MISSING = "err.signature.missing"
    SIGNATURE_INVALID = "err.signature.invalid"
    ENCRYPTION_INVALID = "err.encryption.invalid"
    SERVICE_UNAVAILABLE = "err.service.unavailable"


class HeaderStatusReasonCode(enum.StrEnum):
    """`status_reason_code` of a callback header (MsgHeaderStatusReasonCode)."""

    VERSION_INVALID = "rjct.version.invalid"
    MESSAGE_ID_DUPLICATE = "rjct.message_id.duplicate"
    MESSAGE_TS_INVALID = "rjct.message_ts.invalid"
    ACTION_INVALID = "rjct.action.invalid"
    ACTION_NOT_SUPPORTED = "rjct.action.not_supported"
    TOTAL_COUNT_INVALID = "rjct.total_count.invalid"
    TOTAL_COUNT_LIMIT_EXCEEDED = "rjct.total_count.limit_exceeded"
    ERRORS_TOO_MANY = "rjct.errors.too_many"


class SearchStatusReasonCode(enum.StrEnum):
    REFERENCE_ID_INVALID = "rjct.reference_id.invalid"
    REFERENCE_ID_DUPLICATE = "rjct.reference_id.duplicate"
    TIMESTAMP_INVALID = "rjct.timestamp.invalid"
    SEARCH_CRITERIA_INVALID = "rjct.search_criteria.invalid"
    FILTER_INVALID = "rjct.filter.invalid"
    SORT_INVALID = "rjct.sort.invalid"
    PAGINATION_INVALID = "rjct.pagination.invalid"
    TOO_MANY_RECORDS_FOUND = "rjct.search.too_many_records_found"


class SubscribeStatusReasonCode(enum.StrEnum):
    REFERENCE_ID_INVALID = "rjct.reference_id.invalid"
    REFERENCE_ID_DUPLICATE = "rjct.reference_id.duplicate"
    TIMESTAMP_INVALID = "rjct.timestamp.invalid"
    NOTIFY_TYPES_INVALID = "rjct.notify_types.invalid"
    NOTIFY_DETAILS_INVALID = "rjct.notify_details.invalid"
    PERSON_ID_INVALID = "rjct.person_id.invalid"
    EVENT_ALREADY_SUBSCRIBED = "rjct.event.already_subscribed"


class UnsubscribeStatusReasonCode(enum.StrEnum):
    REFERENCE_ID_INVALID = "rjct.reference_id.invalid"
    REFERENCE_ID_DUPLICATE = "rjct.reference_id.duplicate"
    TIMESTAMP_INVALID = "rjct.timestamp.invalid"
    SUBSCRIPTION_CODE_INVALID = "rjct.subscription_code.invalid"
    REQUESTER_INVALID = "rjct.requester.invalid"
    EVENT_ALREADY_UNSUBSCRIBED = "rjct.event.already_unsubscribed"


class QueryType(enum.StrEnum):
    IDTYPE_VALUE = "idtype-value"
    EXPRESSION = "expression"
    PREDICATE = "predicate"
    GRAPHQL = "graphql"


class ExpOperator(enum.StrEnum):
    GT = "gt"
    LT = "lt"
    EQ = "eq"
    GE = "ge"
    LE = "le"
    IN = "in"


class ExpCondition(enum.StrEnum):
    AND = "and"
    OR = "or"
    NOT = "not"


class SortOrder(enum.StrEnum):
    ASC = "asc"
    DESC = "desc"


class TxnType(enum.StrEnum):
    """`txn_type` of a txn status request; the older `on-*` spellings are accepted too."""

    SEARCH = "search"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    ON_SEARCH = "on-search"
    ON_SUBSCRIBE = "on-subscribe"
    ON_UNSUBSCRIBE = "on-unsubscribe"


class TxnAttributeType(enum.StrEnum):
    TRANSACTION_ID = "transaction_id"
    REFERENCE_ID_LIST = "reference_id_list"
    CORRELATION_ID = "correlation_id"
    SUBSCRIPTION_CODE_LIST = "subscription_code_list"


class SubscriptionStatus(enum.StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"


class KeyUse(enum.StrEnum):
    """`use` of a JWK in the JWKS document."""

    SIG = "sig"
    ENC = "enc"


class Sex(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class MaritalStatus(enum.StrEnum):
    SINGLE = "S"
    MARRIED = "M"
    WIDOWED = "W"
    ANNULLED = "A"
    DIVORCED = "D"
    LEGALLY_SEPARATED = "L"
    UNKNOWN = "U"


class IdentifierType(enum.StrEnum):
    """Identifier types a client may search by: the standard's four plus OpenCRVS's own."""

    UIN = "UIN"
    BRN = "BRN"
    MRN = "MRN"
    DRN = "DRN"
    NID = "NID"
    OPENCRVS_RECORD_ID = "OPENCRVS_RECORD_ID"
    OPENCRVS_TRACKING_ID = "OPENCRVS_TRACKING_ID"


_NID, _UIN = IdentifierType.NID, IdentifierType.UIN


def canonical_identifier_type(kind: IdentifierType) -> IdentifierType:
    """UIN for NID (OpenCRVS's name for the national id; persons carry it as UIN), else
    `kind` itself."""
    return _UIN if kind is _NID else kind


class RegistryType(enum.StrEnum):
    CIVIL = "Civil"
    IBR = "IBR"
    SOCIAL = "Social"
    DR = "DR"
    FR = "FR"
    UNKNOWN = "unknown"


class RecordType(enum.StrEnum):
    PERSON = "Person"
    MEMBER = "Member"
    GROUP = "Group"
    BENEFICIARY = "Beneficiary"
    DISABLED_PERSON = "DisabledPerson"
    FARMER = "Farmer"


class EventType(enum.StrEnum):
    """Vital events, in the standard's RegistryEventType spelling."""

    LIVE_BIRTH = "LiveBirth"
    DEATH = "Death"
    MARRIAGE = "Marriage"
    DIVORCE = "Divorce"


REGISTRY_TYPE_PREFIX = "ns:org:RegistryType:"
RECORD_TYPE_PREFIX = "spdci-extensions-dci:"
EVENT_TYPE_PREFIX = "spdci-common:RegistryEventType:"

# The CRVS extension's vital event codes (live_birth, ...) and OpenCRVS's event names, read as
# the standard's RegistryEventType. Keys are lower case without separators.
_EVENT_ALIASES: dict[str, EventType] = {
    "livebirth": EventType.LIVE_BIRTH,
    "birth": EventType.LIVE_BIRTH,
    "death": EventType.DEATH,
    "marriage": EventType.MARRIAGE,
    "divorce": EventType.DIVORCE,
}


def _last_segment(value: str) -> str:
    return value.rsplit(":", 1)[-1].strip()


_REGISTRY_TYPES = {member.value.lower(): member for member in RegistryType}
_RECORD_TYPES = {member.value.lower(): member for member in RecordType}


def parse_registry_type(value: str) -> RegistryType | None:
    """Read a prefixed or bare registry type; None when it is not on the code list."""
    return _REGISTRY_TYPES.get(_last_segment(value).lower())


def parse_record_type(value: str) -> RecordType | None:
    """Read a prefixed or bare record type; None when it is not on the code list."""
    return _RECORD_TYPES.get(_last_segment(value).lower())


def parse_event_type(value: str) -> EventType | None:
    """Read `spdci-common:RegistryEventType:LiveBirth`, `LiveBirth`, `live_birth`, `birth`..."""
    key = _last_segment(value).lower().replace("_", "").replace("-", "")
    return _EVENT_ALIASES.get(key)


def registry_type_wire(value: RegistryType) -> str:
    return REGISTRY_TYPE_PREFIX + value.value


def record_type_wire(value: RecordType) -> str:
    return RECORD_TYPE_PREFIX + value.value


def event_type_wire(value: EventType) -> str:
    return EVENT_TYPE_PREFIX + value.value
