"""The client's IP address: the socket peer, or `X-Forwarded-For` behind trusted proxies.

A header is only believed when the peer that sent it is one of the operator's proxies
(`LICENTRIC_TRUSTED_PROXIES`); otherwise any client could pick its own rate-limit key.
Walking the header right to left, the first address that is not a trusted proxy is the
client (the left part of the header is whatever the client claimed).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import falcon

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(req: falcon.Request, proxies: Sequence[Network]) -> str:
    return client_ip_of(req.remote_addr, req.get_header("X-Forwarded-For"), proxies)


def client_ip_of(peer: str | None, forwarded: str | None, proxies: Sequence[Network]) -> str:
    """`client_ip` from the socket's peer address and the X-Forwarded-For header."""
    peer = peer or "unknown"
    if not proxies or not _trusted(peer, proxies):
        return peer
    forwarded = forwarded or ""
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed hop: fall back to what we know
    return hops[0] if hops else peer
