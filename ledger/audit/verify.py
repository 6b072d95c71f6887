"""`licentric audit verify`: recompute every tenant's hash chain from its rows alone.

Each row's hash must be the link of the previous hash, its position and the digest of
its canonical bytes (ledger/store/hashchain.py), positions must run 1, 2, 3, … without a
gap, and the last row must be the one the tenant's log head names. So altering,
deleting, inserting or reordering any row is reported at the first position where the
stored log stops matching; deleting the newest rows is caught by the head. (Rewriting a
whole suffix *and* the head is what a signed head kept elsewhere catches:
`GET /audit/head`, `licentric audit export`.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from ledger.audit.auditor import TenantHead
from ledger.audit.auditor import iter_log
from ledger.store.hashchain import GENESIS_HASH
from ledger.store.log import ChainBreak
from ledger.store.log import verify_chain


@dataclass(frozen=True)
class TenantCheck:
    tenant: TenantHead
    events: int
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_tenant(
    conn: psycopg.Connection[Any],
    tenant: TenantHead,
    *,
    page: int = 2000,
    on_progress: Callable[[int], None] | None = None,
) -> TenantCheck:
    """Check the tenant's log up to the head read in `tenant` (appends after it are
    left for the next run, so a live system verifies too)."""
    previous, after, count = GENESIS_HASH, 0, 0
    for events in iter_log(conn, tenant.tenant_id, upto=tenant.position, page=page):
        broken = verify_chain(events, previous_hash=previous, after=after)
        if broken is not None:
            return TenantCheck(tenant, count, broken)
        previous, after = bytes(events[-1].hash), events[-1].position
        count += len(events)
        if on_progress is not None:
            on_progress(len(events))
    return TenantCheck(tenant, count, _against_head(tenant, after, previous))


def _against_head(tenant: TenantHead, last: int, last_hash: bytes) -> ChainBreak | None:
    if tenant.last_stored > tenant.position:
        return ChainBreak(tenant.position + 1, "rows stored beyond the log head")
    if last < tenant.position:
        reason = f"missing: the log head says the log reaches position {tenant.position}"
        return ChainBreak(last + 1, reason)
    if last_hash != tenant.hash:
        return ChainBreak(last, "the log head's hash does not match the chain")
    return None
