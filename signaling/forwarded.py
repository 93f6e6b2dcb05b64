"""Who is really asking behind a reverse proxy: the client address and scheme from
X-Forwarded-For / X-Forwarded-Proto, believed only from the configured trusted proxies. Pure
parsing, shared by the HTTP edge (server/http/remote.py) and the Socket.IO namespaces (environ)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> Address | None:
    """An address as proxies write it: bare, `[v6]`, `[v6]:port` or `v4:port`; IPv4-mapped IPv6
    (a dual-stack socket's peer) as IPv4. None for anything else ("unknown", garbage)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TrustedProxies:
    """The reverse proxies (addresses or CIDR networks) whose forwarding headers are believed.
    A bad entry raises ValueError naming it."""

    entries: tuple[str, ...] = ()
    networks: tuple[Network, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks = []
        for entry in self.entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or a CIDR network") from None
        object.__setattr__(self, "networks", tuple(networks))

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in net for net in self.networks)


def _split(headers: Iterable[str]) -> list[str]:
    """One list from every instance of a comma-separated header, in the order they came."""
    return [part.strip() for header in headers for part in header.split(",") if part.strip()]


def client_address(peer: str, forwarded_for: Iterable[str], proxies: TrustedProxies) -> str:
    """The client's address: the direct peer, unless it is a trusted proxy; then, walking
    X-Forwarded-For from the right (each proxy appends the address it was reached from), the
    first address that is not a trusted proxy. Entries left of it were written by the client
    and are not believed; an entry that is not an address stops the walk at the last hop known."""
    hop = parse_address(peer)
    if not proxies.trusts(hop):
        return str(hop) if hop is not None else peer
    for entry in reversed(_split(forwarded_for)):
        address = parse_address(entry)
        if address is None:
            break
        hop = address
        if not proxies.trusts(address):
            break
    return str(hop)


def forwarded_https(peer: str, forwarded_proto: Iterable[str], proxies: TrustedProxies) -> bool:
    """Whether a trusted proxy says it was reached over HTTPS (the right-most X-Forwarded-Proto,
    the one the direct peer wrote)."""
    if not proxies.trusts(parse_address(peer)):
        return False
    values = _split(forwarded_proto)
    return bool(values) and values[-1].lower() == "https"


def environ_client_address(environ: Mapping[str, Any], proxies: TrustedProxies) -> str:
    """client_address for a Socket.IO connection's WSGI-style environ. engineio's aiohttp driver
    writes REMOTE_ADDR as a constant 127.0.0.1, so the peer is read from the aiohttp request it
    keeps there: trusting REMOTE_ADDR would believe anybody's X-Forwarded-For whenever
    127.0.0.1 is a trusted proxy."""
    request = environ.get("aiohttp.request")
    peer = getattr(request, "remote", None) if request is not None \
        else environ.get("REMOTE_ADDR")
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    return client_address(str(peer or ""), [forwarded] if isinstance(forwarded, str) else [],
                          proxies)
