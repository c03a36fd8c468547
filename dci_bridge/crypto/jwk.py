"""Key objects: JWKs parsed once into ready-to-use `cryptography` keys, with pinned algorithms.

jwcrypto parses JWKs, PEMs and computes RFC 7638 thumbprints; the signing and verifying
itself calls `cryptography` directly (bench/crypto_costs.py: about 3x faster than jwcrypto's
JWS objects for Ed25519). Every key carries exactly one algorithm, fixed when the key is
parsed (from its `alg`, or from its type when it has none); a signature's header can only
name that algorithm, never choose another.

Supported: signing `EdDSA` (Ed25519), `ES256` (P-256), `RS256` (RSA >= 2048 bits);
encryption (key transport) `RSA-OAEP-256` and `RSA-OAEP` with RSA >= 2048 bits.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, Literal, cast

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto.common import JWException
from nacl import bindings as sodium
from nacl.exceptions import BadSignatureError

from dci_bridge.clock import Clock, SystemClock
from dci_bridge.crypto.canonical import b64url_encode
from dci_bridge.errors import SignatureError

__all__ = [
    "ENCRYPTION_ALGORITHMS",
    "SIGNING_ALGORITHMS",
    "DecryptionKey",
    "KeyFormatError",
    "KeySet",
    "PublicKey",
    "SigningAlgorithm",
    "SigningKey",
    "UnknownKeyError",
    "generate_decryption_key",
    "generate_signing_key",
    "load_decryption_key",
    "load_signing_key",
    "public_key_from_jwk",
]

SigningAlgorithm = Literal["EdDSA", "ES256", "RS256"]
SIGNING_ALGORITHMS: Final[tuple[str, ...]] = ("EdDSA", "ES256", "RS256")
ENCRYPTION_ALGORITHMS: Final[tuple[str, ...]] = ("RSA-OAEP-256", "RSA-OAEP")
DEFAULT_ENCRYPTION_ALGORITHM: Final = "RSA-OAEP-256"
MIN_RSA_BITS: Final = 2048
RSA_GENERATED_BITS: Final = 2048

# JWS `alg` header values each pinned algorithm answers to. `Ed25519` is the fully specified
# name of RFC 9864 for the same signature.
JWS_ALG_NAMES: Final[Mapping[str, frozenset[str]]] = {
    "EdDSA": frozenset({"EdDSA", "Ed25519"}),
    "ES256": frozenset({"ES256"}),
    "RS256": frozenset({"RS256"}),
}
# JWK `alg` spellings seen in the wild for supported algorithms. opencrvs/dci-crvs-api
# publishes its RS256 key with `alg: "RSA-256"`.
_JWK_ALG_ALIASES: Final[Mapping[str, str]] = {"RSA-256": "RS256", "Ed25519": "EdDSA"}
_KEY_MATERIAL: Final = ("kty", "crv", "x", "y", "n", "e", "d", "p", "q", "dp", "dq", "qi")
_ECDSA_SHA256: Final = ec.ECDSA(hashes.SHA256())
_SHA256: Final = hashes.SHA256()
_PKCS1V15: Final = padding.PKCS1v15()

Use = Literal["sig", "enc"]
AnyPublic = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
AnyPrivate = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class KeyFormatError(ValueError):
    """Key material that is not a usable key (bad JWK/PEM, unsupported type, weak key)."""


class UnknownKeyError(SignatureError):
    """The signature names a kid the sender's keys do not have (refetch their JWKS once)."""

    def __init__(self, kid: str) -> None:
        super().__init__("signature names an unknown key id")
        self.kid = kid


class PublicKey:
    """A public key with its kid, use and pinned algorithm; `verify` is the hot path."""

    __slots__ = ("_verify", "alg", "crypto_key", "jwk", "kid", "thumbprint", "use")

    def __init__(
        self, crypto_key: AnyPublic, *, alg: str, use: Use, kid: str | None = None
    ) -> None:
        self.crypto_key = crypto_key
        self.alg = alg
        self.use = use
        self.thumbprint = _thumbprint(crypto_key)
        self.kid = kid or self.thumbprint
        material = _public_jwk_members(crypto_key)
        self.jwk: Mapping[str, str] = {**material, "kid": self.kid, "use": use, "alg": alg}
        self._verify = _verifier(crypto_key, alg) if use == "sig" else _never

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether `signature` is this key's signature of `data` under the pinned algorithm."""
        return self._verify(signature, data)

    def __repr__(self) -> str:
        return f"PublicKey(kid={self.kid!r}, alg={self.alg!r}, use={self.use!r})"


class SigningKey:
    """A private signing key (one of ours); `sign` returns JWS-format signature bytes."""

    __slots__ = ("_sign", "alg", "created", "crypto_key", "jws_header_b64", "kid", "public")

    def __init__(self, crypto_key: AnyPrivate, *, alg: str, created: dt.datetime) -> None:
        self.crypto_key = crypto_key
        self.alg = alg
        self.created = created
        self.public = PublicKey(crypto_key.public_key(), alg=alg, use="sig")
        self.kid = self.public.kid
        header = msgspec.json.encode({"alg": alg, "kid": self.kid})
        self.jws_header_b64 = b64url_encode(header)  # built once: every JWS reuses it
        self._sign = _signer(crypto_key, alg)

    def sign(self, data: bytes) -> bytes:
        return self._sign(data)

    def private_jwk(self) -> dict[str, Any]:
        """The private JWK (for the key store's files), with kid, use and alg."""
        return {**_private_jwk_members(self.crypto_key), **self.public.jwk}

    def __repr__(self) -> str:  # never the key material
        return f"SigningKey(kid={self.kid!r}, alg={self.alg!r})"


class DecryptionKey:
    """A private RSA key for JWE key transport (one of ours)."""

    __slots__ = ("alg", "created", "crypto_key", "kid", "public")

    def __init__(self, crypto_key: rsa.RSAPrivateKey, *, alg: str, created: dt.datetime) -> None:
        self.crypto_key = crypto_key
        self.alg = alg
        self.created = created
        self.public = PublicKey(crypto_key.public_key(), alg=alg, use="enc")
        self.kid = self.public.kid

    def private_jwk(self) -> dict[str, Any]:
        return {**_private_jwk_members(self.crypto_key), **self.public.jwk}

    def __repr__(self) -> str:
        return f"DecryptionKey(kid={self.kid!r}, alg={self.alg!r})"


class KeySet:
    """Public keys by kid: a sender's JWKS, or our own keys for checking our tokens.

    A key is found by its declared `kid` and by its RFC 7638 thumbprint. Keys of types or
    algorithms we do not support are skipped when built from a JWKS (counted in `skipped`).
    """

    __slots__ = ("_enc", "_sig", "keys", "sender_id", "skipped")

    def __init__(
        self, keys: Iterable[PublicKey] = (), *, sender_id: str | None = None, skipped: int = 0
    ) -> None:
        self.keys: tuple[PublicKey, ...] = tuple(keys)
        self.sender_id = sender_id
        self.skipped = skipped
        self._sig: dict[str, PublicKey] = {}
        self._enc: dict[str, PublicKey] = {}
        for key in self.keys:
            index = self._sig if key.use == "sig" else self._enc
            index.setdefault(key.kid, key)
            index.setdefault(key.thumbprint, key)

    @classmethod
    def from_jwks(
        cls, jwks: Mapping[str, Any] | bytes | str, *, sender_id: str | None = None
    ) -> KeySet:
        """Parse a JWKS document; raises `KeyFormatError` when it is not one."""
        if isinstance(jwks, bytes | str):
            try:
                jwks = cast(Mapping[str, Any], msgspec.json.decode(jwks))
            except (msgspec.DecodeError, ValueError):
                raise KeyFormatError("JWKS is not valid JSON") from None
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
            raise KeyFormatError("JWKS is not an object with a `keys` array")
        parsed: list[PublicKey] = []
        skipped = 0
        for entry in jwks["keys"]:
            try:
                parsed.append(public_key_from_jwk(entry))
            except KeyFormatError:
                skipped += 1
        return cls(parsed, sender_id=sender_id, skipped=skipped)

    def signing_key(self, kid: str) -> PublicKey:
        """The `use: sig` key with this kid; raises `UnknownKeyError`."""
        key = self._sig.get(kid)
        if key is None:
            raise UnknownKeyError(kid)
        return key

    def encryption_key(self, kid: str | None = None) -> PublicKey | None:
        """The `use: enc` key with this kid, or the first one when kid is None."""
        if kid is not None:
            return self._enc.get(kid)
        return next((key for key in self.keys if key.use == "enc"), None)

    def __contains__(self, kid: object) -> bool:
        return kid in self._sig or kid in self._enc

    def __iter__(self) -> Iterator[PublicKey]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"KeySet(sender_id={self.sender_id!r}, kids={[k.kid for k in self.keys]!r})"


def public_key_from_jwk(jwk: Any) -> PublicKey:
    """Parse one public JWK (private members are ignored) and pin its algorithm."""
    if not isinstance(jwk, Mapping):
        raise KeyFormatError("JWK is not an object")
    declared_use = jwk.get("use")
    declared_alg = jwk.get("alg")
    kid = jwk.get("kid")
    if declared_use not in (None, "sig", "enc"):
        raise KeyFormatError("JWK `use` must be sig or enc")
    if not isinstance(declared_alg, str | None) or not isinstance(kid, str | None):
        raise KeyFormatError("JWK `alg` and `kid` must be strings")
    key = cast(AnyPublic, _parse_material(jwk, private=False))
    use: Use
    if declared_use is None:
        use = "enc" if declared_alg in ENCRYPTION_ALGORITHMS else "sig"
    else:
        use = declared_use
    alg = _pin_algorithm(key, declared_alg, use)
    return PublicKey(key, alg=alg, use=use, kid=kid or None)


def load_signing_key(text: str | bytes, *, created: dt.datetime | None = None) -> SigningKey:
    """A signing key from a private JWK (JSON) or a PEM; the algorithm follows the key type."""
    key = _load_private(text)
    if not isinstance(
        key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):
        raise KeyFormatError("unsupported signing key type")
    alg = _pin_algorithm(key.public_key(), _declared_alg(text), "sig")
    return SigningKey(key, alg=alg, created=created or SystemClock().now())


def load_decryption_key(text: str | bytes, *, created: dt.datetime | None = None) -> DecryptionKey:
    """An RSA decryption key from a private JWK (JSON) or a PEM."""
    key = _load_private(text)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError("decryption keys must be RSA keys")
    alg = _pin_algorithm(key.public_key(), _declared_alg(text), "enc")
    return DecryptionKey(key, alg=alg, created=created or SystemClock().now())


def generate_signing_key(alg: str, *, clock: Clock) -> SigningKey:
    key: AnyPrivate
    if alg == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
    elif alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_GENERATED_BITS)
    else:
        raise KeyFormatError(f"unsupported signing algorithm {alg!r}")
    return SigningKey(key, alg=alg, created=clock.now())


def generate_decryption_key(
    alg: str = DEFAULT_ENCRYPTION_ALGORITHM, *, clock: Clock
) -> DecryptionKey:
    if alg not in ENCRYPTION_ALGORITHMS:
        raise KeyFormatError(f"unsupported encryption algorithm {alg!r}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_GENERATED_BITS)
    return DecryptionKey(key, alg=alg, created=clock.now())


def _pin_algorithm(key: AnyPublic, declared: str | None, use: Use) -> str:
    """The one algorithm this key is used with; the declared `alg` must fit the key type."""
    if use == "enc":
        if not isinstance(key, rsa.RSAPublicKey):
            raise KeyFormatError("only RSA encryption keys are supported")
        _check_rsa_size(key)
        alg = declared or DEFAULT_ENCRYPTION_ALGORITHM
        if alg not in ENCRYPTION_ALGORITHMS:
            raise KeyFormatError(f"unsupported encryption algorithm {alg!r}")
        return alg
    if isinstance(key, ed25519.Ed25519PublicKey):
        natural = "EdDSA"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyFormatError("only the P-256 curve is supported for EC keys")
        natural = "ES256"
    elif isinstance(key, rsa.RSAPublicKey):
        _check_rsa_size(key)
        natural = "RS256"
    else:
        raise KeyFormatError("unsupported key type")
    if declared is not None and _JWK_ALG_ALIASES.get(declared, declared) != natural:
        raise KeyFormatError(f"algorithm {declared!r} does not fit the key type")
    return natural


def _check_rsa_size(key: rsa.RSAPublicKey) -> None:
    if key.key_size < MIN_RSA_BITS:
        raise KeyFormatError(f"RSA keys must have at least {MIN_RSA_BITS} bits")


def _parse_material(jwk: Mapping[str, Any], *, private: bool) -> Any:
    members = {name: jwk[name] for name in _KEY_MATERIAL if name in jwk}
    if not private:
        for name in ("d", "p", "q", "dp", "dq", "qi"):
            members.pop(name, None)
    if not all(isinstance(value, str) for value in members.values()):
        raise KeyFormatError("JWK members must be strings")
    if members.get("kty") == "OKP" and members.get("crv") != "Ed25519":
        raise KeyFormatError("only Ed25519 OKP keys are supported")
    try:
        parsed = jwcrypto_jwk.JWK(**members)
        return parsed.get_op_key("sign" if private else "verify")
    except (JWException, ValueError, TypeError, KeyError) as exc:
        raise KeyFormatError(f"invalid JWK: {type(exc).__name__}") from None


def _load_private(text: str | bytes) -> Any:
    data = text.encode() if isinstance(text, str) else text
    stripped = data.strip()
    if stripped.startswith(b"{"):
        try:
            jwk = json.loads(stripped)
        except ValueError:
            raise KeyFormatError("private key is not valid JSON") from None
        if not isinstance(jwk, dict) or "d" not in jwk:
            raise KeyFormatError("JWK has no private part")
        return _parse_material(jwk, private=True)
    try:
        return jwcrypto_jwk.JWK.from_pem(stripped).get_op_key("sign")
    except (JWException, ValueError, TypeError) as exc:
        raise KeyFormatError(
            f"private key is neither a JWK nor a PEM: {type(exc).__name__}"
        ) from None


def _declared_alg(text: str | bytes) -> str | None:
    data = text.encode() if isinstance(text, str) else text
    if not data.strip().startswith(b"{"):
        return None
    alg = json.loads(data).get("alg")
    return alg if isinstance(alg, str) else None


def _thumbprint(key: AnyPublic) -> str:
    return cast(str, jwcrypto_jwk.JWK.from_pyca(key).thumbprint())


def _public_jwk_members(key: AnyPublic) -> dict[str, str]:
    return cast(dict[str, str], jwcrypto_jwk.JWK.from_pyca(key).export_public(as_dict=True))


def _private_jwk_members(key: AnyPrivate) -> dict[str, str]:
    return cast(dict[str, str], jwcrypto_jwk.JWK.from_pyca(key).export_private(as_dict=True))


def _never(signature: bytes, data: bytes) -> bool:
    return False


def _verifier(key: AnyPublic, alg: str) -> Callable[[bytes, bytes], bool]:
    if isinstance(key, ed25519.Ed25519PublicKey):
        # Ed25519 through libsodium (PyNaCl): 64 us a check here, against 120 us through
        # OpenSSL (bench/crypto_costs.py); it also refuses non-canonical and small-order
        # encodings that OpenSSL lets through.
        raw_key = key.public_bytes_raw()

        def verify_ed25519(signature: bytes, data: bytes) -> bool:
            if len(signature) != 64:
                return False
            try:
                sodium.crypto_sign_open(signature + data, raw_key)
            except BadSignatureError:
                return False
            return True

        return verify_ed25519
    if isinstance(key, ec.EllipticCurvePublicKey):
        ec_key = key

        def verify_es256(signature: bytes, data: bytes) -> bool:
            if len(signature) != 64:
                return False
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            if r == 0 or s == 0:
                return False
            try:
                ec_key.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
            except InvalidSignature:
                return False
            return True

        return verify_es256
    rsa_key = key
    size = (key.key_size + 7) // 8

    def verify_rs256(signature: bytes, data: bytes) -> bool:
        if len(signature) != size:
            return False
        try:
            rsa_key.verify(signature, data, _PKCS1V15, _SHA256)
        except InvalidSignature:
            return False
        return True

    return verify_rs256


def _signer(key: AnyPrivate, alg: str) -> Callable[[bytes], bytes]:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        # libsodium, as for checks (29 us against 40 us); Ed25519 signatures are
        # deterministic, so the bytes are OpenSSL's
        _, secret = sodium.crypto_sign_seed_keypair(key.private_bytes_raw())

        def sign_ed25519(data: bytes) -> bytes:
            return sodium.crypto_sign(data, secret)[:64]  # signature, then the message

        return sign_ed25519
    if isinstance(key, ec.EllipticCurvePrivateKey):
        ec_key = key

        def sign_es256(data: bytes) -> bytes:
            r, s = decode_dss_signature(ec_key.sign(data, _ECDSA_SHA256))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        return sign_es256
    rsa_key = key

    def sign_rs256(data: bytes) -> bytes:
        return rsa_key.sign(data, _PKCS1V15, _SHA256)

    return sign_rs256
