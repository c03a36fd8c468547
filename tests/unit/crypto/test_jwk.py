"""Key parsing, RFC 7638 kids and algorithm pinning."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from jwcrypto import jwk as jwcrypto_jwk

from dci_bridge.crypto.jwk import (
    KeyFormatError,
    KeySet,
    SigningKey,
    UnknownKeyError,
    load_decryption_key,
    load_signing_key,
    public_key_from_jwk,
)

# RFC 7638 section 3.1
RFC7638_RSA = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2"
    "QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6"
    "WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
# RFC 8037 appendix A.2/A.3
RFC8037_ED25519 = {
    "kty": "OKP",
    "crv": "Ed25519",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}


def test_thumbprint_is_rfc7638() -> None:
    key = public_key_from_jwk(RFC7638_RSA)
    assert key.thumbprint == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert key.kid == "2011-04-29"  # a declared kid is kept ...
    keys = KeySet([key])
    assert keys.signing_key("2011-04-29") is key  # ... and both find the key
    assert keys.signing_key(key.thumbprint) is key


def test_ed25519_thumbprint_is_rfc8037() -> None:
    key = public_key_from_jwk(RFC8037_ED25519)
    assert key.kid == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert (key.alg, key.use) == ("EdDSA", "sig")


@pytest.mark.parametrize(
    ("jwk", "alg", "use"),
    [
        (RFC8037_ED25519, "EdDSA", "sig"),
        ({**RFC8037_ED25519, "alg": "EdDSA"}, "EdDSA", "sig"),
        ({**RFC8037_ED25519, "alg": "Ed25519"}, "EdDSA", "sig"),
        ({**RFC7638_RSA, "alg": "RSA-256"}, "RS256", "sig"),  # opencrvs/dci-crvs-api spelling
        ({k: v for k, v in RFC7638_RSA.items() if k != "alg"}, "RS256", "sig"),
        ({**RFC7638_RSA, "use": "enc", "alg": "RSA-OAEP-256"}, "RSA-OAEP-256", "enc"),
        ({**RFC7638_RSA, "alg": "RSA-OAEP"}, "RSA-OAEP", "enc"),
        (
            {**{k: v for k, v in RFC7638_RSA.items() if k != "alg"}, "use": "enc"},
            "RSA-OAEP-256",
            "enc",
        ),
    ],
)
def test_algorithm_is_pinned_from_alg_or_key_type(jwk: dict[str, Any], alg: str, use: str) -> None:
    key = public_key_from_jwk(jwk)
    assert (key.alg, key.use) == (alg, use)


def _pem_free_jwk(key: Any) -> dict[str, Any]:
    return dict(jwcrypto_jwk.JWK.from_pyca(key).export_public(as_dict=True))


@pytest.mark.parametrize(
    "jwk",
    [
        {**RFC8037_ED25519, "alg": "ES256"},  # alg that does not fit the key
        {**RFC7638_RSA, "alg": "PS256"},  # unsupported algorithm
        {**RFC7638_RSA, "alg": "HS256"},
        {**RFC7638_RSA, "use": "enc", "alg": "RSA1_5"},
        {**RFC8037_ED25519, "use": "enc"},  # only RSA encrypts
        {**RFC7638_RSA, "use": "other"},
        {"kty": "oct", "k": "c2VjcmV0"},  # a symmetric key never verifies anything
        {"kty": "OKP", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},  # not a point on the curve
        {"kty": "RSA", "n": 5, "e": "AQAB"},
        "not an object",
    ],
)
def test_unusable_jwks_are_refused(jwk: Any) -> None:
    with pytest.raises(KeyFormatError):
        public_key_from_jwk(jwk)


def test_weak_rsa_and_other_curves_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    for key in (small, p384):
        with pytest.raises(KeyFormatError):
            public_key_from_jwk(_pem_free_jwk(key))


def test_x25519_pem_is_not_a_signing_key() -> None:
    pem = x25519.X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFormatError):
        load_signing_key(pem)


def test_jwks_skips_unusable_keys_and_counts_them() -> None:
    keys = KeySet.from_jwks(
        {"keys": [RFC8037_ED25519, {"kty": "oct", "k": "c2VjcmV0"}, 42]}, sender_id="s"
    )
    assert [key.alg for key in keys] == ["EdDSA"]
    assert keys.skipped == 2
    assert keys.sender_id == "s"


@pytest.mark.parametrize(
    "document", [b"not json", b"[]", b'{"keys": {}}', {"nokeys": []}, "{", b'{"keys": null}']
)
def test_a_document_that_is_not_a_jwks_is_an_error(document: Any) -> None:
    with pytest.raises(KeyFormatError, match="JWKS"):
        KeySet.from_jwks(document)


def test_unknown_kid_raises_unknown_key_error() -> None:
    with pytest.raises(UnknownKeyError) as caught:
        KeySet([public_key_from_jwk(RFC8037_ED25519)]).signing_key("nope")
    assert caught.value.kid == "nope"
    assert caught.value.code == "err.signature.invalid"


def test_encryption_keys_are_not_signing_keys() -> None:
    keys = KeySet.from_jwks({"keys": [{**RFC7638_RSA, "use": "enc", "alg": "RSA-OAEP-256"}]})
    enc = keys.encryption_key()
    assert enc is not None
    assert keys.encryption_key(enc.kid) is enc
    with pytest.raises(UnknownKeyError):
        keys.signing_key(enc.kid)
    assert not enc.verify(b"x" * 256, b"data")


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_private_keys_load_from_their_jwk_and_pem(
    keys_by_alg: dict[str, SigningKey], alg: str
) -> None:
    key = keys_by_alg[alg]
    pem = key.crypto_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    from_jwk = load_signing_key(json.dumps(key.private_jwk()))
    from_pem = load_signing_key(pem.decode())
    assert from_jwk.kid == from_pem.kid == key.kid
    assert from_jwk.alg == from_pem.alg == alg
    signature = from_pem.sign(b"data")
    assert key.public.verify(signature, b"data")
    assert not key.public.verify(signature, b"datA")


def test_a_public_jwk_is_not_a_private_key() -> None:
    with pytest.raises(KeyFormatError, match="private"):
        load_signing_key(
            '{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}'
        )
    with pytest.raises(KeyFormatError):
        load_signing_key("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")


def test_decryption_keys_must_be_rsa(ed_key: SigningKey) -> None:
    with pytest.raises(KeyFormatError, match="RSA"):
        load_decryption_key(json.dumps(ed_key.private_jwk()))


def test_reprs_never_show_key_material(keys_by_alg: dict[str, SigningKey]) -> None:
    for key in keys_by_alg.values():
        private = key.private_jwk()
        text = repr(key) + repr(key.public)
        assert key.kid in text
        assert private["d"] not in text
