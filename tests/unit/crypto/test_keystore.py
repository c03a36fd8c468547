"""The bridge's KeyStore: files, persistence, configured keys, rotation with overlap."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from dci_bridge.clock import FixedClock
from dci_bridge.crypto.envelope import sign_envelope, verify_envelope
from dci_bridge.crypto.jwk import KeySet, SigningKey, UnknownKeyError, generate_decryption_key
from dci_bridge.crypto.keys import DEFAULT_OVERLAP_S, KeyStore, KeyStoreError
from tests.unit.crypto.crypto_support import HEADER, MESSAGE

FILES = {
    "signing-current.json",
    "signing-next.json",
    "encryption-current.json",
    "encryption-next.json",
}


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "keys"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_open_creates_private_files(key_dir: Path, clock: FixedClock) -> None:
    store = KeyStore(key_dir, clock=clock)
    assert {p.name for p in key_dir.iterdir()} >= FILES
    assert mode(key_dir) == 0o700
    for name in FILES:
        assert mode(key_dir / name) == 0o600
        record = json.loads((key_dir / name).read_text())
        assert record["created"] == "2025-06-01T12:00:00.000Z"
        assert record["kid"] == record["jwk"]["kid"]
    current = json.loads((key_dir / "signing-current.json").read_text())
    assert current["kid"] == store.current.kid
    assert current["alg"] == "EdDSA"
    assert current["use"] == "sig"


def test_reopening_never_regenerates(key_dir: Path, clock: FixedClock) -> None:
    first = KeyStore(key_dir, clock=clock)
    before = {p.name: p.read_bytes() for p in key_dir.glob("*.json")}
    again = KeyStore(key_dir, clock=clock, algorithm="EdDSA")
    assert {p.name: p.read_bytes() for p in key_dir.glob("*.json")} == before
    assert again.current.kid == first.current.kid
    assert again.next is not None
    assert first.next is not None
    assert again.next.kid == first.next.kid
    assert again.encryption_key.kid == first.encryption_key.kid


def test_public_jwks_lists_current_next_and_encryption_keys_without_secrets(
    key_dir: Path, clock: FixedClock
) -> None:
    store = KeyStore(key_dir, clock=clock)
    jwks = store.public_jwks()
    assert store.next is not None
    assert [(k["kid"], k["use"]) for k in jwks["keys"]] == [
        (store.current.kid, "sig"),
        (store.next.kid, "sig"),
        (store.encryption_key.kid, "enc"),
        (list(store.decryption_keys())[1], "enc"),
    ]
    for key in jwks["keys"]:
        assert {"kty", "kid", "use", "alg"} <= key.keys()
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()
    assert json.loads(store.public_jwks_json()) == jwks
    assert [k["alg"] for k in jwks["keys"]] == ["EdDSA", "EdDSA", "RSA-OAEP-256", "RSA-OAEP-256"]


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_configured_algorithm_is_used_for_generated_keys(
    key_dir: Path, clock: FixedClock, alg: str
) -> None:
    store = KeyStore(key_dir, clock=clock, algorithm=alg)
    assert store.current.alg == alg
    assert store.public_jwks()["keys"][0]["alg"] == alg


def test_unknown_algorithm_is_a_start_error(key_dir: Path) -> None:
    with pytest.raises(KeyStoreError, match="HS256"):
        KeyStore(key_dir, algorithm="HS256")


def test_rotate_promotes_next_and_old_signatures_verify_during_the_overlap(
    key_dir: Path, clock: FixedClock
) -> None:
    store = KeyStore(key_dir, clock=clock)
    old, upcoming = store.current, store.next
    assert upcoming is not None
    signature = sign_envelope(HEADER, MESSAGE, old)

    new = store.rotate()
    assert new.kid == upcoming.kid
    assert store.current.kid == upcoming.kid
    assert store.next is not None
    assert store.next.kid not in (old.kid, upcoming.kid)
    assert [k.kid for k in store.retired] == [old.kid]

    # receivers refetching our JWKS still find the old key
    published = KeySet.from_jwks(store.public_jwks())
    assert verify_envelope(signature, HEADER, MESSAGE, published, clock=clock).key_id == old.kid
    assert store.verification_keys().signing_key(old.kid).kid == old.kid

    clock.advance(DEFAULT_OVERLAP_S - 1)
    assert old.kid in store.verification_keys()
    clock.advance(1)
    assert store.retired == ()
    assert old.kid not in store.verification_keys()
    with pytest.raises(UnknownKeyError):
        verify_envelope(
            signature, HEADER, MESSAGE, KeySet.from_jwks(store.public_jwks()), clock=clock
        )


def test_rotation_survives_reopening(key_dir: Path, clock: FixedClock) -> None:
    store = KeyStore(key_dir, clock=clock)
    old = store.current
    store.rotate()
    reopened = KeyStore(key_dir, clock=clock)
    assert reopened.current.kid == store.current.kid
    assert [k.kid for k in reopened.retired] == [old.kid]
    retired_file = json.loads((key_dir / "signing-retired.json").read_text())
    assert retired_file["keys"][0]["retired"] == "2025-06-01T12:00:00.000Z"
    assert mode(key_dir / "signing-retired.json") == 0o600


def test_rotation_drops_keys_past_the_overlap_from_the_file(
    key_dir: Path, clock: FixedClock
) -> None:
    store = KeyStore(key_dir, clock=clock, overlap_s=100)
    first = store.current
    store.rotate()
    clock.advance(101)
    second = store.current
    store.rotate()
    kids = [k["kid"] for k in json.loads((key_dir / "signing-retired.json").read_text())["keys"]]
    assert kids == [second.kid]
    assert first.kid not in kids


def test_another_process_rotation_is_picked_up_by_refresh(key_dir: Path, clock: FixedClock) -> None:
    worker_a = KeyStore(key_dir, clock=clock)
    worker_b = KeyStore(key_dir, clock=clock)
    assert worker_b.refresh() is False
    worker_a.rotate()
    assert worker_b.refresh() is True
    assert worker_b.current.kid == worker_a.current.kid
    assert worker_b.public_jwks() == worker_a.public_jwks()


def test_a_half_finished_rotation_is_repaired(key_dir: Path, clock: FixedClock) -> None:
    store = KeyStore(key_dir, clock=clock)
    # crash after writing the new current, before writing a fresh next
    (key_dir / "signing-current.json").write_bytes((key_dir / "signing-next.json").read_bytes())
    reopened = KeyStore(key_dir, clock=clock)
    assert store.next is not None
    assert reopened.current.kid == store.next.kid
    assert reopened.next is not None
    assert reopened.next.kid != reopened.current.kid


def test_changing_the_algorithm_replaces_only_the_unused_next_key(
    key_dir: Path, clock: FixedClock
) -> None:
    eddsa = KeyStore(key_dir, clock=clock)
    es256 = KeyStore(key_dir, clock=clock, algorithm="ES256")
    assert es256.current.kid == eddsa.current.kid  # never regenerated
    assert es256.next is not None
    assert es256.next.alg == "ES256"
    assert es256.rotate().alg == "ES256"


def test_loose_permissions_are_tightened(key_dir: Path, clock: FixedClock) -> None:
    KeyStore(key_dir, clock=clock)
    os.chmod(key_dir / "signing-current.json", 0o644)
    os.chmod(key_dir, 0o755)  # noqa: S103  (the loose mode under test)
    KeyStore(key_dir, clock=clock)
    assert mode(key_dir / "signing-current.json") == 0o600
    assert mode(key_dir) == 0o700


@pytest.mark.parametrize(
    "damage",
    [
        lambda rec: "not json",
        lambda rec: json.dumps({**rec, "kid": "someone-else"}),
        lambda rec: json.dumps({**rec, "created": "yesterday"}),
        lambda rec: json.dumps({**rec, "jwk": {"kty": "oct", "k": "c2VjcmV0", "d": "x"}}),
    ],
)
def test_a_damaged_key_file_stops_the_start(key_dir: Path, clock: FixedClock, damage) -> None:
    KeyStore(key_dir, clock=clock)
    path = key_dir / "signing-current.json"
    path.write_text(damage(json.loads(path.read_text())))
    with pytest.raises(KeyStoreError, match=r"signing-current\.json"):
        KeyStore(key_dir, clock=clock)


def test_configured_private_key_replaces_the_directory(
    tmp_path: Path, clock: FixedClock, keys_by_alg: dict[str, SigningKey]
) -> None:
    configured = keys_by_alg["ES256"]
    store = KeyStore(
        tmp_path / "keys", clock=clock, signing_key=json.dumps(configured.private_jwk())
    )
    assert store.current.kid == configured.kid
    assert store.current.alg == "ES256"
    assert store.next is None
    assert not (tmp_path / "keys" / "signing-current.json").exists()
    assert store.public_jwks()["keys"][0]["kid"] == configured.kid
    with pytest.raises(KeyStoreError, match="configuration"):
        store.rotate()


def test_configured_next_and_encryption_keys(
    tmp_path: Path, clock: FixedClock, keys_by_alg: dict[str, SigningKey]
) -> None:
    enc = generate_decryption_key(clock=clock)
    pem = enc.crypto_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    store = KeyStore(
        tmp_path / "keys",
        clock=clock,
        signing_key=json.dumps(keys_by_alg["EdDSA"].private_jwk()),
        next_signing_key=json.dumps(keys_by_alg["RS256"].private_jwk()),
        encryption_key=pem,
    )
    assert store.next is not None
    assert store.next.kid == keys_by_alg["RS256"].kid
    assert store.encryption_key.kid == enc.kid
    assert not (tmp_path / "keys").exists()  # nothing left to keep in the directory


@pytest.mark.parametrize("bad", ["{}", "not a key", '{"kty": "OKP", "crv": "Ed25519", "x": "AA"}'])
def test_an_unusable_configured_key_is_a_start_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(KeyStoreError, match="configured key"):
        KeyStore(tmp_path / "keys", signing_key=bad)


def test_next_without_current_is_a_start_error(
    tmp_path: Path, keys_by_alg: dict[str, SigningKey]
) -> None:
    with pytest.raises(KeyStoreError, match="next"):
        KeyStore(tmp_path / "keys", next_signing_key=json.dumps(keys_by_alg["EdDSA"].private_jwk()))


def test_encryption_rotation_keeps_the_old_key_for_decryption(
    key_dir: Path, clock: FixedClock
) -> None:
    store = KeyStore(key_dir, clock=clock)
    old = store.encryption_key
    store.rotate_encryption()
    assert store.encryption_key.kid != old.kid
    assert old.kid in store.decryption_keys()
    clock.advance(DEFAULT_OVERLAP_S)
    assert old.kid not in store.decryption_keys()


def test_an_unwritable_directory_is_a_start_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(KeyStoreError, match="key directory"):
        KeyStore(blocker / "keys")
