"""CPU cost of the crypto layer: µs per sign and verify for each algorithm and scheme.

Also compares signing through jwcrypto's JWS objects with calling `cryptography` directly
(what dci_bridge.crypto does, with jwcrypto only parsing JWKs), the canonical JSON paths,
access tokens and JWE. Uses two envelopes: a search request (~0.7 KiB) and a search
response with ten person records (~5 KiB). Best of several rounds of CPU time, one thread.

    python bench/crypto_costs.py [--rounds 3] [--min-time 0.1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
import rfc8785
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from dci_bridge.clock import FixedClock
from dci_bridge.crypto.canonical import canonical_json
from dci_bridge.crypto.envelope import sign_envelope, verify_envelope
from dci_bridge.crypto.jwe import decrypt_message, encrypt_message
from dci_bridge.crypto.jwk import KeySet, SigningKey, generate_decryption_key, generate_signing_key
from dci_bridge.crypto.jws import parse_compact, sign_compact, verify_compact
from dci_bridge.crypto.tokens import AccessTokenVerifier, issue_access_token, verify_access_token

CLOCK = FixedClock(dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC))
SENDER = "spp.example.org"

HEADER = {
    "version": "1.0.0",
    "message_id": "123456789020211216223812",
    "message_ts": "2025-06-01T12:00:00Z",
    "action": "search",
    "sender_id": SENDER,
    "sender_uri": "https://spp.example.org/callback/on-search",
    "receiver_id": "crvs.example.org",
    "total_count": 1,
    "is_msg_encrypted": False,
}
REQUEST = {
    "transaction_id": "txn-1",
    "search_request": [
        {
            "reference_id": "ref-1",
            "timestamp": "2025-06-01T12:00:00Z",
            "search_criteria": {
                "reg_type": "ns:org:RegistryType:Civil",
                "reg_record_type": "ns:org:RegistryRecordType:Person",
                "query_type": "idtype-value",
                "query": {"type": "UIN", "value": "1234567890"},
                "sort": [{"attribute_name": "birth_date", "sort_order": "asc"}],
                "pagination": {"page_size": 10, "page_number": 1},
            },
        }
    ],
}
PERSON = {
    "@type": "CRVS_Person",
    "identifier": [{"identifier_type": "BRN", "identifier_value": "2024123456"}],
    "name": {"given_name": "Amélie", "surname": "Ñandú", "second_name": "Chanda"},
    "sex": "female",
    "birth_date": "2020-01-01",
    "place_of_birth": {"@type": "Place", "name": "Ibombo District Office"},
    "parent1": {"name": {"given_name": "Jo", "surname": "Banda"}, "sex": "female"},
    "meta": {"registration_status": "REGISTERED", "tracking_id": "B7J2K8Q"},
}
RESPONSE = {
    "transaction_id": "txn-1",
    "correlation_id": "corr-1",
    "search_response": [
        {
            "reference_id": "ref-1",
            "timestamp": "2025-06-01T12:00:01Z",
            "status": "succ",
            "data": {"reg_records": [PERSON] * 10},
            "pagination": {"page_size": 10, "page_number": 1, "total_count": 10},
        }
    ],
}


def measure(fn: Callable[[], Any], *, rounds: int, min_time: float) -> float:
    """Best-of-rounds CPU µs per call (process time: other load on the machine does not
    count, only what this process spends)."""
    n = 1
    while True:  # find a batch size that takes min_time
        started = time.process_time()
        for _ in range(n):
            fn()
        elapsed = time.process_time() - started
        if elapsed >= min_time:
            break
        n *= 2
    best = elapsed / n
    for _ in range(rounds - 1):
        started = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - started) / n)
    return best * 1e6


def row(label: str, *values: float | str) -> None:
    cells = "".join(f"{v:>12.1f}" if isinstance(v, float) else f"{v:>12}" for v in values)
    print(f"{label:<38}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-time", type=float, default=0.1)
    args = parser.parse_args()

    def m(fn: Callable[[], Any]) -> float:
        return measure(fn, rounds=args.rounds, min_time=args.min_time)

    keys = {alg: generate_signing_key(alg, clock=CLOCK) for alg in ("EdDSA", "ES256", "RS256")}
    sender_keys = KeySet.from_jwks(
        {"keys": [dict(k.public.jwk) for k in keys.values()]}, sender_id=SENDER
    )
    header_raw = msgspec.json.encode(HEADER)
    envelopes = {"request": msgspec.json.encode(REQUEST), "response": msgspec.json.encode(RESPONSE)}
    print(
        f"envelope sizes: request {len(header_raw) + len(envelopes['request'])} B, "
        f"response {len(header_raw) + len(envelopes['response'])} B\n"
    )

    print("Envelope signatures (µs; raw header/message bytes in, as the API passes them)")
    row("scheme / alg / envelope", "sign", "verify", "total")
    for scheme in ("jws", "jws-detached", "dci-signature"):
        for alg, key in keys.items():
            if scheme == "dci-signature" and alg != "EdDSA":
                continue
            for name, message_raw in envelopes.items():
                signature = sign_envelope(
                    header_raw, message_raw, key, scheme, sender_id=SENDER, clock=CLOCK
                )
                sign_us = m(
                    lambda k=key, s=scheme, mr=message_raw: sign_envelope(
                        header_raw, mr, k, s, sender_id=SENDER, clock=CLOCK
                    )
                )
                verify_us = m(
                    lambda sig=signature, mr=message_raw: verify_envelope(
                        sig, header_raw, mr, sender_keys, clock=CLOCK
                    )
                )
                row(f"{scheme} / {alg} / {name}", sign_us, verify_us, sign_us + verify_us)

    print("\nCompact JWS: jwcrypto objects vs ours (cryptography direct) (µs, request payload)")
    row("alg", "jwcrypto sign", "verify", "ours sign", "verify")
    payload = b'{"header":' + header_raw + b',"message":' + envelopes["request"] + b"}"
    for alg, key in keys.items():
        row(alg, *_jwcrypto_vs_direct(key, payload, m))

    print("\nCanonical JSON, RFC 8785 (µs)")
    row("envelope", "rfc8785", "ours", "msgspec enc")
    for name, message in (("request", REQUEST), ("response", RESPONSE)):
        obj = {"header": HEADER, "message": message}
        row(
            name,
            m(lambda o=obj: rfc8785.dumps(o)),
            m(lambda o=obj: canonical_json(o)),
            m(lambda o=obj: msgspec.json.encode(o)),
        )

    print("\nAccess tokens (µs)")
    key = keys["EdDSA"]
    own = KeySet([key.public])
    token, _ = issue_access_token(
        "client-1", ["registry.search"], key=key, issuer="i", audience="a", clock=CLOCK
    )
    verifier = AccessTokenVerifier(own, issuer="i", audience="a", clock=CLOCK)
    row(
        "issue (EdDSA)",
        m(
            lambda: issue_access_token(
                "client-1", ["registry.search"], key=key, issuer="i", audience="a", clock=CLOCK
            )
        ),
    )
    row(
        "verify (EdDSA)",
        m(
            lambda: verify_access_token(
                token,
                keys=own,
                issuer="i",
                audience="a",
                clock=CLOCK,
                required_scope="registry.search",
            )
        ),
    )
    row(
        "verify, AccessTokenVerifier cache hit",
        m(lambda: verifier.verify(token, "registry.search")),
    )

    print("\nJWE, RSA-OAEP-256 + A256GCM (µs)")
    enc_key = generate_decryption_key(clock=CLOCK)
    row("envelope", "encrypt", "decrypt")
    for name, message_raw in envelopes.items():
        encrypted = encrypt_message(message_raw, enc_key.public)
        row(
            name,
            m(lambda mr=message_raw: encrypt_message(mr, enc_key.public)),
            m(lambda e=encrypted: decrypt_message(e, {enc_key.kid: enc_key})),
        )


def _jwcrypto_vs_direct(
    key: SigningKey, payload: bytes, m: Callable[[Callable[[], Any]], float]
) -> tuple[float, float, float, float]:
    private = jwcrypto_jwk.JWK(**key.private_jwk())
    public = jwcrypto_jwk.JWK(**dict(key.public.jwk))
    protected = json.dumps({"alg": key.alg, "kid": key.kid})

    def jwcrypto_sign() -> str:
        token = jwcrypto_jws.JWS(payload)
        token.add_signature(private, alg=key.alg, protected=protected)
        return str(token.serialize(compact=True))

    compact = jwcrypto_sign()

    def jwcrypto_verify() -> None:
        token = jwcrypto_jws.JWS()
        token.deserialize(compact)
        token.verify(public, alg=key.alg)

    ours = sign_compact(payload, key)
    keyset = KeySet([key.public])
    return (
        m(jwcrypto_sign),
        m(jwcrypto_verify),
        m(lambda: sign_compact(payload, key)),
        m(lambda: verify_compact(parse_compact(ours), keyset)),
    )


if __name__ == "__main__":
    main()
