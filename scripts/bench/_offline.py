"""A bench database with one account and offline licenses (each with one active machine),
for the checkout benchmarks."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

from api.app import ledger_application
from api.config import Config
from ledger.accounts import OpenedEnvironment
from ledger.accounts import open_account
from ledger.domain.codes import EnvironmentName
from tests.support.offline import OfflineLicense
from tests.support.offline import offline_license
from tests.support.processes import server_env


@dataclass(frozen=True)
class OfflineWorld:
    env: dict[str, str]  # the server's environment (`licentric serve`, create_app)
    config: Config
    live: OpenedEnvironment  # the account's live environment: tenant, API key
    pools: list[list[OfflineLicense]]


def offline_world(url: str, scratch: str, *, pools: int, per_pool: int) -> OfflineWorld:
    """`pools` lists of `per_pool` licenses, in the live environment of a new account."""
    env = server_env(
        DATABASE_URL=url,
        LICENTRIC_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        LICENTRIC_DATA_DIR=scratch,
        LICENTRIC_LOG_LEVEL="warning",
    )
    config = Config.from_env(env)
    ledger = ledger_application(config)
    try:
        opened = open_account(
            ledger, name="bench", master_key=config.master_key, pepper=config.pepper,
            at=datetime.now(UTC),
        )  # fmt: skip
        live = opened.environments[EnvironmentName.LIVE]
        licenses = [
            [
                offline_license(
                    ledger, live.tenant_id, pepper=config.pepper, master_key=config.master_key
                )
                for _ in range(per_pool)
            ]
            for _ in range(pools)
        ]
    finally:
        ledger.close()
    return OfflineWorld(env, config, live, licenses)
