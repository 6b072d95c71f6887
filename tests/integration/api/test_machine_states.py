"""A license's machines over random sequences of operations match a simple model.

Hypothesis drives activate / deactivate / heartbeat / suspend / reinstate / renew /
clock advance against the real API (in-process, real PostgreSQL, the worker's timer
loops run after every advance) and compares every answer, and the listed machines, with
a model of a dozen lines: seats, license state, heartbeat deadlines.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

import pytest
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import rule
from hypothesis.stateful import run_state_machine_as_test

from api.app import create_app
from api.config import Config
from api.services import Services
from ledger.application import LedgerApplication
from ledger.commands import licenses
from ledger.domain.errors import InvalidTransition
from ledger.domain.templates import PolicySettings
from tests.integration.api.conftest import ADMIN_TOKEN
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.support.machines import FakeClock
from tests.support.machines import IssuedLicense
from tests.support.machines import context
from tests.support.machines import issue_license
from workers.timers import HeartbeatDeadlines
from workers.timers import LicenseExpiries

SEATS = 2
INTERVAL = timedelta(minutes=10)
POLICY: PolicySettings = {
    "max_machines": SEATS,
    "allow_machine_transfer": True,
    "require_heartbeat": True,
    "heartbeat_interval_minutes": 10,
    "heartbeat_cull_strategy": "DEACTIVATE_DEAD",
}
FINGERPRINTS = [f"fp-model-{i}" for i in range(4)]


@pytest.fixture(scope="module")
def config(database: str, tmp_path_factory: pytest.TempPathFactory) -> Config:
    return Config.from_env(
        {
            "DATABASE_URL": database,
            "LICENTRIC_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "LICENTRIC_ADMIN_TOKEN": ADMIN_TOKEN,
            "LICENTRIC_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            "LICENTRIC_RATE_LIMITS": "off",
        }
    )


@dataclass
class ModelMachine:
    id: str
    since: datetime  # activation or last ping
    started: bool

    def dead_at(self, now: datetime) -> bool:
        return self.since + INTERVAL <= now


def test_machines_follow_the_model(
    config: Config, ledger: LedgerApplication, acme: Account
) -> None:
    clock = FakeClock()
    client = CheckedClient(create_app(config, services=Services(ledger, config, clock=clock)))
    timers = [HeartbeatDeadlines(ledger, clock=clock), LicenseExpiries(ledger, clock=clock)]
    tenant_id = acme.live.tenant_id

    class LicenseMachines(RuleBasedStateMachine):
        lic: IssuedLicense
        machines: dict[str, ModelMachine]
        suspended: bool
        expires_at: datetime

        @initialize()
        def issue(self) -> None:
            self.expires_at = clock() + timedelta(hours=2)
            self.lic = issue_license(
                ledger,
                config.pepper,
                tenant_id,
                settings=POLICY,
                expires_at=self.expires_at,
                at=clock(),
            )
            self.machines = {}
            self.suspended = False

        @rule(fp=st.sampled_from(FINGERPRINTS))
        def activate(self, fp: str) -> None:
            result = client.post("/api/v1/machines", auth=self.lic.auth, json={"fingerprint": fp})
            if self.suspended:
                assert result.json["code"] == "LICENSE_SUSPENDED"
            elif self.expires_at <= clock():
                assert result.json["code"] == "LICENSE_EXPIRED"
            elif fp in self.machines:
                assert result.status_code == 200
                assert result.json["data"]["id"] == self.machines[fp].id
            elif len(self.machines) >= SEATS:
                assert result.json["code"] == "MACHINE_LIMIT_EXCEEDED"
            else:
                assert result.status_code == 201, result.text
                self.machines[fp] = ModelMachine(result.json["data"]["id"], clock(), False)

        @rule(fp=st.sampled_from(FINGERPRINTS))
        def deactivate(self, fp: str) -> None:
            machine = self.machines.pop(fp, None)
            if machine is not None:
                url = f"/api/v1/machines/{machine.id}"
                assert client.delete(url, auth=self.lic.auth).status_code == 204

        @rule(fp=st.sampled_from(FINGERPRINTS))
        def heartbeat(self, fp: str) -> None:
            machine = self.machines.get(fp)
            if machine is not None:
                url = f"/api/v1/machines/{machine.id}/heartbeat"
                result = client.post(url, auth=self.lic.auth)
                assert result.status_code == 200, result.text
                assert result.json["data"]["heartbeatStatus"] == "ALIVE"
                machine.since, machine.started = clock(), True

        @rule()
        def suspend_or_reinstate(self) -> None:
            ctx = context(tenant_id, clock())
            if self.suspended:
                licenses.reinstate_license(ledger, ctx, self.lic.license_id)
            elif self.expires_at <= clock():
                # Only an active license can be suspended (API.md §4): refused, unchanged.
                with pytest.raises(InvalidTransition):
                    licenses.suspend_license(ledger, ctx, self.lic.license_id)
                return
            else:
                licenses.suspend_license(ledger, ctx, self.lic.license_id)
            self.suspended = not self.suspended

        @rule(hours=st.integers(min_value=1, max_value=4))
        def renew(self, hours: int) -> None:
            self.expires_at = clock() + timedelta(hours=hours)
            licenses.renew_license(
                ledger, context(tenant_id, clock()), self.lic.license_id, self.expires_at
            )

        @rule(minutes=st.integers(min_value=1, max_value=25))
        def advance(self, minutes: int) -> None:
            now = clock.advance(timedelta(minutes=minutes))
            for timer in timers:
                while timer.run_once():
                    pass
            # DEACTIVATE_DEAD: a missed deadline frees the seat.
            self.machines = {fp: m for fp, m in self.machines.items() if not m.dead_at(now)}

        @invariant()
        def listed_machines_match(self) -> None:
            listed = client.get(
                "/api/v1/machines",
                key=acme.live.api_key,
                params={"licenseId": str(self.lic.license_id), "limit": 100},
            ).json["data"]
            assert {m["fingerprint"]: m["id"] for m in listed} == {
                fp: m.id for fp, m in self.machines.items()
            }
            for machine in listed:
                model = self.machines[machine["fingerprint"]]
                assert machine["heartbeatStatus"] == ("ALIVE" if model.started else "NOT_STARTED")

    run_state_machine_as_test(
        LicenseMachines,
        settings=settings(
            max_examples=12,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
