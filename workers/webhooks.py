"""The webhook loop of `licentric worker`: outbox consumer + dispatcher (ARCHITECTURE §5).

Each pass: (1) the outbox consumer turns new log events into deliveries; (2) the
dispatcher asks which tenants have claimable deliveries and claims, per tenant, as many
as it has free sending slots (a short transaction: FOR UPDATE SKIP LOCKED, lease,
commit). Claimed deliveries are POSTed from a thread pool with no transaction open;
each outcome is recorded in its own transaction and the retry decided by the pure
schedule of `ledger.webhooks.retries`. Order per (endpoint, license) is the claim rule
(projections/webhook_deliveries.py), so any number of worker processes may run.

Crash safety: a claim is a lease. If the process dies mid-attempt, the lease runs out
and another pass (here or in another worker) sends the delivery again; the receiver may
see that one message twice (at least once), never a later one before it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from uuid import uuid4

from ledger.application import LedgerApplication
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.commands.webhooks import disable_webhook_endpoint
from ledger.commands.webhooks import open_secret
from ledger.domain.errors import NotFound
from ledger.domain.webhook_endpoint import DISABLED_GONE
from ledger.webhooks.retries import parse_retry_after
from ledger.webhooks.retries import retry_delay
from ledger.webhooks.signing import signature_headers
from projections.inline import InlineProjections
from projections.webhook_deliveries import AttemptResult
from projections.webhook_deliveries import Claimed
from projections.webhook_deliveries import claim
from projections.webhook_deliveries import due_tenants
from projections.webhook_deliveries import record_attempt
from projections.webhook_outbox import WebhookOutbox
from workers.listener import LogListener
from workers.webhook_http import HttpOutcome
from workers.webhook_http import HttpSender
from workers.webhook_settings import WebhookSettings

_log = logging.getLogger(__name__)
DUE_TENANTS_PER_PASS = 50
# How many deliveries of one license a sending slot takes in a row before it is given
# back, so a long queue cannot keep a slot from other licenses for ever.
CHAIN_LIMIT = 20
POOL_SIZE = 4
SYSTEM_ACTOR = Actor("system", "webhooks")


def decide(
    attempt: int,
    outcome: HttpOutcome,
    *,
    now: datetime,
    jitter: float,
    retry_scale: float,
) -> AttemptResult:
    """Delivered on 2xx; failed on 410 or after the last retry; else retry later."""
    status = outcome.status
    if outcome.error is None and status is not None and 200 <= status < 300:
        return AttemptResult("delivered", None, status, outcome.latency_ms, outcome.response, None)
    error = outcome.error or f"HTTP {status}"
    if status == 410:
        return AttemptResult("failed", None, status, outcome.latency_ms, outcome.response, error)
    delay = retry_delay(
        attempt,
        jitter=jitter,
        retry_after=parse_retry_after(outcome.retry_after, now),
        scale=retry_scale,
    )
    state = "failed" if delay is None else "pending"
    return AttemptResult(state, delay, status, outcome.latency_ms, outcome.response, error)


class WebhookLoop:
    name = "webhooks"

    def __init__(
        self,
        app: LedgerApplication,
        settings: WebhookSettings,
        *,
        sender: HttpSender | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = lambda: random.uniform(-1.0, 1.0),  # noqa: S311
        listen_url: str | None = None,
    ) -> None:
        self._app = app
        self._listen_url = listen_url
        self._listener: LogListener | None = None
        self._settings = settings
        self._outbox = WebhookOutbox(app)
        self._sender = sender or HttpSender(
            connect_timeout=settings.connect_timeout,
            total_timeout=settings.total_timeout,
            allow_private=settings.allow_private,
        )
        self._clock = clock
        self._jitter = jitter
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="webhook")
        self._busy = 0
        self._lock = threading.Lock()
        self._wake: Callable[[], None] = lambda: None

    def bind_wake(self, wake: Callable[[], None]) -> None:
        """The runner's wake-up: called when a sending slot frees (the next delivery of
        that license may now be claimable)."""
        self._wake = wake
        if self._listen_url is not None and self._listener is None:
            self._listener = LogListener(self._listen_url, wake).start()

    def run_once(self) -> int:
        return self._outbox.run_once() + self._dispatch()

    def idle(self) -> bool:
        with self._lock:
            return self._busy == 0

    def close(self) -> None:
        """Finish the attempts in hand (their outcomes are recorded), then stop."""
        if self._listener is not None:
            self._listener.stop()
        self._pool.shutdown(wait=True)

    def _free_slots(self) -> int:
        with self._lock:
            return self._settings.concurrency - self._busy

    def _dispatch(self) -> int:
        free = self._free_slots()
        if free <= 0:
            return 0
        with self._app.transaction() as curs:
            tenants = due_tenants(curs, DUE_TENANTS_PER_PASS)
        claimed_total = 0
        for tenant in tenants:
            if free <= 0:
                break
            with self._app.reading(tenant) as curs:
                claimed = claim(
                    curs,
                    tenant,
                    limit=free,
                    lease_seconds=self._settings.lease_seconds,
                    token=uuid4(),
                )
            # Committed: the leases hold even if this process dies from here on.
            with self._lock:
                self._busy += len(claimed)
            for delivery in claimed:
                self._pool.submit(self._deliver, delivery)
            free -= len(claimed)
            claimed_total += len(claimed)
        return claimed_total

    def _deliver(self, delivery: Claimed) -> None:
        """Send, then keep the slot for the license's next delivery if it is due now."""
        current: Claimed | None = delivery
        budget = CHAIN_LIMIT
        try:
            while current is not None:
                budget -= 1
                current = self._attempt(current, may_continue=budget > 0)
        except Exception:  # one delivery's trouble must not stop the loop; the lease retries
            _log.exception("webhook attempt failed", extra={"delivery": str(delivery.id)})
        finally:
            with self._lock:
                self._busy -= 1
            self._wake()

    def _attempt(self, delivery: Claimed, *, may_continue: bool) -> Claimed | None:
        """One attempt; returns the queue's next delivery when it could be claimed at once."""
        secret = open_secret(
            self._settings.master_key,
            delivery.tenant_id,
            delivery.endpoint_id,
            delivery.encrypted_secret,
        )
        headers = signature_headers(secret, delivery.message_id, int(time.time()), delivery.body)
        outcome = self._sender.post(delivery.url, delivery.body, headers)
        result = decide(
            delivery.attempt,
            outcome,
            now=self._clock(),
            jitter=self._jitter(),
            retry_scale=self._settings.retry_scale,
        )
        following: list[Claimed] = []
        with self._app.reading(delivery.tenant_id) as curs:
            kept = record_attempt(curs, delivery, result)
            if kept and may_continue and result.state == "delivered":
                # The queue's head just moved: claim its next delivery in the same
                # transaction instead of waiting for a pass of the loop.
                following = claim(
                    curs,
                    delivery.tenant_id,
                    limit=1,
                    lease_seconds=self._settings.lease_seconds,
                    token=uuid4(),
                    queue=(delivery.endpoint_id, delivery.order_key),
                )
        if not kept:
            _log.warning("lease lost before the outcome was recorded",
                         extra={"delivery": str(delivery.id)})  # fmt: skip
        if outcome.status == 410:
            self._disable(delivery)
        return following[0] if following else None

    def _disable(self, delivery: Claimed) -> None:
        ctx = CommandContext(delivery.tenant_id, SYSTEM_ACTOR, self._clock())
        try:
            disable_webhook_endpoint(self._app, ctx, delivery.endpoint_id, DISABLED_GONE)
        except NotFound:
            return
        _log.info("endpoint disabled: receiver answered 410 Gone",
                  extra={"webhook": str(delivery.endpoint_id)})  # fmt: skip


def webhook_loops(
    database_url: str, *, master_key: bytes, environ: Mapping[str, str]
) -> list[WebhookLoop]:
    """The webhook loop with its own small pool: sending threads hold a connection only
    for their short record/claim transactions, never during the HTTP request."""
    settings = WebhookSettings.from_env(environ, master_key=master_key)
    app = LedgerApplication(database_url, pool_size=POOL_SIZE, projector=InlineProjections())
    return [WebhookLoop(app, settings, listen_url=database_url)]
