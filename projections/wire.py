"""Wire forms shared by every read model: timestamps with milliseconds and `Z`."""

from __future__ import annotations

from datetime import datetime

from ledger.domain.timestamps import iso_ms

__all__ = ["iso_ms", "iso_ms_text"]  # iso_ms: the read models' form, from the domain


def iso_ms_text(text: str | None) -> str | None:
    """The same, from the microsecond ISO strings events store."""
    return None if text is None else iso_ms(datetime.fromisoformat(text))
