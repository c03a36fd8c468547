"""Message security use cases: token issuing, request admission and response sealing.

`SecurityService` holds what every registry endpoint shares: the bridge's keys, the sender
registry, senders' JWKS, the access-token verifier, the replay guard and the envelope
signer. It is plain async Python (no HTTP); `api/security.py` is the thin Litestar side.

Admission of a request (`admit`), in this order, each step failing with a DCI error:

1. bearer token: present, signed by us, not expired, our issuer and audience (401
   `err.request.unauthorized`), with the endpoint's scope (403 `err.request.forbidden`);
2. the envelope, decoded with header and message kept as raw bytes (400 schema errors);
3. the sender: `header.sender_id` must be the token's client (403 `err.sender_id.invalid`),
   registered and enabled (403 `err.sender_id.invalid`), and still hold the scope;
4. the signature, over the raw header and message bytes, against the sender's keys (its
   inline JWKS or JWKS URL, cached; refetched once on an unknown kid): missing is 401
   `err.signature.missing`, anything else wrong 401 `err.signature.invalid`. The key's
   pinned algorithm decides, never the message; `alg: none` is refused;
5. replay guard: `message_ts` within the window (400, `rjct.message_ts.invalid`) and the
   (sender_id, message_id) pair new (409, `rjct.message_id.duplicate`);
6. an encrypted message (`is_msg_encrypted`) is decrypted with our keys (400
   `err.encryption.invalid`); the response will then be encrypted to the sender's key.

`seal` builds the response body: encrypted to the sender when its request was, then signed
with the bridge's current key in the sender's registered scheme.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs

import httpx
import msgspec
import sqlalchemy as sa

from dci_bridge.clock import Clock
from dci_bridge.crypto import (
    AccessTokenVerifier,
    EnvelopeSigner,
    JwksCache,
    KeySet,
    KeyStore,
    TokenClaims,
    VerifiedSignature,
    bearer_token,
    decrypt_message,
    encrypt_message,
    grant_scopes,
    issue_access_token,
    peek_signature,
    verify_envelope,
)
from dci_bridge.errors import (
    EncryptionError,
    ForbiddenError,
    SchemaError,
    SenderError,
)
from dci_bridge.protocol.codec import decode_raw_envelope, decode_request_header, encode
from dci_bridge.protocol.codec import error_message as schema_message
from dci_bridge.protocol.codec import error_path as schema_path
from dci_bridge.protocol.header import MsgHeader
from dci_bridge.registry.replay import ReplayGuard
from dci_bridge.registry.senders import Sender, SenderRegistry
from dci_bridge.settings import Settings

__all__ = [
    "Admission",
    "OAuthError",
    "SecurityService",
    "TokenGrant",
    "decode_envelope",
]

log = logging.getLogger(__name__)

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
MAX_FORM_BYTES: Final = 8192


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error of the token endpoint (not a DCI error)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> bytes:
        return encode({"error": self.error, "error_description": self.description})


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A successful token answer."""

    access_token: str
    expires_in: int
    scope: str

    def body(self) -> bytes:
        # The standard types expires_in as a string ("36000"); RFC 6749 clients read both.
        return encode(
            {
                "access_token": self.access_token,
                "token_type": "bearer",
                "expires_in": str(self.expires_in),
                "scope": self.scope,
            }
        )


class Admission(msgspec.Struct, frozen=True):
    """An admitted request: who sent it and the message to act on."""

    header: MsgHeader
    message: bytes
    """The message JSON (decrypted when it was encrypted), for `codec.decode_message`."""
    sender: Sender | None
    """None only when security is disabled."""
    claims: TokenClaims | None
    signature: VerifiedSignature | None
    encrypted: bool
    """The request was encrypted: `seal` encrypts the response to the sender."""
    sender_keys: KeySet | None = None


def decode_envelope(body: bytes) -> tuple[Any, MsgHeader]:
    """The raw envelope (header and message bytes as sent) and its decoded header; raises
    `SchemaError` with the path of the first problem."""
    try:
        raw = decode_raw_envelope(body)
        header = decode_request_header(raw.header)
    except msgspec.ValidationError as exc:
        raise SchemaError(schema_message(exc), path=schema_path(exc)) from None
    except msgspec.DecodeError:
        raise SchemaError("body is not valid JSON") from None
    except UnicodeDecodeError:
        raise SchemaError("body is not valid UTF-8 JSON") from None
    if raw.message is msgspec.UNSET:
        raise SchemaError("Object missing required field `message`", path="$")
    return raw, header


class SecurityService:
    """Everything the registry endpoints share for tokens, signatures and replays."""

    def __init__(
        self,
        settings: Settings,
        *,
        keys: KeyStore,
        senders: SenderRegistry,
        jwks: JwksCache,
        replay: ReplayGuard,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.enabled = settings.security.enabled
        self.keys = keys
        self.senders = senders
        self.jwks = jwks
        self.replay = replay
        self.clock = clock
        self.issuer = settings.token_issuer
        self.audience = settings.token_audience
        self.tokens = AccessTokenVerifier(
            keys, issuer=self.issuer, audience=self.audience, clock=clock
        )
        self.signer = EnvelopeSigner(keys, sender_id=settings.registry.registry_id, clock=clock)
        self._refresh_every = settings.security.keys_refresh_s
        self._refresh_at = time.monotonic() + self._refresh_every

    @classmethod
    def create(
        cls, settings: Settings, engine: sa.Engine, *, clock: Clock, http: httpx.AsyncClient
    ) -> SecurityService:
        """Build the service on a database engine and an HTTP client (for senders' JWKS)."""
        sec = settings.security
        keys = KeyStore(
            settings.keys_dir,
            algorithm=sec.algorithm,
            clock=clock,
            overlap_s=sec.key_overlap_s,
            signing_key=sec.signing_key or None,
            next_signing_key=sec.next_signing_key or None,
            encryption_key=sec.encryption_key or None,
        )
        jwks = JwksCache(
            http,
            clock=clock,
            ttl_s=sec.jwks_cache_ttl_s,
            timeout_s=sec.jwks_fetch_timeout_s,
            max_bytes=sec.jwks_max_bytes,
            refetch_cooldown_s=sec.jwks_refetch_cooldown_s,
        )
        return cls(
            settings,
            keys=keys,
            senders=SenderRegistry(engine, clock=clock, cache_ttl_s=sec.sender_cache_ttl_s),
            jwks=jwks,
            replay=ReplayGuard(engine, clock=clock, window_s=sec.timestamp_window_s),
            clock=clock,
        )

    # --- keys ---------------------------------------------------------------------------------

    def refresh_keys(self) -> None:
        """Pick up a rotation done by another process (a few `stat` calls, rate limited)."""
        now = time.monotonic()
        if now >= self._refresh_at:
            self._refresh_at = now + self._refresh_every
            self.keys.refresh()

    def public_jwks_json(self) -> bytes:
        self.refresh_keys()
        return self.keys.public_jwks_json()

    async def sender_keys(self, sender: Sender, kid: str | None = None) -> KeySet:
        """A sender's public keys (inline or fetched; cached); raises `SignatureError`."""
        return await self.jwks.keys(
            sender.sender_id, url=sender.jwks_url, inline=sender.jwks, kid=kid
        )

    # --- OAuth2 client credentials ------------------------------------------------------------

    async def issue_token(
        self, body: bytes, content_type: str | None, basic: tuple[str, str] | None = None
    ) -> TokenGrant:
        """`POST /oauth2/client/token`: form-encoded client credentials (RFC 6749 4.4), the
        client authenticated in the body or with HTTP Basic. Raises `OAuthError`."""
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media != FORM_CONTENT_TYPE:
            raise OAuthError("invalid_request", f"the body must be {FORM_CONTENT_TYPE}")
        if len(body) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "the request body is too large")
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            raise OAuthError("invalid_request", "the body is not a valid form") from None
        repeated = sorted(name for name, values in form.items() if len(values) > 1)
        if repeated:
            raise OAuthError("invalid_request", f"parameter {repeated[0]} is repeated")
        params = {name: values[0] for name, values in form.items()}
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is missing")
        if grant_type != "client_credentials":
            raise OAuthError("unsupported_grant_type", "only client_credentials is supported")
        client_id, secret = params.get("client_id"), params.get("client_secret")
        if basic is not None:
            if secret is not None:
                raise OAuthError("invalid_request", "use one client authentication method")
            if client_id is not None and client_id != basic[0]:
                raise OAuthError("invalid_request", "client_id differs from the credentials")
            client_id, secret = basic
        if not client_id or not secret:
            raise OAuthError("invalid_client", "client authentication failed", 401)
        sender = await self.senders.aauthenticate(client_id, secret)
        if sender is None:
            log.info("token refused: client authentication failed")
            raise OAuthError("invalid_client", "client authentication failed", 401)
        try:
            scopes = grant_scopes(params.get("scope"), sender.scopes)
        except ForbiddenError as exc:
            raise OAuthError("invalid_scope", exc.message) from None
        self.refresh_keys()
        token, ttl = issue_access_token(
            sender.sender_id,
            scopes,
            key=self.keys.signing_key(),
            issuer=self.issuer,
            audience=self.audience,
            ttl_s=self.settings.security.token_ttl_s,
            clock=self.clock,
        )
        log.info("token issued", extra={"client_id": sender.sender_id})
        return TokenGrant(token, ttl, " ".join(scopes))

    # --- admission ----------------------------------------------------------------------------

    async def admit(
        self,
        authorization: str | None,
        body: bytes,
        *,
        scope: str,
    ) -> Admission:
        """Check a registry request end to end (see the module docstring); raises `DciError`."""
        claims = None
        if self.enabled:
            self.refresh_keys()
            claims = self.tokens.verify(bearer_token(authorization), scope)
        raw, header = decode_envelope(body)
        if not self.enabled:
            if header.is_msg_encrypted:  # no sender keys to encrypt the answer to
                raise EncryptionError(
                    "encrypted messages need message security (DCI_BRIDGE_SECURITY__ENABLED)",
                    path="$.header.is_msg_encrypted",
                )
            return Admission(header, bytes(raw.message), None, None, None, False)
        assert claims is not None
        if header.sender_id != claims.client_id:
            raise SenderError(
                "sender_id is not the client the access token was issued to",
                path="$.header.sender_id",
            )
        sender = await self.senders.lookup(header.sender_id)
        if sender is None or not sender.enabled:
            raise SenderError(
                "sender_id is not a registered, enabled client", path="$.header.sender_id"
            )
        if not sender.has_scope(scope):
            raise ForbiddenError(f"this client no longer has the {scope} scope")
        kid, parsed = peek_signature(raw.signature)
        keys = await self.sender_keys(sender, kid)
        verified = verify_envelope(
            raw.signature, raw.header, raw.message, keys, clock=self.clock, parsed=parsed
        )
        await self.replay.accept(sender.sender_id, header.message_id, header.message_ts)
        message = bytes(raw.message)
        if header.is_msg_encrypted:
            if keys.encryption_key() is None:
                raise EncryptionError(
                    "the sender's registered keys have no encryption key (use: enc) for the "
                    "encrypted response"
                )
            message = self._decrypt(raw.message)
        log.debug("admitted", extra={"message_id": header.message_id})
        return Admission(header, message, sender, claims, verified, header.is_msg_encrypted, keys)

    def _decrypt(self, raw_message: Any) -> bytes:
        try:
            return decrypt_message(
                raw_message,
                self.keys,
                max_ciphertext_bytes=self.settings.security.max_encrypted_bytes,
            )
        except EncryptionError:
            raise
        except (ValueError, TypeError, msgspec.DecodeError):
            raise EncryptionError("the message is not an EncryptedMessage") from None

    # --- responses ----------------------------------------------------------------------------

    def seal(self, admission: Admission | None, header: Any, message: Any) -> bytes:
        """The response body `{signature, header, message}`: the message encrypted to the
        sender when its request was encrypted (set `header.is_msg_encrypted` yourself), the
        whole signed with our current key in the sender's scheme. Unsigned when security is
        disabled."""
        header_json = encode(header)
        if message is None or message is msgspec.UNSET:  # e.g. a txn status without one
            parts = b'"header":' + header_json + b"}"
            if not self.enabled or admission is None or admission.sender is None:
                return b"{" + parts
            signature = self.signer.sign(
                header_json,
                scheme=admission.sender.signature_scheme,  # type: ignore[arg-type]
            )
            return b'{"signature":' + encode(signature) + b"," + parts
        message_json = encode(message)
        if admission is not None and admission.encrypted and admission.sender_keys is not None:
            recipient = admission.sender_keys.encryption_key()
            if recipient is None:  # checked at admission; keys changed meanwhile
                raise EncryptionError("the sender has no encryption key")
            message_json = encode(encrypt_message(message_json, recipient))
        parts = b'"header":' + header_json + b',"message":' + message_json + b"}"
        if not self.enabled or admission is None or admission.sender is None:
            return b"{" + parts
        signature = self.signer.sign(
            header_json,
            message_json,
            scheme=admission.sender.signature_scheme,  # type: ignore[arg-type]
        )
        return b'{"signature":' + encode(signature) + b"," + parts
