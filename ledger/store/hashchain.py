"""The per-tenant hash chain over the event log.

hash(n) = SHA-256(hash(n-1) || position(n) as 8 bytes big-endian || digest(n)), with 32
zero bytes before the first event, where digest(n) = SHA-256(canonical bytes of event n):
sorted-key compact JSON of everything that makes the event what it is except its
position. The digest is computed here at append time; the database allocates the
position and links the chain in the same statement (`append_events`, migration 0001).
Changing, removing or reordering any stored row breaks every later link.
Event data and metadata hold JSON-native values (integers, not floats), so the bytes
recomputed from what Postgres returns equal the bytes hashed at append time.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

GENESIS_HASH = bytes(32)


def iso_micro(moment: datetime) -> str:
    """UTC with microseconds: the precision Postgres timestamptz keeps.

    The text is hashed into the chain, so it must never change: it is
    `strftime("%Y-%m-%dT%H:%M:%S.%fZ")`, which `isoformat` equals (at a third of the
    cost, on every append) for four-digit years; strftime keeps the others.
    """
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if utc.year < 1000:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # A UTC datetime's isoformat ends in "+00:00": swap it for "Z".
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"


@functools.lru_cache(maxsize=4)
def _iso_micro_recent(moment: datetime) -> str:
    """`iso_micro` for the few recorded-at times in use: one per append, shared by every
    event of its batch (hundreds, for validation events)."""
    return iso_micro(moment)


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """One event of the log, as hashed (its position is linked in separately)."""

    tenant_id: UUID
    stream_id: UUID
    stream_type: str
    version: int
    event_id: UUID
    event_type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime

    def canonical_bytes(self) -> bytes:
        return self._canonical(iso_micro(self.occurred_at))

    def _canonical(self, occurred_at: str) -> bytes:
        return orjson.dumps(
            {
                # orjson writes a UUID as str() does, without building the str first.
                "tenant": self.tenant_id,
                "stream": self.stream_id,
                "streamType": self.stream_type,
                "version": self.version,
                "id": self.event_id,
                "type": self.event_type,
                "schemaVersion": self.schema_version,
                "data": self.data,
                "metadata": self.metadata,
                "occurredAt": occurred_at,
                "recordedAt": _iso_micro_recent(self.recorded_at),
            },
            option=orjson.OPT_SORT_KEYS,
        )

    def append_row(self) -> dict[str, Any]:
        """The event as `append_events` takes it (the database adds the position)."""
        occurred_at = iso_micro(self.occurred_at)
        return {
            "stream": self.stream_id,
            "streamType": self.stream_type,
            "version": self.version,
            "id": self.event_id,
            "type": self.event_type,
            "schemaVersion": self.schema_version,
            "data": self.data,
            "occurredAt": occurred_at,
            "digest": hashlib.sha256(self._canonical(occurred_at)).hexdigest(),
        }

    def digest(self) -> bytes:
        return hashlib.sha256(self.canonical_bytes()).digest()


def link(previous_hash: bytes, position: int, digest: bytes) -> bytes:
    return hashlib.sha256(previous_hash + position.to_bytes(8, "big") + digest).digest()
