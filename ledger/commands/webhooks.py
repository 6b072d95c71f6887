"""Commands on webhook endpoints: create, change, rotate the secret, disable, delete.

Secrets are generated here and stored only encrypted under the master key, with
`<tenant>:webhook-secret:<endpoint>` as associated data, so a ciphertext copied to
another tenant's or endpoint's row does not decrypt. The plaintext is returned to the
caller once (the 201 of create, the 200 of rotate-secret).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.application import LedgerApplication
from ledger.commands.base import CommandContext
from ledger.commands.base import change
from ledger.commands.base import save
from ledger.crypto import decrypt
from ledger.crypto import encrypt
from ledger.domain.errors import BusinessRuleViolation
from ledger.domain.webhook_endpoint import WebhookEndpoint
from ledger.domain.webhook_endpoint import check_endpoint_fields
from ledger.webhooks.signing import new_webhook_secret
from ledger.webhooks.urls import Resolver
from ledger.webhooks.urls import UnresolvableHostError
from ledger.webhooks.urls import destination_problem
from ledger.webhooks.urls import resolve_host

URL_NOT_ALLOWED = "WEBHOOK_URL_NOT_ALLOWED"


@dataclass(frozen=True)
class DestinationPolicy:
    """Where webhooks may go: the operator's setting and how names are resolved."""

    allow_private: bool = False
    resolve: Resolver = resolve_host


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str  # plaintext: returned once, never stored


def secret_context(tenant_id: UUID, endpoint_id: UUID) -> str:
    return f"{tenant_id}:webhook-secret:{endpoint_id}"


def seal_secret(master_key: bytes, tenant_id: UUID, endpoint_id: UUID, secret: str) -> str:
    return encrypt(master_key, secret.encode(), context=secret_context(tenant_id, endpoint_id))


def open_secret(master_key: bytes, tenant_id: UUID, endpoint_id: UUID, sealed: str) -> str:
    return decrypt(master_key, sealed, context=secret_context(tenant_id, endpoint_id)).decode()


def check_destination(url: str, policy: DestinationPolicy) -> None:
    """422 when the URL targets a private, loopback or link-local address.

    A name that does not resolve yet is accepted here; each attempt checks again.
    """
    try:
        problem = destination_problem(
            url, allow_private=policy.allow_private, resolve=policy.resolve
        )
    except UnresolvableHostError:
        return
    if problem:
        raise BusinessRuleViolation(f"url {problem}", URL_NOT_ALLOWED, {"path": ["url"]})


def create_webhook_endpoint(
    app: LedgerApplication,
    ctx: CommandContext,
    *,
    endpoint_id: UUID,
    url: str,
    events: Sequence[str],
    master_key: bytes,
    destinations: DestinationPolicy,
    description: str | None = None,
    enabled: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> EndpointWithSecret:
    check_endpoint_fields({"url": url})
    check_destination(url, destinations)
    secret = new_webhook_secret()
    endpoint = WebhookEndpoint.create(
        id=endpoint_id,
        url=url,
        events=events,
        encrypted_secret=seal_secret(master_key, ctx.tenant_id, endpoint_id, secret),
        description=description,
        enabled=enabled,
        metadata=metadata,
        at=ctx.at,
    )
    save(app, ctx, endpoint)
    return EndpointWithSecret(endpoint, secret)


def update_webhook_endpoint(
    app: LedgerApplication,
    ctx: CommandContext,
    endpoint_id: UUID,
    changes: Mapping[str, Any],
    destinations: DestinationPolicy,
) -> WebhookEndpoint:
    """`changes`: snake_case fields of `WebhookEndpoint.update` that the PATCH gave."""
    if "url" in changes:
        check_endpoint_fields({"url": changes["url"]})
        check_destination(changes["url"], destinations)
    endpoint, _ = change(
        app, ctx, WebhookEndpoint, endpoint_id, lambda e: e.update(**changes, at=ctx.at)
    )
    return endpoint


def rotate_webhook_secret(
    app: LedgerApplication, ctx: CommandContext, endpoint_id: UUID, master_key: bytes
) -> EndpointWithSecret:
    """A new secret signs every attempt from now on (including retries)."""
    secret = new_webhook_secret()
    sealed = seal_secret(master_key, ctx.tenant_id, endpoint_id, secret)
    endpoint, _ = change(
        app,
        ctx,
        WebhookEndpoint,
        endpoint_id,
        lambda e: e.rotate_secret(encrypted_secret=sealed, at=ctx.at),
    )
    return EndpointWithSecret(endpoint, secret)


def disable_webhook_endpoint(
    app: LedgerApplication, ctx: CommandContext, endpoint_id: UUID, reason: str
) -> bool:
    _, changed = change(
        app, ctx, WebhookEndpoint, endpoint_id, lambda e: e.disable(reason=reason, at=ctx.at)
    )
    return changed


def delete_webhook_endpoint(app: LedgerApplication, ctx: CommandContext, endpoint_id: UUID) -> None:
    change(app, ctx, WebhookEndpoint, endpoint_id, lambda e: e.delete(at=ctx.at))
