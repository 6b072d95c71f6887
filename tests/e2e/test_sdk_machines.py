"""The official SDK against a real server and a real worker: machines and timers.

`activate`, `heartbeat` and `deactivate` authenticate with the license key (`License`
scheme); a full license answers `MachineLimitExceededError` with `{max, current}`. The
worker process (`licentric worker`) records a license's expiry on its own.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
import requests
from licentric import Licentric
from licentric.exceptions import MachineLimitExceededError
from licentric.exceptions import NotFoundError

from api.config import Config
from ledger.accounts import OpenedEnvironment
from ledger.application import LedgerApplication
from tests.support.machines import event_types
from tests.support.machines import issue_license
from tests.support.processes import ServerProcess


@pytest.fixture
def sdk(server: ServerProcess, live: OpenedEnvironment) -> Iterator[Licentric]:
    client = Licentric(
        live.api_key,
        base_url=server.base_url,
        signing_key=live.signing_key,
        cache_ttl=0,
        max_retries=0,
    )
    yield client
    client.close()


def test_sdk_activates_heartbeats_and_deactivates(
    sdk: Licentric,
    server: ServerProcess,
    ledger: LedgerApplication,
    config: Config,
    live: OpenedEnvironment,
) -> None:
    lic = issue_license(
        ledger,
        config.pepper,
        live.tenant_id,
        settings={"max_machines": 2, "require_heartbeat": True},
    )
    fingerprint = "fp-e2e-" + secrets.token_hex(8)

    machine = sdk.activate(lic.key, fingerprint, name="e2e box", platform="linux")
    again = sdk.activate(lic.key, fingerprint)  # the SDK may retry: same machine
    sdk.heartbeat(machine.id, lic.key)
    sdk.heartbeat(machine.id, lic.key)
    seen = requests.get(
        server.url(f"/api/v1/machines/{machine.id}"),
        headers={"Authorization": lic.auth},
        timeout=10,
    ).json()["data"]
    sdk.deactivate(machine.id, lic.key)

    assert (machine.fingerprint, machine.name, machine.platform) == (
        fingerprint,
        "e2e box",
        "linux",
    )
    assert machine.heartbeat_status == "NOT_STARTED"
    assert again.id == machine.id
    assert seen["heartbeatStatus"] == "ALIVE"
    assert seen["lastHeartbeatAt"] is not None
    with pytest.raises(NotFoundError):
        sdk.heartbeat(machine.id, lic.key)
    assert event_types(ledger, live.tenant_id, lic.license_id) == [
        "license.created",
        "license.machine_activated",
        "license.machine_heartbeat_started",  # one event: the second ping only moved the row
        "license.machine_deactivated",
    ]


def test_sdk_raises_machine_limit_exceeded_at_the_seat_limit(
    sdk: Licentric, ledger: LedgerApplication, config: Config, live: OpenedEnvironment
) -> None:
    lic = issue_license(ledger, config.pepper, live.tenant_id, settings={"max_machines": 1})
    sdk.activate(lic.key, "fp-e2e-first-" + secrets.token_hex(4))

    with pytest.raises(MachineLimitExceededError) as refused:
        sdk.activate(lic.key, "fp-e2e-second-" + secrets.token_hex(4))

    assert refused.value.details == {"max": 1, "current": 1}
    assert event_types(ledger, live.tenant_id, lic.license_id)[-1] == "license.limit_reached"


def test_the_worker_process_records_an_expiry(
    worker: subprocess.Popen[bytes],
    ledger: LedgerApplication,
    config: Config,
    live: OpenedEnvironment,
) -> None:
    lic = issue_license(
        ledger,
        config.pepper,
        live.tenant_id,
        settings={"expiration_strategy": "REVOKE"},
        expires_at=datetime.now(UTC) + timedelta(seconds=2),
    )

    deadline = time.monotonic() + 60  # the API promises 60 s; the worker polls every 1 s
    history: list[str] = []
    while time.monotonic() < deadline and "license.revoked" not in history:
        assert worker.poll() is None, "the worker exited"
        time.sleep(0.5)
        history = event_types(ledger, live.tenant_id, lic.license_id)

    assert history == ["license.created", "license.expired", "license.revoked"]
