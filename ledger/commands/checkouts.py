"""Commands on offline checkouts: check a license out, and keep issued files current.

A checkout runs the pipeline of ledger.offline (render -> encrypt? -> sign -> armour)
inside the command's attempt, so the file and the `license.checked_out` event that
records it come from the same state of license, policy and signing key; on a stream
conflict the attempt is rerun from fresh state and a new file is made.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from typing import Generic
from typing import Protocol
from typing import TypeVar
from uuid import UUID

import orjson
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from ledger.application import DEFAULT_COMMAND_ATTEMPTS
from ledger.application import LedgerApplication
from ledger.application import conflict_backoff
from ledger.commands.base import CommandContext
from ledger.commands.base import load
from ledger.commands.base import save
from ledger.crypto import keyed_hash
from ledger.domain.environment import Environment
from ledger.domain.environment import SigningKey
from ledger.domain.errors import BusinessRuleViolation
from ledger.domain.errors import NotFound
from ledger.domain.license import License
from ledger.domain.license_checkouts import Checkout
from ledger.domain.license_checkouts import IssuedFile
from ledger.domain.license_checkouts import checked_out_fields
from ledger.domain.license_checkouts import plan_checkout_of
from ledger.domain.policy import Policy
from ledger.offline.certificate import sign_certificate
from ledger.offline.content import FileContent
from ledger.offline.content import LicenseContent
from ledger.offline.content import render_file
from ledger.offline.encryption import derive_file_key
from ledger.offline.keys import open_file_key
from ledger.offline.keys import seal_file_key
from ledger.offline.keys import signing_seed
from ledger.offline.rules import OfflinePolicy
from ledger.store.hashchain import ChainedEvent
from ledger.store.recorder import ConcurrencyConflictError
from ledger.store.recorder import RecordedWith
from ledger.store.recorder import event_id_of
from ledger.store.tenancy import tenant_scope

CHECKED_OUT = "license.checked_out"  # the stable name of License.CheckedOut
LICENSE_KEY_MISMATCH = "LICENSE_KEY_MISMATCH"
LICENSE_KEY_REQUIRED = "LICENSE_KEY_REQUIRED"

# Runs inside the transaction that records regenerated files (the re-signer's position).
AlsoInTransaction = Callable[[Cursor[DictRow]], None]


@dataclass(frozen=True)
class CheckedOutFile:
    license: License
    checkout: Checkout
    certificate: str
    expires_at: datetime  # the file's own expiry (header `expiresAt`)


def _policy_of(app: LedgerApplication, license_: License) -> OfflinePolicy:
    # A license keeps its policy's stream even if the policy was deleted later.
    policy: object = app.repository.get(UUID(license_.policy_id))
    assert isinstance(policy, Policy)
    return OfflinePolicy.of(policy)


def _sign(content: FileContent, *, seed: bytes, file_key: bytes | None) -> tuple[str, IssuedFile]:
    certificate = sign_certificate(content.header, content.payload, seed=seed, file_key=file_key)
    return certificate, IssuedFile(
        certificate=certificate,
        digest=content.digest,
        issued_at=content.issued_at,
        expires_at=content.expires_at,
    )


def _file_key(
    ctx: CommandContext,
    license_: License,
    license_key: str | None,
    *,
    master_key: bytes,
    pepper: bytes,
) -> bytes:
    """The key encrypted files of `license_` use: from the license key when given (then
    kept, sealed, for re-signing), else the one sealed when the license was issued."""
    if license_key is not None:
        if not hmac.compare_digest(keyed_hash(pepper, license_key), license_.key_hash):
            msg = "licenseKey is not the key of this license"
            raise BusinessRuleViolation(msg, LICENSE_KEY_MISMATCH, {"path": ["licenseKey"]})
        file_key = derive_file_key(license_key, license_.id)
        if license_.sealed_file_key is None:
            sealed = seal_file_key(master_key, ctx.tenant_id, license_.id, file_key)
            license_.seal_file_key(sealed_key=sealed, at=ctx.at)
        return file_key
    if license_.sealed_file_key is None:
        msg = "this license has no stored offline key: pass licenseKey to encrypt its files"
        raise BusinessRuleViolation(msg, LICENSE_KEY_REQUIRED, {"path": ["licenseKey"]})
    return open_file_key(master_key, ctx.tenant_id, license_.id, license_.sealed_file_key)


def checkout_license(
    app: LedgerApplication,
    ctx: CommandContext,
    license_id: UUID,
    *,
    checkout_id: UUID,
    fingerprint: str | None,
    ttl: int | None,
    encrypt: bool,
    master_key: bytes,
    pepper: bytes,
    license_key: str | None = None,
    signing_key: SigningKey | None = None,
    policy_rules: OfflinePolicy | None = None,
) -> CheckedOutFile:
    """Issue an offline license file (`license.checked_out`), signed with the active key.

    `signing_key` and `policy_rules`: the environment's active key and the license's
    policy as the caller read them from the read models (one query each, where loading
    replays two streams); without them, or when the license has moved to another policy
    since, they are loaded here. Either way a later change reaches the file through the
    re-signer.
    """

    def attempt() -> CheckedOutFile:
        license_ = load(app, License, license_id)
        policy = (
            policy_rules
            if policy_rules is not None and policy_rules.id == license_.policy_id
            else _policy_of(app, license_)
        )
        key = signing_key or load(app, Environment, ctx.tenant_id).active_signing_key

        terms = policy.checkout_terms(
            checkout_id=checkout_id,
            fingerprint=fingerprint,
            ttl=ttl,
            kid=key.kid,
            encrypted=encrypt,
            at=ctx.at,
        )
        plan = license_.plan_checkout(**terms)
        file_key = (
            _file_key(ctx, license_, license_key, master_key=master_key, pepper=pepper)
            if encrypt
            else None
        )
        content = render_file(license_, policy, plan, kid=key.kid, at=ctx.at)
        seed = signing_seed(master_key, ctx.tenant_id, key)
        certificate, issued = _sign(content, seed=seed, file_key=file_key)
        checkout = license_.record_checkout(file=issued, **terms)
        save(app, ctx, license_)
        return CheckedOutFile(license_, checkout, certificate, content.expires_at)

    return app.execute(ctx.tenant_id, attempt, stream=license_id)


class CheckoutFacts(Protocol):
    """What `check_out` decides from: the license as its read models hold it, its
    policy's offline rules, the active signing key and the stream's version, read in
    one snapshot (projections/checkout_facts.py)."""

    @property
    def license(self) -> LicenseContent: ...
    @property
    def rules(self) -> OfflinePolicy: ...
    @property
    def signing_key(self) -> SigningKey | None: ...
    @property
    def version(self) -> int: ...


F = TypeVar("F", bound=CheckoutFacts)
# The checkouts read model's row for a checkout with its file: (file digest, document).
CheckoutRow = Callable[[Checkout], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class IssuedCheckout(Generic[F]):
    checkout: Checkout
    certificate: str
    expires_at: datetime  # the file's own expiry (header `expiresAt`)
    facts: F  # what it was decided from (the response shows that license)


def check_out(
    app: LedgerApplication,
    ctx: CommandContext,
    license_id: UUID,
    read: Callable[[], F | None],
    *,
    checkout_id: UUID,
    fingerprint: str | None,
    ttl: int | None,
    master_key: bytes,
    row: CheckoutRow,
    attempts: int = DEFAULT_COMMAND_ATTEMPTS,
) -> IssuedCheckout[F]:
    """An unencrypted offline file (`license.checked_out`), decided from read models.

    Three statements, not a command's ~29 round trips: the facts (`read`), then the
    event appended at the version read with them together with the checkout's row
    (`record_checkout`, migration 0016). The same rule (`plan_checkout_of`), file
    (`render_file`) and event fields (`checked_out_fields`) as `checkout_license`, which
    still serves encrypted files (they need the license's sealed key). A command that
    changed the license since the read took that version: the append is refused and the
    checkout decided again from fresh facts, so it is exact like any command.
    """
    metadata = ctx.metadata()
    for attempt in range(attempts):
        facts = read()
        if facts is None:
            msg = f"license {license_id} not found"
            raise NotFound(msg)
        key = facts.signing_key or load(app, Environment, ctx.tenant_id).active_signing_key
        rules = facts.rules
        terms = rules.checkout_terms(
            checkout_id=checkout_id,
            fingerprint=fingerprint,
            ttl=ttl,
            kid=key.kid,
            encrypted=False,
            at=ctx.at,
        )
        plan = plan_checkout_of(facts.license, **terms)
        content = render_file(facts.license, rules, plan, kid=key.kid, at=ctx.at)
        seed = signing_seed(master_key, ctx.tenant_id, key)
        certificate, issued = _sign(content, seed=seed, file_key=None)
        version = facts.version + 1
        # As the aggregate keeps it: the file's issue time is the event's.
        checkout = dataclasses.replace(
            plan, file=dataclasses.replace(issued, issued_at=plan.issued_at)
        )
        digest, document = row(checkout)
        recorded_with = RecordedWith(
            "record_checkout",
            # orjson: the document is ours (ids, times, the file), JSON-native throughout.
            (license_id, checkout.id, plan.issued_at, plan.expires_at, digest,
             Jsonb(document, dumps=orjson.dumps)),
        )  # fmt: skip

        chained = partial(
            checked_out_event,
            tenant_id=ctx.tenant_id,
            license_id=license_id,
            version=version,
            fields=checked_out_fields(plan, issued),
            metadata=metadata,
            occurred_at=plan.issued_at,
        )
        with tenant_scope(ctx.tenant_id):
            try:
                app.tenant_recorder.append_chained(chained, metadata, recorded_with=recorded_with)
            except ConcurrencyConflictError:
                conflict_backoff(attempt)
                continue  # the license changed since the read: decide again
        return IssuedCheckout(checkout, certificate, content.expires_at, facts)
    msg = f"license {license_id} kept changing: the checkout was not recorded"
    raise ConcurrencyConflictError(msg)


def checked_out_event(
    recorded_at: datetime,
    *,
    tenant_id: UUID,
    license_id: UUID,
    version: int,
    fields: dict[str, Any],
    metadata: dict[str, Any],
    occurred_at: datetime,
) -> list[ChainedEvent]:
    """The log row of the `license.checked_out` event `check_out` appends, built field by
    field: the row `TenantRecorder.chained` makes of the StoredEvent `save` would store
    (a unit test compares them), without encoding the event to JSON and back."""
    return [
        ChainedEvent(
            tenant_id=tenant_id,
            stream_id=license_id,
            stream_type=License.stream_type,
            version=version,
            event_id=event_id_of(tenant_id, license_id, version),
            event_type=CHECKED_OUT,
            schema_version=1,
            data=fields,
            metadata=metadata,
            occurred_at=occurred_at,
            recorded_at=recorded_at,
        )
    ]


def regenerate_files(
    app: LedgerApplication,
    ctx: CommandContext,
    license_id: UUID,
    *,
    master_key: bytes,
    also: AlsoInTransaction | None = None,
) -> int:
    """Re-sign every unexpired checkout whose file no longer says what it should.

    Same checkout expiry, the active key, the license as it is now; each new file is a
    `license.file_regenerated` event. Converges: a file already current is left alone,
    so running this twice (two workers, a replayed batch) regenerates nothing twice.
    `also` runs in the transaction that records the files, when there are any.
    Returns how many files were regenerated.
    """

    def attempt() -> int:
        try:
            license_ = load(app, License, license_id)
        except NotFound:
            return 0  # deleted: its files can no longer be re-issued
        policy = _policy_of(app, license_)
        key = load(app, Environment, ctx.tenant_id).active_signing_key
        seed: bytes | None = None
        regenerated = 0
        for checkout in license_.checkouts(ctx.at):
            content = render_file(license_, policy, checkout, kid=key.kid, at=ctx.at)
            if checkout.file is not None and checkout.file.digest == content.digest:
                continue
            if checkout.encrypted and license_.sealed_file_key is None:
                continue  # no key to encrypt with; the file cannot be re-issued
            file_key = (
                open_file_key(master_key, ctx.tenant_id, license_.id, license_.sealed_file_key)
                if checkout.encrypted and license_.sealed_file_key is not None
                else None
            )
            seed = seed or signing_seed(master_key, ctx.tenant_id, key)
            _, issued = _sign(content, seed=seed, file_key=file_key)
            license_.record_file_regenerated(
                checkout_id=checkout.id, kid=key.kid, file=issued, at=ctx.at
            )
            regenerated += 1
        if regenerated:
            _save_with(app, ctx, license_, also)
        return regenerated

    return app.execute(ctx.tenant_id, attempt, stream=license_id)


def _save_with(
    app: LedgerApplication, ctx: CommandContext, license_: License, also: AlsoInTransaction | None
) -> None:
    if also is None:
        save(app, ctx, license_)
        return
    projector = app.projector

    def project(curs: Cursor[DictRow]) -> None:
        if projector is not None:
            projector.project(curs, ctx.tenant_id, [license_])
        also(curs)

    app.save(license_, metadata=ctx.metadata(), project=project)
