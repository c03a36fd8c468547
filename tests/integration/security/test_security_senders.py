"""The sender registry on SQLite and PostgreSQL, and `dci-bridge clients` end to end."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from dci_bridge.cli import main
from dci_bridge.clock import FixedClock
from dci_bridge.crypto.jwk import generate_signing_key
from dci_bridge.crypto.tokens import verify_secret
from dci_bridge.db.engine import migrate
from dci_bridge.registry.senders import (
    DEFAULT_SCOPES,
    SenderRegistry,
    SenderRegistryError,
    allows_callback,
)

START = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def _jwks() -> dict[str, object]:
    key = generate_signing_key("EdDSA", clock=FixedClock(START))
    return {"keys": [dict(key.public.jwk)]}


@pytest.fixture
def registry(database_url):
    migrate(database_url)
    reg = SenderRegistry.from_url(database_url, clock=FixedClock(START))
    yield reg
    reg.close()


def test_register_get_list_disable_rotate(registry):
    jwks = _jwks()
    sender, secret = registry.register(
        "sp.example.org",
        name="Social protection",
        jwks=jwks,
        callback_prefixes=["https://sp.example.org/dci/"],
    )
    assert sender.scopes == DEFAULT_SCOPES
    assert sender.enabled
    assert secret not in repr(sender)
    stored = registry.get("sp.example.org")
    assert stored == sender
    assert stored.created_at == START
    assert json.loads(stored.jwks) == jwks
    assert verify_secret(secret, stored.secret_hash)
    assert registry.authenticate("sp.example.org", secret) == stored
    assert registry.authenticate("sp.example.org", secret + "x") is None
    assert registry.authenticate("nobody", secret) is None

    registry.register("other.example.org", scopes=["registry.search"], jwks_url="https://o/jwks")
    assert [s.sender_id for s in registry.list()] == ["other.example.org", "sp.example.org"]

    new_secret = registry.rotate_secret("sp.example.org")
    assert new_secret != secret
    assert registry.authenticate("sp.example.org", secret) is None
    assert registry.authenticate("sp.example.org", new_secret) is not None

    registry.disable("sp.example.org")
    assert registry.get("sp.example.org").enabled is False
    assert registry.authenticate("sp.example.org", new_secret) is None
    registry.enable("sp.example.org")
    assert registry.get("sp.example.org").enabled is True


def test_update_switches_between_inline_keys_and_url(registry):
    registry.register("sp", jwks=_jwks())
    sender = registry.update("sp", jwks_url="https://sp.example.org/.well-known/jwks.json")
    assert sender.jwks is None
    assert sender.jwks_url
    sender = registry.update("sp", jwks=_jwks(), scopes=["registry.search"])
    assert sender.jwks_url is None
    assert sender.jwks is not None
    assert sender.scopes == ("registry.search",)
    assert registry.get("sp") == sender


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sender_id": ""}, "sender_id"),
        ({"sender_id": "has space"}, "sender_id"),
        ({"sender_id": "x" * 100}, "sender_id"),
        ({"scopes": ["registry.everything"]}, "unknown scope"),
        ({"scopes": []}, "at least one scope"),
        ({"jwks": "{not json"}, "JWKS"),
        ({"jwks": {"keys": []}}, "no supported signing key"),
        ({"jwks_url": "ftp://x/jwks"}, "JWKS URL"),
        ({"callback_prefixes": ["https://user:pw@sp/"]}, "callback prefix"),
        ({"callback_prefixes": ["not a url"]}, "callback prefix"),
        ({"signature_scheme": "hmac"}, "signature scheme"),
    ],
)
def test_bad_registrations_are_refused(registry, kwargs, match):
    args = {"sender_id": "sp.example.org", **kwargs}
    sender_id = args.pop("sender_id")
    with pytest.raises(SenderRegistryError, match=match):
        registry.register(sender_id, **args)
    assert registry.list() == []


def test_a_sender_id_is_registered_once(registry):
    registry.register("sp")
    with pytest.raises(SenderRegistryError, match="already registered"):
        registry.register("sp")


async def _lookup_twice(registry, sender_id):
    return await registry.lookup(sender_id), await registry.lookup(sender_id)


@pytest.mark.anyio
async def test_lookup_caches_and_invalidates(registry):
    assert await registry.lookup("sp") is None  # unknown ids are cached too
    registry.register("sp")  # same process: invalidates
    first = await registry.lookup("sp")
    assert first is not None
    assert first.enabled
    registry.disable("sp")
    second = await registry.lookup("sp")
    assert second is not None
    assert not second.enabled
    assert await registry.lookup("bad id with spaces") is None


def _sender(*prefixes):
    import msgspec

    from dci_bridge.registry.senders import Sender

    return Sender(
        sender_id="sp",
        name="sp",
        scopes=DEFAULT_SCOPES,
        callback_prefixes=prefixes,
        jwks=None,
        jwks_url=None,
        signature_scheme="jws",
        enabled=True,
        created_at=START,
        updated_at=START,
        secret_hash=msgspec.json.encode("x").decode(),
    )


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://sp.example.org/dci/on-search", True),
        ("https://SP.example.org:443/dci/on-search", True),
        ("https://sp.example.org/dci", True),
        ("https://sp.example.org/dci?x=1", True),
        ("https://sp.example.org/dci-evil/on-search", False),
        ("https://sp.example.org.evil.net/dci/on-search", False),
        ("http://sp.example.org/dci/on-search", False),
        ("https://sp.example.org:8443/dci/on-search", False),
        ("https://user@sp.example.org/dci/on-search", False),
        ("https://sp.example.org/dci/../admin", False),
        ("https://sp.example.org/dci/%2F..%2Fadmin", False),
        ("https://sp.example.org/dci/x#frag", False),
        ("https://sp.example.org\\@evil.net/dci/", False),
        ("javascript:alert(1)", False),
        ("", False),
        ("https://sp.example.org/dci/on-search\n", False),
        ("http://127.0.0.1:9000/cb/on-search", True),
        ("http://127.0.0.1:9001/cb/on-search", False),
    ],
)
def test_allows_callback(url, allowed):
    sender = _sender("https://sp.example.org/dci", "http://127.0.0.1:9000/cb/")
    assert allows_callback(sender, url) is allowed


def test_no_prefixes_allow_nothing():
    assert not allows_callback(_sender(), "https://sp.example.org/dci/on-search")


def test_clients_cli(tmp_path, monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("DCI_BRIDGE_"):  # the test runner's own variables are no settings
            monkeypatch.delenv(name)
    monkeypatch.setenv("DCI_BRIDGE_DATA_DIR", str(tmp_path))
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(_jwks()))
    runner = CliRunner()
    added = runner.invoke(
        main,
        [
            "clients",
            "add",
            "sp.example.org",
            "--jwks",
            str(jwks_file),
            "--callback-prefix",
            "https://sp.example.org/dci/",
            "--json",
        ],
    )
    assert added.exit_code == 0, added.output
    secret = json.loads(added.output)["client_secret"]
    assert len(secret) >= 32

    listed = runner.invoke(main, ["clients", "list"])
    assert listed.exit_code == 0
    assert "sp.example.org\tenabled" in listed.output

    shown = runner.invoke(main, ["clients", "show", "sp.example.org"])
    assert shown.exit_code == 0
    view = json.loads(shown.output)
    assert view["callback_prefixes"] == ["https://sp.example.org/dci/"]
    assert "secret" not in shown.output

    rotated = runner.invoke(main, ["clients", "rotate-secret", "sp.example.org"])
    assert rotated.exit_code == 0
    assert "client_secret: " in rotated.output
    assert secret not in rotated.output

    assert runner.invoke(main, ["clients", "disable", "sp.example.org"]).exit_code == 0
    assert "disabled" in runner.invoke(main, ["clients", "list"]).output

    again = runner.invoke(main, ["clients", "add", "sp.example.org"])
    assert again.exit_code == 1
    assert "already registered" in again.output
    missing = runner.invoke(main, ["clients", "show", "nobody"])
    assert missing.exit_code == 1
    assert "no sender nobody" in missing.output
