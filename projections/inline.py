"""Inline read models, dispatched by aggregate type, run inside the appending transaction."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import MutableOrImmutableAggregate
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

_WRITERS: dict[type, RowWriter] = {
    Environment: project_environment,
    ApiKey: project_api_key,
    Product: project_product,
    Policy: project_policy,
    Entitlement: project_entitlement,
    License: project_license,
    WebhookEndpoint: project_webhook_endpoint,
}
# More read models of the same aggregate, written after its main one.
_MORE_WRITERS: dict[type, tuple[RowWriter, ...]] = {
    Environment: (project_signing_keys,),
    License: (project_license_checkouts,),
}


class InlineProjections:
    """The `ledger.projection.InlineProjector` the composition roots wire in."""

    def project(
        self,
        curs: Cursor[DictRow],
        tenant_id: UUID,
        aggregates: Sequence[MutableOrImmutableAggregate[Any]],
    ) -> None:
        for aggregate in aggregates:
            writer = _WRITERS.get(type(aggregate))
            if writer is not None:
                writer(curs, tenant_id, aggregate)
            for more in _MORE_WRITERS.get(type(aggregate), ()):
                more(curs, tenant_id, aggregate)
