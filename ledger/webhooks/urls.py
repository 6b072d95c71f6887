"""Which URLs a webhook may target (API.md §6).

Format (http or https, a host, at most 2,048 characters) is checked when an endpoint is
created or changed. The destination check refuses private, loopback, link-local and
other non-global addresses unless the operator allows them
(`LICENTRIC_WEBHOOK_ALLOW_PRIVATE=true`); it runs when the URL is set and again before
each attempt, since a name can resolve elsewhere later. Resolution is passed in, so the
rule itself stays pure.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from collections.abc import Sequence
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
SCHEMES = frozenset({"http", "https"})

Resolver = Callable[[str, int], Sequence[str]]


class UnresolvableHostError(LookupError):
    """The host name does not resolve (now)."""


def url_format_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook URL, or None."""
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in SCHEMES:
        return "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    return None


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to now (the resolver used outside tests)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UnresolvableHostError(host) from e
    return sorted({str(info[4][0]) for info in infos})


def _not_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def destination_problem(
    url: str, *, allow_private: bool, resolve: Resolver = resolve_host
) -> str | None:
    """Why `url` must not be called from the server, or None.

    Raises UnresolvableHostError when the host name does not resolve: the caller
    decides whether that refuses the URL (sending) or not (an endpoint configured
    before its DNS exists).
    """
    if allow_private:
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "targets a loopback address"
    try:
        addresses: Sequence[str] = [str(ipaddress.ip_address(host))]
    except ValueError:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        addresses = resolve(host, port)
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if _not_public(address):
            return f"targets a private, loopback or link-local address ({address})"
    return None
