"""Small helpers for PostgreSQL connection URLs, shared by the api and workers runtimes."""

from __future__ import annotations

from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, safe to log.

    Anything that does not parse as a URL (a libpq ``key=value`` string could carry
    ``password=``) is reduced to a placeholder rather than risk printing a secret.
    """
    parts = urlsplit(url)
    if not parts.scheme or "://" not in url:
        return "<connection string>"
    netloc = parts.netloc
    if parts.password:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"  # IPv6 literal: urlsplit drops the brackets
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username or ''}:***@{host}"
    # libpq also accepts ``?password=`` in the query string.
    query = [
        (key, "***" if key == "password" else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="/*")))


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))
