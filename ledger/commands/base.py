"""What every command needs: who acts, when, and loading/saving in one tenant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from ledger.application import LedgerApplication
from ledger.domain.base import LedgerAggregate
from ledger.domain.errors import Conflict
from ledger.domain.errors import NotFound
from ledger.domain.errors import ReferenceNotFound
from ledger.store.recorder import DuplicateKeyError

A = TypeVar("A", bound=LedgerAggregate)
T = TypeVar("T")

# Unique indexes of the read models (migration 0003) -> the wire field that clashed.
_UNIQUE_FIELDS = {
    "products_code_key": ("code", "A product with this code already exists"),
    "entitlements_code_key": ("code", "An entitlement with this code already exists"),
}


@dataclass(frozen=True)
class Actor:
    """Who issued a command (API.md §8): `api_key`, `license`, `operator` or `system`."""

    type: str
    id: str | None = None


@dataclass(frozen=True)
class CommandContext:
    tenant_id: UUID
    actor: Actor
    at: datetime
    request_id: str | None = None
    idempotency_key: str | None = None

    def metadata(self) -> dict[str, Any]:
        """Stored with every event of the command (and covered by the hash chain)."""
        meta: dict[str, Any] = {"actor": {"type": self.actor.type, "id": self.actor.id}}
        if self.request_id is not None:
            meta["requestId"] = self.request_id
        if self.idempotency_key is not None:
            meta["idempotencyKey"] = self.idempotency_key
        return meta


def load(app: LedgerApplication, cls: type[A], aggregate_id: UUID) -> A:
    """The live aggregate of type `cls`, else NotFound (absent, deleted, other type).

    Another tenant's id is simply absent under row-level security: the same 404.
    """
    aggregate: object
    try:
        aggregate = app.repository.get(aggregate_id)
    except AggregateNotFoundError:
        aggregate = None
    if not isinstance(aggregate, cls) or aggregate.deleted:
        msg = f"{cls.stream_type} {aggregate_id} not found"
        raise NotFound(msg)
    return aggregate


def load_reference(app: LedgerApplication, cls: type[A], aggregate_id: UUID, field: str) -> A:
    """Like `load`, for an id given in a request body: 422 REFERENCE_NOT_FOUND."""
    try:
        return load(app, cls, aggregate_id)
    except NotFound:
        msg = f"{field} does not name an existing {cls.stream_type}"
        raise ReferenceNotFound(msg, {"path": [field]}) from None


def save(app: LedgerApplication, ctx: CommandContext, *aggregates: LedgerAggregate) -> None:
    """Append pending events and project them; unique read-model clashes are 409s."""
    try:
        app.save_in(ctx.tenant_id, *aggregates, metadata=ctx.metadata())
    except DuplicateKeyError as e:
        field, message = _UNIQUE_FIELDS.get(e.constraint, ("", "Duplicate value"))
        raise Conflict(message, {"field": field} if field else None) from None


def change(
    app: LedgerApplication,
    ctx: CommandContext,
    cls: type[A],
    aggregate_id: UUID,
    decide: Callable[[A], T],
) -> tuple[A, T]:
    """Load, run `decide` (a domain command), save; retried on a stream conflict."""

    def attempt() -> tuple[A, T]:
        aggregate = load(app, cls, aggregate_id)
        outcome = decide(aggregate)
        save(app, ctx, aggregate)
        return aggregate, outcome

    return app.execute(ctx.tenant_id, attempt, stream=aggregate_id)
