"""Unit tests of the suite's parts: signing, schemas, config, catalogue, rejection rules."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conformance
import conformance.catalogue
from conformance.checks import CATALOGUE, GROUP_ORDER, Failure, Profile, Severity
from conformance.config import ConfigError, load_config
from conformance.evidence import Exchange, parse_json, redact_body, redact_headers
from conformance.expect import dig, rejected
from conformance.schemas import SchemaSet
from conformance.signing import (
    JwksVerifier,
    SignatureProblem,
    TesterKeys,
    canonical_payload,
    sign_dci,
    sign_envelope,
)

ED = TesterKeys.generate()
VERIFIER = JwksVerifier(ED.public_jwks())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=12),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=10,
)
objects = st.dictionaries(st.text(min_size=1, max_size=8), json_values, min_size=1, max_size=4)


# -- signing --------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(header=objects, message=objects, scheme=st.sampled_from(["jws", "dci-signature"]))
def test_signed_envelopes_verify_and_any_change_breaks_them(header, message, scheme):
    envelope = sign_envelope(ED, scheme, "sender", {"header": header, "message": message})
    assert VERIFIER.verify(envelope) == scheme
    changed = copy.deepcopy(envelope)
    changed["message"]["__added__"] = 1
    with pytest.raises(SignatureProblem):
        VERIFIER.verify(changed)


def test_detached_jws_over_canonical_json_verifies():
    from jwcrypto import jws

    envelope = {"header": {"b": 1, "a": "é"}, "message": {"x": [1, 2]}}
    token = jws.JWS(canonical_payload(envelope["header"], envelope["message"]))
    token.add_signature(ED.key, alg="EdDSA", protected=json.dumps({"alg": "EdDSA", "kid": ED.kid}))
    head, _payload, sig = token.serialize(compact=True).split(".")
    assert VERIFIER.verify({"signature": f"{head}..{sig}", **envelope}) == "jws"


def test_signature_problems_say_what_is_wrong():
    envelope = {"header": {"a": 1}, "message": {}}
    with pytest.raises(SignatureProblem, match=r"Expected a `signature`, got none at \$.signature"):
        VERIFIER.verify(envelope)
    stranger = sign_envelope(TesterKeys.generate(), "jws", "s", envelope)
    with pytest.raises(SignatureProblem, match="Expected a kid published in the JWKS"):
        VERIFIER.verify(stranger)
    expired = sign_dci(ED, "s", envelope["header"], envelope["message"], created=1000, ttl_s=10)
    with pytest.raises(SignatureProblem, match="unexpired"):
        VERIFIER.verify({"signature": expired, **envelope})
    with pytest.raises(SignatureProblem, match="cannot parse"):
        VERIFIER.verify({"signature": "Signature: nonsense", **envelope})


def test_symmetric_or_none_jws_algorithms_are_refused():
    import base64

    head = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": ED.kid}).encode()).decode()
    with pytest.raises(SignatureProblem, match="asymmetric"):
        VERIFIER.verify({"signature": f"{head.rstrip('=')}.e30.c2ln", "header": {}, "message": {}})


def test_key_file_round_trip_keeps_the_kid(tmp_path):
    for kind in ("Ed25519", "ES256"):
        keys = TesterKeys.generate(kind)
        path = tmp_path / f"{kind}.json"
        path.write_text(keys.private_json())
        loaded = TesterKeys.from_file(path)
        assert (loaded.kid, loaded.alg) == (keys.kid, keys.alg)


# -- schemas --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ack_status": "OK"}, "Expected one of ACK, NACK, ERR, got 'OK' at $.message.ack_status"),
        (
            {"timestamp": "2024-01-01T00:00:00"},
            "Expected an RFC 3339 date-time with a UTC offset, got '2024-01-01T00:00:00' "
            "at $.message.timestamp",
        ),
        (
            {"correlation_id": None},
            "Expected required property 'correlation_id', got an object without it at $.message",
        ),
        (
            {"correlation_id": "c" * 100},
            "Expected maxLength 99, got a string of 100 characters at $.message.correlation_id",
        ),
    ],
)
def test_bundled_schema_violations_read_expected_got_at_path(change, message):
    ack = {"ack_status": "ACK", "timestamp": "2024-01-01T00:00:00Z", "correlation_id": "c"}
    ack.update(change)
    ack = {k: v for k, v in ack.items() if v is not None}
    assert [str(v) for v in SchemaSet.load(None).violations("Ack", {"message": ack})] == [message]


def test_callback_envelopes_pin_their_action():
    schemas = SchemaSet.load(None)
    envelope = {
        "header": {
            "message_id": "m",
            "message_ts": "2024-01-01T00:00:00Z",
            "action": "search",
            "status": "succ",
        },
    }
    assert "Expected 'on-search', got 'search' at $.header.action" in map(
        str, schemas.violations("SyncSearchResponse", envelope)
    )


def test_every_bundled_name_is_loaded_from_specs_when_present():
    from conformance.schemas import SPEC_FILES, default_directory

    directory = default_directory()
    if directory is None:
        pytest.skip("no specs/schemas in this checkout")
    loaded = SchemaSet.load(directory)
    assert set(SPEC_FILES.values()) <= set(loaded.names)
    assert {p.name.removesuffix(".json") for p in directory.glob("*.json")} <= set(SPEC_FILES)


# -- config ---------------------------------------------------------------------------------
def test_config_overrides_and_urls(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('target = "http://r.example/dci/"\n[auth]\nclient_id = "a"\n')
    config = load_config(path, {"auth.client_secret": "s", "identity.sender_id": None})
    assert config.url("/registry/search") == "http://r.example/dci/registry/search"
    assert config.token_url == "http://r.example/dci/oauth2/client/token"
    assert config.has_credentials
    assert config.identity.sender_id == "dci-conformance.example.org"


def test_config_rejects_wrong_types_naming_the_path():
    with pytest.raises(ConfigError, match=r"Expected `float`.*\$\.receiver\.callback_timeout_s"):
        load_config(None, {"target": "http://x", "receiver.callback_timeout_s": "soon"})


# -- catalogue ------------------------------------------------------------------------------
def test_every_case_is_documented_and_grouped():
    for case in CATALOGUE.all():
        assert case.doc, case.id
        assert case.spec, case.id
        assert case.title, case.id
        assert case.group in GROUP_ORDER, case.id
        assert case.id.split("-")[1] in {
            "ENV", "SIG", "SEARCH", "ASYNC", "TXN", "SUB", "NOTIFY", "ERR", "AUTH", "CLIENT",
        }  # fmt: skip


def test_selection_by_id_glob_and_group():
    registry = CATALOGUE
    assert [c.id for c in registry.select(Profile.REGISTRY, ["DCI-TXN-00[12]"])] == [
        "DCI-TXN-001",
        "DCI-TXN-002",
    ]
    groups = {c.group for c in registry.select(Profile.REGISTRY, ["txn", "notify"])}
    assert groups == {"txn", "notify"}
    assert all(c.profile is Profile.CLIENT for c in registry.select(Profile.CLIENT))
    with pytest.raises(ValueError, match="DCI-NOPE-001"):
        registry.select(Profile.REGISTRY, ["DCI-NOPE-001"])


def test_openspp_crvs_coverage_is_in_the_catalogue():
    """Every check of OpenSPP's spdci-compliance for CRVS has at least one counterpart."""
    counterpart = {
        "CRVS-CORE-RG-SYNC-SEARCH-01": "DCI-ENV-001",
        "CRVS-CORE-RG-ASYNC-SEARCH-01": "DCI-ASYNC-001",
        "CRVS-CORE-RG-SEARCH-EXPRESSION-01": "DCI-ASYNC-005",
        "CRVS-CORE-RG-SEARCH-PREDICATE-01": "DCI-ASYNC-006",
        "CRVS-CORE-RG-SYNC-SEARCH-EXPRESSION-01": "DCI-SEARCH-003",
        "CRVS-CORE-RG-SYNC-SEARCH-PREDICATE-01": "DCI-SEARCH-004",
        "CRVS-CORE-RG-SUBSCRIBE-01": "DCI-SUB-001",
        "CRVS-CORE-RG-UNSUBSCRIBE-01": "DCI-SUB-003",
        "CRVS-CORE-RG-TXN-STATUS-01": "DCI-TXN-002",
        "CRVS-CORE-RG-SYNC-TXNSTATUS-01": "DCI-TXN-001",
        "CRVS-CORE-RG-ASYNC-SEARCH-CB-01": "DCI-ASYNC-002",
        "CRVS-CORE-RG-ASYNC-SUBSCRIBE-CB-01": "DCI-SUB-002",
        "CRVS-CORE-RG-ASYNC-UNSUBSCRIBE-CB-01": "DCI-SUB-004",
        "CRVS-CORE-RG-ASYNC-TXNSTATUS-CB-01": "DCI-TXN-003",
        "CRVS-CORE-RG-ASYNC-SEARCH-NEG-01": "DCI-ERR-001",
        "CRVS-CORE-RG-SYNC-SEARCH-NEG-01": "DCI-ERR-002",
        "CRVS-CORE-RG-SUBSCRIBE-NEG-01": "DCI-ERR-003",
        "CRVS-SEC-AUTH-RG-*": "DCI-AUTH-006",
        "CRVS-SEC-SIG-RG-ASYNC-SEARCH-01": "DCI-SIG-014",
        "CRVS-SEC-SIG-RG-SYNC-SEARCH-01": "DCI-SIG-015",
        "DCI-VAL-PAG-01..03": "DCI-ASYNC-009",
        "DCI-VAL-FMT-TS-01..03": "DCI-SUB-008",
        "DCI-VAL-FMT-LOC-01..03": "DCI-ERR-016",
        "DCI-VAL-BND-TXN-01..02": "DCI-ERR-018",
        "DCI-VAL-BND-SUB-01..02": "DCI-SUB-007",
        "SPDCI-SEC-CONTENT-01..02": "DCI-ERR-022",
        "CRVS-CORE-RG-ON-*-01 (client)": "DCI-CLIENT-009",
        "CRVS-CORE-SP-*-NEG-01 (client)": "DCI-CLIENT-010",
    }
    for case_id in counterpart.values():
        CATALOGUE.get(case_id)


def _cases(prefix: str, *numbers: int) -> set[str]:
    return {f"DCI-{prefix}-{n:03d}" for n in numbers}


ISSUE_COVERAGE = {
    "sync search per query type": _cases("SEARCH", 1, 3, 4, 5),
    "async search per query type": _cases("ASYNC", 4, 5, 6, 12),
    "subscribe/unsubscribe": _cases("SUB", 1, 2, 3, 4),
    "sync and async txn status": _cases("TXN", 1, 2, 3),
    "callbacks carry transaction_id and correlation_id": {
        "DCI-ASYNC-002", "DCI-SUB-002", "DCI-SUB-004", "DCI-TXN-003",
    },
    "schema-invalid requests rejected": _cases("ERR", 1, 2, 3, 4, 5, 6, 28, 29, 30),
    "bearer auth on every endpoint": _cases("AUTH", 1, 2, 3, 4, 5, 6),
    "signature validation": _cases("SIG", 9, 10, 11, 12, 13, 14, 15, 16, 17, 18),
    "pagination bounds zero/negative": _cases("SEARCH", 13, 14, 15, 19)
    | _cases("ASYNC", 7, 8, 9, 13),
    "timestamp formats": _cases("ERR", 11, 12, 13) | {"DCI-SUB-008"},
    "locale formats": _cases("ERR", 14, 15, 16),
    "length limits (transaction_id, subscription codes <= 99)": _cases("ERR", 17, 18)
    | _cases("SUB", 6, 7),
    "Content-Type enforcement": _cases("ERR", 22, 23, 24),
}  # fmt: skip
"""Issue #8's coverage list (spdci-compliance parity), item by item."""


@pytest.mark.parametrize("item", sorted(ISSUE_COVERAGE))
def test_issue_coverage_list_is_in_the_catalogue(item):
    for case_id in ISSUE_COVERAGE[item]:
        case = CATALOGUE.get(case_id)
        assert case.spec.startswith(("§", "AUTHZ", "JWKS")), (case_id, case.spec)


def test_bearer_auth_cases_cover_every_request_endpoint():
    titles = " ".join(
        CATALOGUE.get(c).title.lower() for c in ISSUE_COVERAGE["bearer auth on every endpoint"]
    )
    for endpoint in (
        "search",
        "sync search",
        "subscribe",
        "unsubscribe",
        "txn status",
        "sync txn status",
    ):
        assert f"{endpoint} requires a bearer token" in titles, endpoint


# -- rejection rules ------------------------------------------------------------------------
def _exchange(status: int, body: object) -> Exchange:
    raw = json.dumps(body)
    parsed = parse_json(raw.encode())
    return Exchange(
        "POST", "http://t/x", {}, "{}", status=status, response_body=raw, response_json=parsed
    )


def _rjct(code: str) -> dict[str, str]:
    return {"status": "rjct", "status_reason_code": code}


def _err(code: str) -> dict[str, object]:
    message = {
        "ack_status": "ERR",
        "timestamp": "t",
        "correlation_id": "c",
        "error": {"code": code},
    }
    return {"message": message}


@pytest.mark.parametrize(
    ("status", "body", "how"),
    [
        (400, _err("err.request.bad"), "ack-err"),
        (200, _err("err.request.bad"), "ack-err"),
        (422, {"errors": [{"code": "err.request.bad", "message": ""}]}, "http-error"),
        (200, {"header": _rjct("rjct.total_count.invalid")}, "header-rjct"),
        (200, {"message": {"search_response": [_rjct("rjct.pagination.invalid")]}}, "item-rjct"),
    ],
)
def test_every_standard_form_of_rejection_is_accepted(status, body, how):
    got = rejected(
        None,  # type: ignore[arg-type]  (the callback branch is not reached)
        _exchange(status, body),
        "x",
        header_codes=("rjct.total_count.invalid",),
        item_codes=("rjct.pagination.invalid",),
    )
    assert got.how == how


@pytest.mark.parametrize(
    ("status", "body", "severity", "text"),
    [
        (500, {}, Severity.CRITICAL, "Expected no 5xx, got HTTP 500"),
        (200, {"message": {"ack_status": "ACK"}}, Severity.HIGH, "got HTTP 200 ack_status ACK"),
        (400, _err("err.signature.invalid"), Severity.HIGH, "ERR with 'err.signature.invalid'"),
        (400, {"detail": "bad"}, Severity.MEDIUM, "without the standard's error body"),
    ],
)
def test_wrong_rejections_fail_with_their_severity(status, body, severity, text):
    with pytest.raises(Failure) as info:
        rejected(None, _exchange(status, body), "x")  # type: ignore[arg-type]
    assert info.value.severity is severity
    assert text in info.value.message


def test_dig_and_redaction():
    assert dig({"a": [{"b": 1}]}, "a[0].b") == 1
    assert dig({"a": []}, "a[0].b") is None
    assert redact_headers({"Authorization": "Bearer abc.def"}) == {
        "Authorization": "Bearer ***(7 chars)"
    }
    form = "grant_type=client_credentials&client_id=c1&client_secret=s3cr%2Ft"
    assert redact_body(form) == "grant_type=client_credentials&client_id=c1&client_secret=***"
    token = '{"access_token":"eyJ.x.y","token_type":"bearer"}'
    assert json.loads(redact_body(token)) == {"access_token": "***", "token_type": "bearer"}
    envelope = '{"header":{"note":"password"},"message":{}}'
    assert redact_body(envelope) == envelope  # untouched, byte for byte


def test_reports_never_contain_the_client_secret():
    exchange = Exchange(
        method="POST",
        url="http://registry.example.org/oauth2/client/token",
        request_headers={"Content-Type": "application/x-www-form-urlencoded"},
        request_body="grant_type=client_credentials&client_id=c1&client_secret=TOPSECRET",
        status=200,
        response_body='{"access_token":"TOKENVALUE","expires_in":900}',
    )
    text = json.dumps(exchange.to_dict())
    assert "TOPSECRET" not in text
    assert "TOKENVALUE" not in text


# -- package hygiene ------------------------------------------------------------------------
def test_conformance_imports_no_dci_bridge_internals():
    root = Path(conformance.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("dci_bridge"):
                    assert name.startswith("dci_bridge.protocol"), f"{path}: imports {name}"


def test_public_names():
    assert set(conformance.__all__) == {
        "CATALOGUE", "CaseResult", "Check", "Config", "Failure", "Outcome", "Profile", "RunSummary",
        "Severity", "Skip", "__version__", "check", "load_config", "requires", "run",
    }  # fmt: skip
