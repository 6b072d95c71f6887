"""The retry schedule of API.md §6, as pure functions (time and randomness passed in).

Attempt 1 is sent at once; after a failed attempt n (1-based) the next one waits
`RETRY_DELAYS[n-1]` ±20 % jitter, or longer when the receiver asked for more with
`Retry-After`. After the last retry fails the delivery is `failed`.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from email.utils import parsedate_to_datetime

# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
RETRY_DELAYS: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.2
# A receiver's Retry-After is honoured up to the longest step of the schedule.
MAX_RETRY_AFTER = RETRY_DELAYS[-1]


def retry_delay(
    attempt: int,
    *,
    jitter: float,
    retry_after: float | None = None,
    scale: float = 1.0,
) -> float | None:
    """Seconds to wait after failed attempt number `attempt`; None when it was the last.

    `jitter` is a draw from [-1, 1] (the caller's randomness); `scale` shrinks the whole
    schedule (tests only). A `retry_after` larger than the jittered delay wins.
    """
    if attempt < 1:
        msg = f"attempt numbers start at 1, got {attempt}"
        raise ValueError(msg)
    if attempt >= MAX_ATTEMPTS:
        return None
    if not -1.0 <= jitter <= 1.0:
        msg = f"jitter must be within [-1, 1], got {jitter}"
        raise ValueError(msg)
    delay = RETRY_DELAYS[attempt - 1] * scale * (1 + JITTER * jitter)
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, MAX_RETRY_AFTER)
    return max(delay, 0.0)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from `now`: an integer, or an HTTP date; else None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)
