"""Every inline read model, registered with what a rebuild needs to know about it.

A read model is a function of one aggregate's state: its writer (the same function the
live path runs, `projections.inline`) turns the aggregate into rows. A rebuild replays
each stream from its events alone, runs the writer into shadow tables and then compares
(`--verify`) or replaces the rows the model *owns*. So each model declares:

- `owns`: the tables (and, with `scope`, the part of a table) whose rows it alone
  decides; those are compared and replaced;
- `touches`: other tables its writer writes (operational rows that are not a pure
  function of events, like heartbeat deadlines that pings move, or rows another model
  owns). They are shadowed too, so a rebuild never writes a live table outside its final
  swap; the rebuild runs as a role with no write grant on any live table, so a writer
  that touches an undeclared table fails loudly instead.

Owned rows must depend on the aggregate alone: during a rebuild, a table a writer only
reads may still be partly rebuilt. A new inline writer must be registered here (a test
checks that every writer in `projections.inline` is).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from ledger.domain.api_key import ApiKey
from ledger.domain.entitlement import Entitlement
from ledger.domain.environment import Environment
from ledger.domain.license import License
from ledger.domain.policy import Policy
from ledger.domain.product import Product
from ledger.domain.webhook_endpoint import WebhookEndpoint
from projections.api_keys import project_api_key
from projections.catalogue import project_entitlement
from projections.catalogue import project_policy
from projections.catalogue import project_product
from projections.licenses import project_license
from projections.offline import project_license_checkouts
from projections.offline import project_signing_keys
from projections.tenants import project_environment
from projections.webhook_endpoints import project_webhook_endpoint

RowWriter = Callable[[Cursor[DictRow], UUID, Any], None]


@dataclass(frozen=True)
class Table:
    """Rows of one table that a read model owns, identified by `key`."""

    name: str
    key: tuple[str, ...]
    # A fixed SQL condition narrowing the owned rows (never request input).
    scope: str = "true"


@dataclass(frozen=True)
class ReadModel:
    name: str
    aggregate: type
    writer: RowWriter
    owns: tuple[Table, ...]
    touches: tuple[str, ...] = ()

    @property
    def stream_type(self) -> str:
        stream_type: str = self.aggregate.stream_type  # type: ignore[attr-defined]
        return stream_type


def _by_id(name: str) -> Table:
    return Table(name, ("tenant_id", "id"))


_LICENSE_TABLES = ("licenses", "machines", "machine_heartbeats", "credential_lookup")

READ_MODELS: list[ReadModel] = [
    ReadModel("tenants", Environment, project_environment, (Table("tenants", ("tenant_id",)),)),
    ReadModel(
        "signing_keys",
        Environment,
        project_signing_keys,
        (Table("signing_keys", ("tenant_id", "kid")),),
    ),
    ReadModel(
        "api_keys",
        ApiKey,
        project_api_key,
        (_by_id("api_keys"), Table("credential_lookup", ("key_hash",), "kind = 'api_key'")),
    ),
    ReadModel("products", Product, project_product, (_by_id("products"),)),
    ReadModel("policies", Policy, project_policy, (_by_id("policies"),)),
    ReadModel("entitlements", Entitlement, project_entitlement, (_by_id("entitlements"),)),
    ReadModel(
        "licenses",
        License,
        project_license,
        (_by_id("licenses"), Table("credential_lookup", ("key_hash",), "kind = 'license'")),
        # Heartbeat rows carry pings, which are not events: shadowed, never compared.
        touches=_LICENSE_TABLES,
    ),
    ReadModel("machines", License, project_license, (_by_id("machines"),), _LICENSE_TABLES),
    ReadModel(
        "offline_checkouts",
        License,
        project_license_checkouts,
        # A checkout's row is dropped once it has expired; rebuilds leave those alone.
        (Table("offline_checkouts", ("tenant_id", "id"), "expires_at > now()"),),
    ),
    ReadModel(
        "webhook_endpoints",
        WebhookEndpoint,
        project_webhook_endpoint,
        (_by_id("webhook_endpoints"),),
    ),
]


def register(model: ReadModel) -> None:
    """Add a read model (its name must be new)."""
    if any(m.name == model.name for m in READ_MODELS):
        msg = f"a read model named {model.name!r} is already registered"
        raise ValueError(msg)
    READ_MODELS.append(model)


def select(names: Iterable[str] = ()) -> list[ReadModel]:
    """The named read models (all of them when no name is given), in registry order."""
    wanted = set(names)
    unknown = wanted - {m.name for m in READ_MODELS}
    if unknown:
        known = ", ".join(m.name for m in READ_MODELS)
        msg = f"unknown read model(s): {', '.join(sorted(unknown))} (known: {known})"
        raise LookupError(msg)
    return [m for m in READ_MODELS if not wanted or m.name in wanted]
