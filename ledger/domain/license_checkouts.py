"""Offline checkouts of the License aggregate (API.md §7): recorded here, signed outside.

A checkout is a promise: until `expires_at` (issue time + ttl) the license may be used
offline on the bound machine, and the server keeps its file current (the re-signer
publishes a new file when the license, its policy or the signing key changes). Each
issued file is recorded in the event that issued it (`CheckedOut`, `FileRegenerated`),
so the ledger says exactly which bytes were handed out, and the checkouts read model is
a function of the events.

State keeps the current file only while its checkout is unexpired (older files stay in
the events): a license checked out for years does not carry its whole file history in
every snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import NotRequired
from typing import Protocol
from typing import TypedDict
from typing import Unpack
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.checks import Issues
from ledger.domain.checks import check_text
from ledger.domain.codes import LicenseStatus
from ledger.domain.errors import BusinessRuleViolation
from ledger.domain.errors import CheckoutTtlInvalid
from ledger.domain.errors import NotFound
from ledger.domain.errors import OfflineNotAllowed
from ledger.domain.errors import ValidationFailed
from ledger.domain.license_machines import LicenseMachines
from ledger.domain.license_machines import check_usable
from ledger.domain.machine import Machine
from ledger.domain.timestamps import from_iso
from ledger.domain.timestamps import require_utc
from ledger.domain.timestamps import to_iso

TTL_MIN = 3600
TTL_MAX = 7_776_000
TTL_DEFAULT = 1_209_600
CHECKOUT_EXPIRED = "CHECKOUT_EXPIRED"


@dataclass(frozen=True)
class IssuedFile:
    """The file a checkout currently publishes (its certificate and what it says)."""

    certificate: str
    digest: str  # SHA-256 of the file's content apart from issuedAt (see ledger.offline)
    issued_at: datetime
    expires_at: datetime  # the file's own expiry (never after the checkout's)


@dataclass(frozen=True)
class Checkout:
    id: UUID
    fingerprint: str | None
    machine_id: UUID | None
    ttl: int
    kid: str
    issued_at: datetime
    expires_at: datetime
    encrypted: bool = False
    file: IssuedFile | None = None  # None once the checkout has expired


def _check_file(certificate: object, digest: object) -> None:
    issues = Issues()
    check_text(issues, "certificate", certificate, min_len=1, max_len=200_000)
    check_text(issues, "digest", digest, min_len=64, max_len=64)
    issues.raise_if_any()


class LicenseCheckouts(LicenseMachines):
    def _start_checkouts(self) -> None:
        # By checkout id, in issue order.
        self._checkouts: dict[str, dict[str, Any]] = {}
        # Ids of the checkouts that still hold a file (unexpired as of the last event):
        # pruning walks these, not the license's whole checkout history.
        self._holding_files: list[str] = []
        # The license's offline file key, sealed under the master key (ledger.offline.keys).
        self.sealed_file_key: str | None = None

    @property
    def updated_at(self) -> datetime:
        """When the license itself last changed: offline events (a file handed out or
        re-signed, a sealed key) are not changes of the license, so `updatedAt` — and
        every read model but the checkouts' — stays as it was (a checkout then writes only
        its own row; ledger.commands.checkouts)."""
        if getattr(self, "_offline_version", None) == self.version:
            changed: datetime = self._document_updated_at
            return changed
        return self.modified_on

    def _offline_event(self) -> None:
        # Called first by each offline mutator, before the library moves `version` and
        # `modified_on` to this event: remember when the streak of offline events began.
        if getattr(self, "_offline_version", None) != self.version:
            self._document_updated_at = self.modified_on
        self._offline_version = self.version + 1

    def checkouts(self, now: datetime | None = None) -> list[Checkout]:
        """All checkouts, or only those still unexpired at `now`."""
        if now is None:
            return [_view(c) for c in self._checkouts.values()]
        # Stored times are fixed-width UTC ISO strings: they compare as the times do.
        moment = to_iso(now)
        return [_view(c) for c in self._checkouts.values() if c["expires_at"] > moment]

    def file_digests(self, now: datetime) -> dict[UUID, str | None]:
        """Checkouts unexpired at `now` -> the digest of their current file: what a read
        model compares to find the few rows a save changed, without building views."""
        moment = to_iso(now)
        return {
            UUID(checkout_id): None if c["file"] is None else c["file"]["digest"]
            for checkout_id, c in self._checkouts.items()
            if c["expires_at"] > moment
        }

    @property
    def checkout_count(self) -> int:
        """How many checkouts the license has ever had."""
        return len(self._checkouts)

    def checkout(self, checkout_id: UUID) -> Checkout:
        record = self._checkouts.get(str(checkout_id))
        if record is None:
            msg = f"checkout {checkout_id} not found"
            raise NotFound(msg)
        return _view(record)

    # Offline checkouts

    def plan_checkout(self, **terms: Unpack[CheckoutTerms]) -> Checkout:
        """The checkout `record_checkout` would record, checked but not recorded: the
        caller renders and signs its file from it (`plan_checkout_of`)."""
        self.check_not_deleted()
        return plan_checkout_of(self, **terms)

    def record_checkout(
        self, *, file: IssuedFile | None = None, **terms: Unpack[CheckoutTerms]
    ) -> Checkout:
        """Record an offline license file issued now (`license.checked_out`).

        `file` is the signed file rendered from `plan_checkout` with the same terms.
        """
        plan = self.plan_checkout(**terms)
        self._checked_out(**checked_out_fields(plan, file), timestamp=plan.issued_at)
        return self.checkout(plan.id)

    @event("CheckedOut")
    def _checked_out(
        self,
        *,
        checkout_id: str,
        fingerprint: str | None,
        machine_id: str | None,
        ttl: int,
        kid: str,
        expires_at: str,
        timestamp: datetime,
        # Absent from events recorded before files were stored with their checkout.
        encrypted: bool = False,
        certificate: str | None = None,
        digest: str | None = None,
        file_expires_at: str | None = None,
    ) -> None:
        self._offline_event()
        self._forget_expired_files(timestamp)
        file = _file_record(certificate, digest, to_iso(timestamp), file_expires_at)
        self._checkouts[checkout_id] = {
            "checkout_id": checkout_id,
            "fingerprint": fingerprint,
            "machine_id": machine_id,
            "ttl": ttl,
            "kid": kid,
            "issued_at": to_iso(timestamp),
            "expires_at": expires_at,
            "encrypted": encrypted,
            "file": file,
        }
        if file is not None:
            self._holding_files.append(checkout_id)

    def record_file_regenerated(
        self,
        *,
        checkout_id: UUID,
        kid: str,
        file: IssuedFile | None = None,
        at: datetime,
    ) -> None:
        """The re-signer re-issued a checkout's file (same checkout expiry, maybe a new
        key); `license.file_regenerated` carries the new file."""
        self.check_not_deleted()
        at = require_utc(at)
        current = self.checkout(checkout_id)
        if current.expires_at <= at:
            msg = f"checkout {checkout_id} has expired: its file is no longer kept current"
            raise BusinessRuleViolation(msg, CHECKOUT_EXPIRED)
        if file is not None:
            _check_file(file.certificate, file.digest)
        self._file_regenerated(
            checkout_id=str(checkout_id),
            kid=kid,
            certificate=None if file is None else file.certificate,
            digest=None if file is None else file.digest,
            file_expires_at=None if file is None else to_iso(file.expires_at),
            timestamp=at,
        )

    @event("FileRegenerated")
    def _file_regenerated(
        self,
        *,
        checkout_id: str,
        kid: str,
        timestamp: datetime,
        certificate: str | None = None,
        digest: str | None = None,
        file_expires_at: str | None = None,
    ) -> None:
        self._offline_event()
        self._forget_expired_files(timestamp)
        checkout = self._checkouts[checkout_id]
        checkout["kid"] = kid
        checkout["file"] = _file_record(certificate, digest, to_iso(timestamp), file_expires_at)
        if checkout["file"] is not None and checkout_id not in self._holding_files:
            self._holding_files.append(checkout_id)

    def seal_file_key(self, *, sealed_key: str, at: datetime) -> None:
        """Keep the license's offline file key (sealed under the master key) so that
        encrypted files can be issued and re-signed without the license key."""
        self.check_not_deleted()
        issues = Issues()
        check_text(issues, "sealedKey", sealed_key, min_len=1, max_len=1000)
        issues.raise_if_any()
        if sealed_key != self.sealed_file_key:
            self._file_key_sealed(sealed_key=sealed_key, timestamp=require_utc(at))

    @event("FileKeySealed")
    def _file_key_sealed(self, sealed_key: str, timestamp: datetime) -> None:
        self._offline_event()
        self.sealed_file_key = sealed_key

    def _forget_expired_files(self, now: datetime) -> None:
        # By the event's own time, so replaying the events gives the same state.
        moment = to_iso(now)
        kept = []
        for checkout_id in self._holding_files:
            checkout = self._checkouts[checkout_id]
            if checkout["expires_at"] > moment:
                kept.append(checkout_id)
            else:
                checkout["file"] = None
        self._holding_files = kept


def checked_out_fields(plan: Checkout, file: IssuedFile | None) -> dict[str, Any]:
    """The `license.checked_out` event's fields (but its time, `plan.issued_at`) for a
    planned checkout and its signed file: what `record_checkout` records, and what a
    checkout decided from read models appends (ledger.commands.checkouts)."""
    if file is not None:
        _check_file(file.certificate, file.digest)
    return {
        "checkout_id": str(plan.id),
        "fingerprint": plan.fingerprint,
        "machine_id": None if plan.machine_id is None else str(plan.machine_id),
        "ttl": plan.ttl,
        "kid": plan.kid,
        "expires_at": to_iso(plan.expires_at),
        "encrypted": plan.encrypted,
        "certificate": None if file is None else file.certificate,
        "digest": None if file is None else file.digest,
        "file_expires_at": None if file is None else to_iso(file.expires_at),
    }


class CheckoutTerms(TypedDict):
    """What a checkout is asked for, and the policy's offline rules it is held to
    (`OfflinePolicy.checkout_terms` fills those in)."""

    checkout_id: UUID
    fingerprint: str | None
    ttl: int | None
    kid: str
    offline_allowed: bool
    offline_max_days: int
    require_fingerprint: bool
    expired_blocks: bool
    encrypted: NotRequired[bool]
    at: datetime


class CheckoutSubject(Protocol):
    """What deciding a checkout reads of a license: the aggregate, or its read-model rows
    (projections/checkout_facts.py), so both ways of checking out apply one rule."""

    def status_at(self, now: datetime) -> LicenseStatus: ...

    def machine_by_fingerprint(self, fingerprint: str) -> Machine | None: ...


def plan_checkout_of(subject: CheckoutSubject, **terms: Unpack[CheckoutTerms]) -> Checkout:
    """The checkout of a live license, checked (API.md §7): ttl in range and within
    `offline_max_days` (without `ttl`, the 14-day default capped by it), offline allowed,
    a license that could validate, the fingerprint of an active machine when one is given
    (required when the policy requires fingerprints)."""
    at = require_utc(terms["at"])
    ttl, fingerprint = terms["ttl"], terms["fingerprint"]
    offline_max_days = terms["offline_max_days"]
    cap = offline_max_days * 86400
    ttl = min(TTL_DEFAULT, cap) if ttl is None else ttl
    if isinstance(ttl, bool) or not TTL_MIN <= ttl <= min(TTL_MAX, cap):
        msg = f"ttl must be between {TTL_MIN} and {min(TTL_MAX, cap)} seconds"
        raise CheckoutTtlInvalid(msg, {"min": TTL_MIN, "max": min(TTL_MAX, cap)})
    if not terms["offline_allowed"]:
        raise OfflineNotAllowed("the policy does not allow offline use")
    check_usable(subject.status_at(at), expired_blocks=terms["expired_blocks"])
    machine_id = None
    if fingerprint is None:
        if terms["require_fingerprint"]:
            raise ValidationFailed.single(["fingerprint"], "is required by the policy")
    else:
        machine = subject.machine_by_fingerprint(fingerprint)
        if machine is None:
            msg = "fingerprint is not an active machine of this license"
            raise BusinessRuleViolation(msg, "FINGERPRINT_NOT_FOUND")
        machine_id = machine.id
    return Checkout(
        id=terms["checkout_id"],
        fingerprint=fingerprint,
        machine_id=machine_id,
        ttl=ttl,
        kid=terms["kid"],
        issued_at=at,
        expires_at=at + timedelta(seconds=ttl),
        encrypted=terms.get("encrypted", False),
    )


def _file_record(
    certificate: str | None, digest: str | None, issued_at: str, expires_at: str | None
) -> dict[str, Any] | None:
    if certificate is None or digest is None or expires_at is None:
        return None
    return {
        "certificate": certificate,
        "digest": digest,
        "issued_at": issued_at,
        "expires_at": expires_at,
    }


def _view(record: dict[str, Any]) -> Checkout:
    file = record.get("file")
    return Checkout(
        id=UUID(record["checkout_id"]),
        fingerprint=record["fingerprint"],
        machine_id=None if record["machine_id"] is None else UUID(record["machine_id"]),
        ttl=record["ttl"],
        kid=record["kid"],
        issued_at=from_iso(record["issued_at"]),
        expires_at=from_iso(record["expires_at"]),
        encrypted=bool(record.get("encrypted", False)),
        file=None
        if file is None
        else IssuedFile(
            certificate=file["certificate"],
            digest=file["digest"],
            issued_at=from_iso(file["issued_at"]),
            expires_at=from_iso(file["expires_at"]),
        ),
    )
