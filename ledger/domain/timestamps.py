"""Datetimes in events: the event `timestamp` is a datetime, every other one an ISO string."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime


def require_utc(at: datetime) -> datetime:
    """Return `at` in UTC; naive datetimes are a programming error (time is passed in)."""
    if at.tzinfo is None or at.utcoffset() is None:
        msg = f"naive datetime given where a tz-aware one is required: {at!r}"
        raise ValueError(msg)
    return at.astimezone(UTC)


def to_iso(at: datetime) -> str:
    """Canonical form stored in events: UTC, microseconds, `Z`."""
    return require_utc(at).isoformat(timespec="microseconds").replace("+00:00", "Z")


def to_iso_or_none(at: datetime | None) -> str | None:
    return None if at is None else to_iso(at)


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def from_iso_or_none(text: str | None) -> datetime | None:
    return None if text is None else from_iso(text)
