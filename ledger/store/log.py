"""Reading a tenant's log in position order, and checking its hash chain.

Positions are gapless and committed in order per tenant (see `append_events`), so a
reader that asks for `position > last_seen` always receives a prefix of what is still to
come: it can never skip an event that commits later with a smaller position.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row

from ledger.store.hashchain import GENESIS_HASH
from ledger.store.hashchain import ChainedEvent
from ledger.store.hashchain import link
from ledger.store.tenancy import set_transaction_tenant


@dataclass(frozen=True, slots=True)
class LoggedEvent(ChainedEvent):
    """A stored event: what was hashed, plus the position and hash the log gave it."""

    position: int
    hash: bytes


_COLUMNS = (
    "tenant_id, position, stream_id, stream_type, version, event_id, event_type,"
    " schema_version, data, metadata, occurred_at, recorded_at, hash"
)


def read_log(
    conn: psycopg.Connection[Any], tenant_id: UUID, *, after: int = 0, limit: int = 500
) -> list[LoggedEvent]:
    """Events of `tenant_id` with position > `after`, oldest first (one transaction)."""
    with conn.transaction(), conn.cursor(row_factory=class_row(LoggedEvent)) as curs:
        set_transaction_tenant(curs, tenant_id)
        curs.execute(
            f"SELECT {_COLUMNS} FROM events WHERE tenant_id = %s AND position > %s"  # noqa: S608
            " ORDER BY position LIMIT %s",
            (tenant_id, after, limit),
            prepare=True,
        )
        return curs.fetchall()


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first position where the stored log stops matching its hash chain."""

    position: int
    reason: str


def verify_chain(
    events: Iterable[LoggedEvent], *, previous_hash: bytes = GENESIS_HASH, after: int = 0
) -> ChainBreak | None:
    """Recompute every link from the rows alone; None when the chain holds."""
    expected_position = after
    for event in events:
        expected_position += 1
        if event.position != expected_position:
            return ChainBreak(expected_position, f"position {event.position} found instead")
        previous_hash = link(previous_hash, event.position, event.digest())
        if previous_hash != bytes(event.hash):
            return ChainBreak(event.position, "hash does not match the recomputed link")
    return None
