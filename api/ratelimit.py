"""Rate limits of API.md §9: a sliding window per (tier, client), in Redis or in-process.

- `validate` (POST /licenses/validate-key) and `activate` (POST /machines) are keyed by
  client IP; every other authenticated request by its credential (`management`).
- The window is a sliding log: a request is allowed when fewer than N were allowed in
  the last window. A burst of 200 against 60/minute admits exactly 60, whichever second
  it starts in (a fixed window would admit up to 120 across its edge).
- With `REDIS_URL`, one Lua script per check (atomic; shared by every gunicorn worker and
  host). If Redis fails the request is served (fail open): limits are a protection, not
  a dependency. Failures are logged (at most once per `_BACKOFF` seconds) and counted,
  and Redis is not retried for `_BACKOFF` seconds so a dead Redis costs no latency.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import Protocol

import falcon
import redis

from api.auth import Principal
from api.client_ip import client_ip
from api.client_ip import client_ip_of
from api.client_ip import parse_networks
from api.config import Config
from api.errors import ApiError
from api.metrics import RATE_LIMIT_FAIL_OPEN
from ledger.domain.codes import ErrorCode

_log = logging.getLogger(__name__)
_UNITS = {"second": 1, "minute": 60, "hour": 3600}
_RATE = re.compile(r"^(\d+)/(second|minute|hour)$")
_BACKOFF = 5.0
_REDIS_TIMEOUT = 0.25


@dataclass(frozen=True)
class Rate:
    limit: int
    window: float  # seconds

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = _RATE.match(text)
        if match is None:
            msg = f"bad rate {text!r}"
            raise ValueError(msg)
        return cls(int(match.group(1)), float(_UNITS[match.group(2)]))


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # unix seconds when the oldest counted request leaves the window

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset_at - now))


class Limiter(Protocol):
    def check(self, key: str, rate: Rate, now: float) -> Verdict: ...


class MemoryLimiter:
    """Per-process sliding logs (no REDIS_URL): each gunicorn worker counts alone."""

    def __init__(self) -> None:
        self._logs: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str, rate: Rate, now: float) -> Verdict:
        with self._lock:
            log = self._logs.setdefault(key, deque())
            while log and log[0] <= now - rate.window:
                log.popleft()
            allowed = len(log) < rate.limit
            if allowed:
                log.append(now)
            reset = (log[0] if log else now) + rate.window
            return Verdict(allowed, rate.limit, rate.limit - len(log), reset)


# KEYS[1] = the log; ARGV = now, window, limit, member. Returns {allowed, count, oldest}.
_SLIDING_LOG = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    count = count + 1
    allowed = 1
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2] or ARGV[1]
return {allowed, count, tostring(oldest)}
"""


class RedisLimiter:
    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(
            url, socket_timeout=_REDIS_TIMEOUT, socket_connect_timeout=_REDIS_TIMEOUT
        )
        self._script = self._client.register_script(_SLIDING_LOG)

    def check(self, key: str, rate: Rate, now: float) -> Verdict:
        # Unique members: two requests in the same microsecond both count.
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        allowed, count, oldest = self._script(
            keys=[f"licentric:rl:{key}"], args=[now, rate.window, rate.limit, member]
        )
        return Verdict(
            bool(allowed), rate.limit, max(0, rate.limit - int(count)), float(oldest) + rate.window
        )


class FailOpen:
    """Wraps the Redis limiter: on any Redis error, allow and stop asking for a while."""

    def __init__(self, limiter: RedisLimiter) -> None:
        self._limiter = limiter
        self._down_until = 0.0
        self.failures = 0  # exported by /metrics

    def check(self, key: str, rate: Rate, now: float) -> Verdict | None:
        if time.monotonic() < self._down_until:
            self.failures += 1
            RATE_LIMIT_FAIL_OPEN.inc()
            return None
        try:
            return self._limiter.check(key, rate, now)
        except (redis.RedisError, OSError) as exc:
            self.failures += 1
            RATE_LIMIT_FAIL_OPEN.inc()
            self._down_until = time.monotonic() + _BACKOFF
            _log.warning(
                "rate limiter unavailable, failing open",
                extra={"error": type(exc).__name__, "retry_in_s": _BACKOFF},
            )
            return None


def _tier(req: falcon.Request, principal: Principal | None) -> str | None:
    if req.method == "POST" and req.path == "/api/v1/licenses/validate-key":
        return "validate"
    if req.method == "POST" and req.path == "/api/v1/machines":
        return "activate"
    return None if principal is None else "management"


class RateLimitMiddleware:
    """After auth (management limits are per credential), before idempotency."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self._rates = {
            "validate": Rate.parse(config.rate_limit_validate),
            "activate": Rate.parse(config.rate_limit_activate),
            "management": Rate.parse(config.rate_limit_management),
        }
        self._proxies = parse_networks(config.trusted_proxies)
        self._clock = clock
        self._memory = MemoryLimiter()
        self.redis: FailOpen | None = None
        if config.redis_url:
            self.redis = FailOpen(RedisLimiter(config.redis_url))

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        if resource is None:
            return
        principal = getattr(req.context, "principal", None)
        tier = _tier(req, principal if isinstance(principal, Principal) else None)
        if tier is None:
            return
        if tier == "management":
            assert isinstance(principal, Principal)
            key = f"{tier}:{principal.kind}:{principal.id}"
        else:
            key = f"{tier}:{client_ip(req, self._proxies)}"
        verdict = self.check(tier, key)
        if verdict is not None:
            req.context.rate_limit = verdict

    def check(self, tier: str, key: str) -> Verdict | None:
        """Count one request of `key` in `tier`: its verdict (None: Redis is down, fail
        open); 429 RATE_LIMITED (ApiError) when over the limit. The validate-key fast path
        (api/validate_fast_path.py) calls it too, on this same instance."""
        rate = self._rates[tier]
        now = self._clock()
        verdict = self.redis.check(key, rate, now) if self.redis is not None else None
        if verdict is None and self.redis is None:
            verdict = self._memory.check(key, rate, now)
        if verdict is None:
            return None
        if not verdict.allowed:
            raise ApiError(
                ErrorCode.RATE_LIMITED,
                f"Rate limit of {rate.limit} requests per {int(rate.window)} s exceeded.",
                headers={**verdict.headers(), "Retry-After": str(verdict.retry_after(now))},
            )
        return verdict

    def client_key(self, tier: str, peer: str | None, forwarded: str | None) -> str:
        """The key of a per-client tier (validate, activate) for a WSGI request."""
        return f"{tier}:{client_ip_of(peer, forwarded, self._proxies)}"

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        verdict = getattr(req.context, "rate_limit", None)
        if isinstance(verdict, Verdict):
            resp.set_headers(verdict.headers())
