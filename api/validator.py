"""The validation hot path (API.md §5): read → decide → (count a use) → serialize → sign.

- Read: the process's facts cache (api/facts_cache.py), else one statement
  (`projections.validation`), one round trip.
- Decide: the pure `ledger.domain.validation.validate`.
- Count: only a `valid: true` on a policy with `maxUses`, or the first ever `valid: true`
  (`license.activated`), runs a command (`ledger.commands.validations`), committed before
  the answer; a cap reached concurrently turns the answer into USAGE_LIMIT_EXCEEDED.
- Record: `validation.success|failed` goes to the in-process batcher (no commit here).
- Answer: the body is serialized once with orjson and signed over those exact bytes.

Unknown keys (and keys of a deleted license) answer NOT_FOUND unsigned: no tenant, so no
signing key, can be named for them. An SDK configured with a signing key therefore
raises `SignatureVerificationError` for them (it fails closed); see docs/validation.md.
When the caller names its environment with an optional Bearer API key, NOT_FOUND
(including another environment's key) is signed with that environment's secret.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from api.answers import Remembered
from api.answers import RequestKey
from api.answers import body
from api.answers import body_prefix
from api.answers import remember
from api.facts_cache import FactsCache
from api.metrics import VALIDATIONS
from api.response_signing import ResponseSecrets
from api.response_signing import signature_headers
from api.services import Services
from api.validation_events import ValidationEventBatcher
from api.validation_events import ValidationOutcome
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.commands.validations import record_valid_validation
from ledger.crypto import keyed_digest
from ledger.domain.codes import ValidationCode
from ledger.domain.environment import Environment
from ledger.domain.errors import LicenseStateError
from ledger.domain.errors import NotFound
from ledger.domain.errors import UsageLimitExceeded
from ledger.domain.validation import Decision
from ledger.domain.validation import LicenseFacts
from ledger.domain.validation import decision_holds_until
from ledger.domain.validation import effective_max_uses
from ledger.domain.validation import validate
from ledger.store.tenancy import tenant_scope
from projections.validation import ValidationFacts
from projections.validation import read_by_id
from projections.validation import read_by_key
from projections.wire import iso_ms

# Reads after the use command found the license changed (suspended, renewed...): enough
# for any realistic interleaving; the last one lets a refusal surface as the error.
_DECIDE_ATTEMPTS = 3


@dataclass(frozen=True)
class ValidationRequest:
    fingerprint: str | None = None
    entitlements: tuple[str, ...] = ()
    nonce: str | None = None
    request_id: str | None = None

    @property
    def answer_key(self) -> RequestKey:
        """What an answer depends on besides the facts and the time (not the nonce)."""
        return (self.fingerprint, self.entitlements)

    @classmethod
    def of(cls, body: dict[str, Any], request_id: str | None) -> ValidationRequest:
        return cls(
            fingerprint=body.get("fingerprint"),
            entitlements=tuple(body.get("entitlements") or ()),
            nonce=body.get("nonce"),
            request_id=request_id,
        )


@dataclass(frozen=True)
class SignedAnswer:
    body: bytes
    headers: dict[str, str]


class Validator:
    def __init__(
        self,
        services: Services,
        events: ValidationEventBatcher | None = None,
        cache: FactsCache | None = None,
    ) -> None:
        self._services = services
        config = services.config
        self.cache = cache or FactsCache(config.database_url, max_entries=config.facts_cache_size)
        self.events = events or ValidationEventBatcher(
            lambda: services.ledger, interval=services.config.validation_flush_ms / 1000
        )
        self._secrets = ResponseSecrets(services.master_key, self._secret_from_stream)

    # Entry points

    def by_key(
        self, key: str, request: ValidationRequest, *, caller_tenant: UUID | None = None
    ) -> SignedAnswer:
        """`POST /licenses/validate-key`. `caller_tenant`: the environment of an optional
        Bearer key; a license of any other environment is then NOT_FOUND."""
        now = self._services.clock()
        key_hash = keyed_digest(self._services.pepper, key)

        def read() -> ValidationFacts | None:
            ticket = self.cache.ticket()
            with self._services.ledger.autocommit() as curs:
                facts = read_by_key(curs, key_hash)
            if facts is not None and _cacheable(facts):
                self.cache.put(key_hash, facts, ticket)
            if facts is None or caller_tenant not in (None, facts.tenant_id):
                return None
            return facts

        cached = self.cache.entry(key_hash)
        facts: ValidationFacts | None
        if cached is None:
            facts = read()
        elif caller_tenant not in (None, cached.facts.tenant_id):
            facts = None
        else:
            facts = cached.facts
            again = cached.answers.get(request.answer_key)
            if again is not None and again.holds_at(now):
                return self._repeat(facts, again, request, now)
        if facts is None:
            secret = None if caller_tenant is None else self._tenant_secret(caller_tenant)
            return self._not_found(request, now, secret)
        actor = Actor("license", str(facts.license.id))
        answers = None if cached is None else cached.answers
        return self._validate(facts, read, request, now, actor, answers=answers)

    def by_id(
        self, tenant_id: UUID, license_id: UUID, request: ValidationRequest, actor: Actor
    ) -> SignedAnswer | None:
        """`POST /licenses/{id}/validate`; None when the tenant has no such live license."""
        now = self._services.clock()

        def read() -> ValidationFacts | None:
            with self._services.ledger.autocommit() as curs:
                return read_by_id(curs, tenant_id, license_id)

        facts = read()
        if facts is None:
            return None
        return self._validate(facts, read, request, now, actor)

    # The decision and what follows it

    def _validate(
        self,
        facts: ValidationFacts,
        read: Callable[[], ValidationFacts | None],
        request: ValidationRequest,
        now: datetime,
        actor: Actor,
        *,
        answers: dict[RequestKey, Remembered] | None = None,
    ) -> SignedAnswer:
        """`answers`: where to remember the answer, when `facts` came from the cache (so
        no command runs for them, see `_cacheable`)."""
        cached = facts
        ctx = CommandContext(facts.tenant_id, actor, now, request_id=request.request_id)
        for attempt in range(_DECIDE_ATTEMPTS):
            decision = self._decide(facts, request, now)
            if not decision.valid:
                break
            if effective_max_uses(facts.license, facts.policy) is None and facts.activated:
                break  # nothing to count, not the first: no command at all
            try:
                used = record_valid_validation(self._services.ledger, ctx, facts.license.id)
            except UsageLimitExceeded as e:
                # The cap was reached by concurrent validations since the read.
                license_ = dataclasses.replace(facts.license, uses_count=e.details["current"])
                facts = dataclasses.replace(facts, license=license_)
                decision = dataclasses.replace(
                    decision, valid=False, code=ValidationCode.USAGE_LIMIT_EXCEEDED
                )
                break
            except (LicenseStateError, NotFound):
                # The license stopped validating since the read: read and decide again.
                if attempt == _DECIDE_ATTEMPTS - 1:
                    raise
                fresh = read()
                if fresh is None:  # deleted meanwhile: still this environment's answer
                    return self._not_found(request, now, self._secret_of(facts))
                facts = fresh
                continue
            license_ = dataclasses.replace(facts.license, uses_count=used.uses_count)
            facts = dataclasses.replace(facts, license=license_)
            break
        data = _result(decision, facts.license)
        metadata = _metadata(data, request, now)
        prefix = body_prefix(data)
        if answers is not None and facts is cached:
            until = decision_holds_until(facts.license, facts.policy, decision, now)
            remember(answers, request.answer_key, Remembered(decision, prefix, now, until))
        self._record(facts, decision, request, now)
        return self._signed(decision.code, body(prefix, metadata), now, self._secret_of(facts))

    def _repeat(
        self, facts: ValidationFacts, again: Remembered, request: ValidationRequest, now: datetime
    ) -> SignedAnswer:
        """The answer made earlier for the same facts and request, at `now`."""
        decision = again.decision
        metadata = _metadata({"code": decision.code, "missing": decision.missing}, request, now)
        self._record(facts, decision, request, now)
        return self._signed(
            decision.code, body(again.prefix, metadata), now, self._secret_of(facts)
        )

    @staticmethod
    def _decide(facts: ValidationFacts, request: ValidationRequest, now: datetime) -> Decision:
        return validate(
            facts.license,
            facts.policy,
            facts.machines,
            fingerprint=request.fingerprint,
            requested=request.entitlements,
            now=now,
        )

    def _record(
        self,
        facts: ValidationFacts,
        decision: Decision,
        request: ValidationRequest,
        now: datetime,
    ) -> None:
        machine = decision.machine
        self.events.record(
            ValidationOutcome(
                tenant_id=facts.tenant_id,
                license_id=facts.license.id,
                valid=decision.valid,
                code=decision.code,
                at=now,
                machine_id=None if machine is None else machine.id,
                fingerprint=request.fingerprint,
                missing=decision.missing,
                request_id=request.request_id,
            )
        )

    def _not_found(
        self, request: ValidationRequest, now: datetime, secret: bytes | None
    ) -> SignedAnswer:
        data = {
            "valid": False,
            "code": ValidationCode.NOT_FOUND,
            "license": None,
            "machine": None,
            "entitlements": [],
        }
        return self._answer(data, request, now, secret)

    # Serialization and signing

    def _answer(
        self, data: dict[str, Any], request: ValidationRequest, now: datetime, secret: bytes | None
    ) -> SignedAnswer:
        metadata = _metadata(data, request, now)
        return self._signed(data["code"], body(body_prefix(data), metadata), now, secret)

    @staticmethod
    def _signed(code: str, answer: bytes, now: datetime, secret: bytes | None) -> SignedAnswer:
        _validations(code).inc()
        headers = {} if secret is None else signature_headers(secret, int(now.timestamp()), answer)
        return SignedAnswer(answer, headers)

    def _secret_of(self, facts: ValidationFacts) -> bytes:
        return self._secrets.secret(facts.tenant_id, facts.encrypted_response_secret)

    def _tenant_secret(self, tenant_id: UUID) -> bytes:
        with self._services.ledger.reading(tenant_id) as curs:
            row = curs.execute(
                "SELECT encrypted_response_secret FROM tenants WHERE tenant_id = %s",
                (tenant_id,),
            ).fetchone()
        return self._secrets.secret(
            tenant_id, None if row is None else row["encrypted_response_secret"]
        )

    def _secret_from_stream(self, tenant_id: UUID) -> str:
        """Only for a tenant row the read model has no ciphertext for (see migration 0005)."""
        ledger = self._services.ledger
        with tenant_scope(tenant_id):
            environment: object = ledger.repository.get(tenant_id)
        assert isinstance(environment, Environment)
        return environment.encrypted_response_secret


@functools.cache
def _validations(code: str) -> Any:
    return VALIDATIONS.labels(str(code))  # one child per code, looked up once


def _cacheable(facts: ValidationFacts) -> bool:
    """Facts whose `valid: true` runs no command: nothing to count, not the first."""
    return facts.activated and effective_max_uses(facts.license, facts.policy) is None


def _metadata(data: dict[str, Any], request: ValidationRequest, now: datetime) -> dict[str, Any]:
    """`metadata` of the answer; takes `missing` out of `data` (it is metadata's, and
    only for ENTITLEMENTS_MISSING)."""
    metadata: dict[str, Any] = {"ts": iso_ms(now)}
    if request.nonce is not None:
        metadata["nonce"] = request.nonce
    missing = data.pop("missing", ())
    if data["code"] == ValidationCode.ENTITLEMENTS_MISSING:
        metadata["missing"] = list(missing)
    return metadata


def _result(decision: Decision, license_: LicenseFacts) -> dict[str, Any]:
    machine = decision.machine
    return {
        "valid": decision.valid,
        "code": decision.code,
        "license": {
            "id": str(license_.id),
            "status": decision.status,
            "name": license_.name,
            "expiresAt": iso_ms(license_.expires_at),
            "usesCount": license_.uses_count,
            "maxMachinesOverride": license_.max_machines_override,
            "maxUsesOverride": license_.max_uses_override,
        },
        "machine": None
        if machine is None
        else {
            "id": str(machine.id),
            "fingerprint": machine.fingerprint,
            "name": machine.name,
            "heartbeatStatus": machine.heartbeat_status,
        },
        "entitlements": list(decision.entitlements),
        "missing": list(decision.missing),
    }
