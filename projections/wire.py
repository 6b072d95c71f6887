"""Wire forms shared by every read model: timestamps with milliseconds and `Z`."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime


def iso_ms(moment: datetime | None) -> str | None:
    """`2026-01-15T10:30:00.000Z` (API.md §1); None stays None."""
    if moment is None:
        return None
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if utc.year < 1000:  # strftime's %Y does not pad; keep its text for these
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    # isoformat is a third of strftime's cost (every validation answer has one or two of
    # these); a UTC datetime's ends in "+00:00", which becomes "Z".
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"


def iso_ms_text(text: str | None) -> str | None:
    """The same, from the microsecond ISO strings events store."""
    return None if text is None else iso_ms(datetime.fromisoformat(text))
