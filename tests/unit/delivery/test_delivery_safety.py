"""Callback URL prefixes and the SSRF guard: refused before any connection is made."""

from __future__ import annotations

import socket

import pytest

from dci_bridge.delivery.safety import (
    CallbackRefused,
    address_allowed,
    check_callback_url,
    resolve_checked,
    url_matches_prefix,
)
from dci_bridge.delivery.sender import CallbackSender

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("url", "prefix", "expected"),
    [
        ("https://spp.example.org/cb/on-search", "https://spp.example.org/cb", True),
        ("https://spp.example.org/cb", "https://spp.example.org/cb", True),
        ("https://spp.example.org/cb/", "https://spp.example.org/cb/", True),
        ("https://spp.example.org/cbx", "https://spp.example.org/cb", False),
        ("https://spp.example.org.evil.net/cb", "https://spp.example.org/cb", False),
        ("http://spp.example.org/cb", "https://spp.example.org/cb", False),
        ("https://spp.example.org:8443/cb", "https://spp.example.org/cb", False),
        ("https://spp.example.org:443/cb/x", "https://spp.example.org/cb", True),
        ("https://SPP.example.org/cb/x", "https://spp.example.org/", True),
        ("https://user@spp.example.org/cb", "https://spp.example.org/", False),
        ("ftp://spp.example.org/cb", "ftp://spp.example.org/", False),
        ("https://spp.example.org/cb#x", "https://spp.example.org/", False),
    ],
)
def test_prefix_matching(url, prefix, expected):
    assert url_matches_prefix(url, prefix) is expected


def test_check_callback_url_needs_a_registered_prefix():
    with pytest.raises(CallbackRefused, match="no callback URL prefix"):
        check_callback_url("https://a.org/cb", [])
    with pytest.raises(CallbackRefused, match="not under a registered prefix"):
        check_callback_url("https://a.org/other", ["https://a.org/cb"])
    assert check_callback_url(" https://a.org/cb/1 ", ["https://a.org/cb"]) == "https://a.org/cb/1"


NON_GLOBAL = [
    "127.0.0.1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
    "fe80::1",
    "fc00::1",
    "224.0.0.1",
    "::",
    "::127.0.0.1",
]


@pytest.mark.parametrize("address", NON_GLOBAL)
def test_non_global_addresses_are_refused(address):
    assert not address_allowed(address, allow_private=False)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_global_addresses_are_allowed(address):
    assert address_allowed(address, allow_private=False)


def test_loopback_is_allowed_only_when_the_setting_says_so():
    assert address_allowed("127.0.0.1", allow_private=True)
    assert address_allowed("::1", allow_private=True)
    assert not address_allowed("224.0.0.1", allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/cb",
        "http://10.0.0.1/cb",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/cb",
        "http://[::ffff:127.0.0.1]/cb",
        "http://localhost/cb",  # a name resolving to a non-global address
    ],
)
async def test_resolve_refuses_ssrf_targets(url):
    with pytest.raises(CallbackRefused):
        await resolve_checked(url, allow_private=False)


async def test_sender_refuses_before_connecting(monkeypatch):
    """No socket is opened for a refused callback: connect would raise here."""
    opened = []
    real = socket.socket.connect

    def spy(self, address):
        opened.append(address)
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", spy)
    sender = CallbackSender(allow_private=False, timeout_s=2)
    try:
        for url in [
            "http://127.0.0.1:9/cb",
            "http://10.0.0.1/cb",
            "http://169.254.169.254/latest",
            "http://[::1]:9/cb",
            "http://[::ffff:127.0.0.1]:9/cb",
            "http://localhost:9/cb",
        ]:
            result = await sender.post(url, b"{}")
            assert result.refused, url
            assert result.status is None
    finally:
        await sender.aclose()
    assert opened == []
