"""Settings of the webhook loop, parsed from an environment mapping.

Only the composition root (`workers.__main__`) passes `os.environ` in; everything else
receives a `WebhookSettings`. The retry scale and short timeouts exist for tests and
benchmarks; production keeps the defaults of API.md §6.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
# Beyond the request timeout, how long a claim stays leased before another worker may
# take it over (a crashed worker's deliveries resume after at most this long).
LEASE_MARGIN_SECONDS = 15.0


class WebhookSettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class WebhookSettings:
    master_key: bytes = field(repr=False)
    allow_private: bool = False
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    retry_scale: float = 1.0
    concurrency: int = 16
    lease_seconds: float = 15.0 + LEASE_MARGIN_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, master_key: bytes) -> WebhookSettings:
        total = _number(environ, "LICENTRIC_WEBHOOK_TIMEOUT", 15.0, low=0.1, high=60.0)
        connect = min(
            _number(environ, "LICENTRIC_WEBHOOK_CONNECT_TIMEOUT", 5.0, low=0.1, high=60.0), total
        )
        lease = _number(
            environ, "LICENTRIC_WEBHOOK_LEASE_SECONDS", total + LEASE_MARGIN_SECONDS,
            low=total + 1.0, high=3600.0,
        )  # fmt: skip
        return cls(
            master_key=master_key,
            allow_private=_flag(environ, "LICENTRIC_WEBHOOK_ALLOW_PRIVATE"),
            connect_timeout=connect,
            total_timeout=total,
            retry_scale=_number(environ, "LICENTRIC_WEBHOOK_RETRY_SCALE", 1.0, low=0.0, high=1.0),
            concurrency=int(_number(environ, "LICENTRIC_WEBHOOK_CONCURRENCY", 16, low=1, high=256)),
            lease_seconds=lease,
        )


def _flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    msg = f"{name} must be true or false, got {value!r}"
    raise WebhookSettingsError(msg)


def _number(
    environ: Mapping[str, str], name: str, default: float, *, low: float, high: float
) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        msg = f"{name} must be a number within {low}..{high}, got {text!r}"
        raise WebhookSettingsError(msg)
    return value
