"""What the ledger asks of inline read models.

Read models live in `projections/`, which depends on the ledger, not the reverse: the
composition root hands a projector to `LedgerApplication`, and every save calls it in
the transaction that appends the events, with the aggregates as they are after the
command. Read models are functions of aggregate state, so replaying the events and
projecting again (a rebuild) gives the same rows as the live path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from typing import Protocol
from uuid import UUID

from eventsourcing.domain import MutableOrImmutableAggregate
from psycopg import Cursor
from psycopg.rows import DictRow


class InlineProjector(Protocol):
    def project(
        self,
        curs: Cursor[DictRow],
        tenant_id: UUID,
        aggregates: Sequence[MutableOrImmutableAggregate[Any]],
    ) -> None: ...
