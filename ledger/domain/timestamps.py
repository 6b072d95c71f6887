"""Datetimes in events: the event `timestamp` is a datetime, every other one an ISO string."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import overload


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


@overload
def iso_ms(moment: datetime) -> str: ...
@overload
def iso_ms(moment: None) -> None: ...
@overload
def iso_ms(moment: datetime | None) -> str | None: ...
def iso_ms(moment: datetime | None) -> str | None:
    """`2026-01-15T10:30:00.000Z`, the API's timestamp form (API.md §1): what responses,
    offline files and signed audit heads state. None stays None."""
    if moment is None:
        return None
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if utc.year < 1000:  # strftime's %Y does not pad; keep its text for these
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    # isoformat is a third of strftime's cost (every answer has a few of these); a UTC
    # datetime's ends in "+00:00", which becomes "Z".
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def from_iso_or_none(text: str | None) -> datetime | None:
    return None if text is None else from_iso(text)
