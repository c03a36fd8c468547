"""Callback safety: which URLs we send to and which addresses we connect to.

1. `check_callback_url`: the URL must be absolute http(s), without credentials or fragment,
   and fall under one of the sender's registered prefixes. A prefix matches on scheme, host
   and port exactly and on the path at a segment boundary: `https://a.org/cb` allows
   `https://a.org/cb` and `https://a.org/cb/on-search`, not `https://a.org/cbx` nor
   `https://a.org.evil.net/cb`.
2. `resolve_checked`: DNS is resolved here and every address must be global unicast:
   loopback, private, link-local (cloud metadata), shared, multicast, reserved and
   unspecified addresses are refused, also inside IPv4-mapped and 6to4/Teredo-style IPv6
   forms, unless the operator allows non-global addresses. The sender then connects to the
   address that was checked (no second lookup that could answer differently).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

__all__ = [
    "CallbackRefused",
    "ResolvedAddress",
    "address_allowed",
    "check_callback_url",
    "parse_prefixes",
    "resolve_checked",
    "url_matches_prefix",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_DEFAULT_PORTS = {"http": 80, "https": 443}


class CallbackRefused(Exception):  # a refusal, not a program error
    """We will not send to this URL or address; the message says why (no personal data).

    `permanent` is False when trying again later may help (the name did not resolve)."""

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class ResolvedAddress:
    host: str
    port: int
    address: str
    family: int


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises for a bad port
    except ValueError:
        raise CallbackRefused("the callback URL is not a valid URL") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise CallbackRefused("the callback URL must be http or https")
    if not parts.hostname:
        raise CallbackRefused("the callback URL has no host")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("the callback URL must not carry credentials")
    if parts.fragment:
        raise CallbackRefused("the callback URL must not have a fragment")
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port or _DEFAULT_PORTS[parts.scheme]


def url_matches_prefix(url: str, prefix: str) -> bool:
    """True when `url` falls under `prefix` (scheme, host, port equal; path under it)."""
    try:
        got, want = _split(url), _split(prefix)
    except CallbackRefused:
        return False
    if got.scheme != want.scheme or _port(got) != _port(want):
        return False
    if (got.hostname or "").rstrip(".").lower() != (want.hostname or "").rstrip(".").lower():
        return False
    if want.query and (got.path != want.path or got.query != want.query):
        return False
    base = want.path or "/"
    path = got.path or "/"
    if base.endswith("/"):
        return path.startswith(base)
    return path == base or path.startswith(base + "/")


def parse_prefixes(text: str | Iterable[str]) -> tuple[str, ...]:
    """Prefixes from a comma-separated setting or a list; blanks dropped."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(item.strip() for item in items if item.strip())


def check_callback_url(url: str, prefixes: Iterable[str]) -> str:
    """The URL, stripped, when it is well formed and under one of `prefixes`; else
    `CallbackRefused`."""
    url = url.strip()
    _split(url)
    allowed = list(prefixes)
    if not allowed:
        raise CallbackRefused("no callback URL prefix is registered for this sender")
    if not any(url_matches_prefix(url, prefix) for prefix in allowed):
        raise CallbackRefused("the callback URL is not under a registered prefix")
    return url


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    packed = address.packed
    if packed[:12] == bytes(12):  # IPv4-compatible ::a.b.c.d (deprecated)
        return ipaddress.IPv4Address(packed[12:])
    if packed[:12] == bytes.fromhex("0064ff9b0000000000000000"):  # NAT64 64:ff9b::/96
        return ipaddress.IPv4Address(packed[12:])
    return None


def address_allowed(address: str | IPAddress, *, allow_private: bool) -> bool:
    """Whether we may connect to `address`: global unicast, or anything when allowed."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return False
    if allow_private:
        return not ip.is_multicast and not ip.is_unspecified
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and not address_allowed(inner, allow_private=False):
            return False
        if ip.scope_id:
            return False
    return bool(ip.is_global) and not ip.is_multicast and not ip.is_reserved


async def resolve_checked(
    url: str, *, allow_private: bool, timeout_s: float = 5.0
) -> list[ResolvedAddress]:
    """Resolve the URL's host and return the addresses we may connect to (all of them must
    pass: a name that also resolves to a private address is refused, so a resolver cannot
    pick the private one later). Raises `CallbackRefused`."""
    parts = _split(url)
    host = (parts.hostname or "").rstrip(".")
    port = _port(parts)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if not address_allowed(literal, allow_private=allow_private):
            raise CallbackRefused("the callback address is not a public address")
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return [ResolvedAddress(host, port, str(literal), family)]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
            timeout_s,
        )
    except (OSError, TimeoutError, UnicodeError):
        raise CallbackRefused("the callback host does not resolve", permanent=False) from None
    found: list[ResolvedAddress] = []
    for family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        if not address_allowed(address, allow_private=allow_private):
            raise CallbackRefused("the callback host resolves to a non-public address")
        resolved = ResolvedAddress(host, port, address, int(family))
        if resolved not in found:
            found.append(resolved)
    if not found:
        raise CallbackRefused("the callback host does not resolve", permanent=False)
    return found
