"""A small licensing world driven by random command sequences (hypothesis chooses them).

Each step is one command through the command layer at its own time (one second after
the previous one); refused commands (a domain error) record nothing, as in the API.
After each step the live license documents are captured as `GET /licenses/{id}` reads
them at that time, so `asOf` can be checked against them afterwards.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from uuid import UUID
from uuid import uuid4

from ledger.accounts import open_account
from ledger.application import LedgerApplication
from ledger.commands import catalogue
from ledger.commands import licenses
from ledger.commands.api_keys import create_api_key
from ledger.commands.api_keys import revoke_api_key
from ledger.commands.base import Actor
from ledger.commands.base import CommandContext
from ledger.commands.base import change
from ledger.domain.errors import DomainError
from ledger.domain.license import License
from ledger.domain.policy import Policy
from projections.queries import get_license
from tests.integration.audit.conftest import MASTER_KEY
from tests.integration.audit.conftest import PEPPER

T0 = datetime(2030, 1, 1, tzinfo=UTC)
FINGERPRINTS = [f"fingerprint-{i:02d}" for i in range(5)]

# Machine actions are listed more than once: they are what a license history is mostly
# made of. Terminal actions (revoke, ban, delete) go through only one time in four.
ACTIONS = (
    "issue", "suspend", "reinstate", "revoke", "ban", "renew", "update", "repolicy",
    "delete", "use", "reset", "attach", "detach", "activate", "activate", "activate",
    "deactivate", "heartbeat", "heartbeat", "die", "policy_update", "policy_attach",
    "api_key", "revoke_key", "product_update", "entitlement_update",
)  # fmt: skip

Step = tuple[str, int, int]


def _rarely(choice: int) -> None:
    if choice % 4:
        raise DomainError("not this time")


@dataclass
class World:
    app: LedgerApplication
    account_id: UUID
    tenant_id: UUID
    product_id: UUID
    policies: list[UUID]
    codes: list[str]
    entitlement_ids: list[UUID]
    public_key: str
    licenses: list[UUID] = field(default_factory=list)
    api_keys: list[UUID] = field(default_factory=list)
    machines: dict[UUID, list[UUID]] = field(default_factory=dict)
    # (time, license id, the live document then, or None when absent)
    captured: list[tuple[datetime, UUID, dict[str, Any] | None]] = field(default_factory=list)
    step: int = 0

    @classmethod
    def open(cls, app: LedgerApplication) -> World:
        opened = open_account(
            app, name="w-" + secrets.token_hex(3), master_key=MASTER_KEY, pepper=PEPPER, at=T0
        )
        live = next(e for n, e in opened.environments.items() if n == "live")
        tenant_id = live.tenant_id
        ctx = CommandContext(tenant_id, Actor("operator"), T0)
        product = catalogue.create_product(
            app, ctx, product_id=uuid4(), name="P", code="p-" + secrets.token_hex(3)
        )
        policies = [
            catalogue.create_policy(
                app, ctx, policy_id=uuid4(), product_id=product.id, name="Desktop",
                template="desktop_app", settings={"max_uses": 5, "duration_days": 30},
            ).id,
            catalogue.create_policy(
                app, ctx, policy_id=uuid4(), product_id=product.id, name="Heartbeat",
                settings={"require_heartbeat": True, "max_machines": 3},
            ).id,
        ]  # fmt: skip
        entitlements = [
            catalogue.create_entitlement(
                app, ctx, entitlement_id=uuid4(), code=f"feat-{i}-{secrets.token_hex(2)}", name="F"
            )
            for i in range(2)
        ]
        return cls(
            app, opened.account_id, tenant_id, product.id, policies,
            [e.code for e in entitlements], [e.id for e in entitlements], live.public_key,
        )  # fmt: skip

    def run(self, steps: list[Step]) -> None:
        for action, a, b in steps:
            self.step += 1
            at = T0 + timedelta(seconds=self.step)
            ctx = CommandContext(
                self.tenant_id, Actor("api_key", "k"), at, request_id=f"r{self.step}"
            )
            # A refused command records nothing, as an API 4xx.
            with contextlib.suppress(DomainError):
                getattr(self, f"_{action}")(ctx, a, b)
            self.capture(at)

    def capture(self, at: datetime) -> None:
        with self.app.reading(self.tenant_id) as curs:
            for license_id in self.licenses:
                self.captured.append((at, license_id, get_license(curs, license_id, at)))

    # Choosing targets

    def _license(self, a: int) -> UUID:
        if not self.licenses:
            raise DomainError("no license yet")
        return self.licenses[a % len(self.licenses)]

    def _on(self, ctx: CommandContext, a: int, decide: Any) -> None:
        change(self.app, ctx, License, self._license(a), decide)

    # Actions (`a`, `b`: hypothesis's choices)

    def _issue(self, ctx: CommandContext, a: int, b: int) -> None:
        if len(self.licenses) >= 4:
            raise DomainError("enough licenses")
        issued = licenses.issue_license(
            self.app, ctx, license_id=uuid4(), product_id=self.product_id,
            policy_id=self.policies[a % 2], pepper=PEPPER,
            max_machines_override=(b % 3) or None, name=f"L{self.step}",
            entitlements=self.codes[: b % 2],
        )  # fmt: skip
        self.licenses.append(issued.license.id)

    def _suspend(self, ctx: CommandContext, a: int, b: int) -> None:
        licenses.suspend_license(self.app, ctx, self._license(a))

    def _reinstate(self, ctx: CommandContext, a: int, b: int) -> None:
        licenses.reinstate_license(self.app, ctx, self._license(a))

    def _revoke(self, ctx: CommandContext, a: int, b: int) -> None:
        _rarely(b)
        licenses.revoke_license(self.app, ctx, self._license(a))

    def _ban(self, ctx: CommandContext, a: int, b: int) -> None:
        _rarely(b)
        licenses.ban_license(self.app, ctx, self._license(a))

    def _renew(self, ctx: CommandContext, a: int, b: int) -> None:
        until = ctx.at + timedelta(days=b % 60 + 1) if b % 2 else None
        licenses.renew_license(self.app, ctx, self._license(a), until)

    def _update(self, ctx: CommandContext, a: int, b: int) -> None:
        changes: dict[str, Any] = {"name": f"renamed {b % 7}", "metadata": {"n": b % 5}}
        if b % 3 == 0:
            # Into the past (expired), the future, or never.
            changes["expires_at"] = [
                None,
                ctx.at - timedelta(seconds=1),
                ctx.at + timedelta(days=3),
            ][b % 9 // 3]
        licenses.update_license(self.app, ctx, self._license(a), changes)

    def _repolicy(self, ctx: CommandContext, a: int, b: int) -> None:
        changes = {"policy_id": self.policies[b % 2]}
        licenses.update_license(self.app, ctx, self._license(a), changes)

    def _delete(self, ctx: CommandContext, a: int, b: int) -> None:
        _rarely(b)
        licenses.delete_license(self.app, ctx, self._license(a))

    def _use(self, ctx: CommandContext, a: int, b: int) -> None:
        licenses.increment_usage(self.app, ctx, self._license(a), b % 3 + 1)

    def _reset(self, ctx: CommandContext, a: int, b: int) -> None:
        licenses.reset_usage(self.app, ctx, self._license(a))

    def _attach(self, ctx: CommandContext, a: int, b: int) -> None:
        licenses.attach_license_entitlements(self.app, ctx, self._license(a), [self.codes[b % 2]])

    def _detach(self, ctx: CommandContext, a: int, b: int) -> None:
        licenses.detach_license_entitlements(self.app, ctx, self._license(a), [self.codes[b % 2]])

    def _activate(self, ctx: CommandContext, a: int, b: int) -> None:
        license_id = self._license(a)

        def activate(lic: License) -> None:
            policy = self.app.repository.get(UUID(lic.policy_id))
            assert isinstance(policy, Policy)
            lic.activate_machine(
                machine_id=uuid4(), fingerprint=FINGERPRINTS[b % len(FINGERPRINTS)],
                name=f"m{b % 4}", platform="linux",
                max_machines=policy.max_machines_for(lic.max_machines_override),
                expired_blocks=policy.expired_blocks, at=ctx.at,
            )  # fmt: skip

        change(self.app, ctx, License, license_id, activate)

    def _active_machine(self, lic: License, b: int) -> UUID:
        active = [m.id for m in lic.active_machines]
        if not active:
            raise DomainError("no machine")
        return active[b % len(active)]

    def _deactivate(self, ctx: CommandContext, a: int, b: int) -> None:
        self._on(ctx, a, lambda lic: lic.deactivate_machine(
            machine_id=self._active_machine(lic, b), at=ctx.at))  # fmt: skip

    def _heartbeat(self, ctx: CommandContext, a: int, b: int) -> None:
        self._on(ctx, a, lambda lic: lic.record_heartbeat(
            machine_id=self._active_machine(lic, b), at=ctx.at))  # fmt: skip

    def _die(self, ctx: CommandContext, a: int, b: int) -> None:
        self._on(ctx, a, lambda lic: lic.machine_died(
            machine_id=self._active_machine(lic, b), at=ctx.at, deactivate=b % 2 == 0))  # fmt: skip

    def _policy_update(self, ctx: CommandContext, a: int, b: int) -> None:
        settings: Any = {"max_machines": b % 4 or None, "max_uses": (b // 4) % 6 or None}
        catalogue.update_policy(self.app, ctx, self.policies[a % 2], {}, settings)

    def _policy_attach(self, ctx: CommandContext, a: int, b: int) -> None:
        catalogue.attach_policy_entitlements(
            self.app, ctx, self.policies[a % 2], [self.codes[b % 2]]
        )

    def _api_key(self, ctx: CommandContext, a: int, b: int) -> None:
        issued = create_api_key(
            self.app, ctx, api_key_id=uuid4(), environment="live", name=f"k{b % 9}",
            scopes=["licenses:read"] if b % 2 else [], expires_at=None, pepper=PEPPER,
        )  # fmt: skip
        self.api_keys.append(issued.api_key.id)

    def _revoke_key(self, ctx: CommandContext, a: int, b: int) -> None:
        if not self.api_keys:
            raise DomainError("no key")
        revoke_api_key(self.app, ctx, self.api_keys[a % len(self.api_keys)])

    def _product_update(self, ctx: CommandContext, a: int, b: int) -> None:
        catalogue.update_product(self.app, ctx, self.product_id, {"name": f"P{b % 5}"})

    def _entitlement_update(self, ctx: CommandContext, a: int, b: int) -> None:
        catalogue.update_entitlement(
            self.app, ctx, self.entitlement_ids[a % 2], {"description": f"d{b % 5}"}
        )
