"""Composition for account creation (CLI today, `POST /admin/accounts` later)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any

from ledger.accounts import open_account
from ledger.application import LedgerApplication
from projections.inline import InlineProjections


def create_account(
    database_url: str, master_key: bytes, pepper: bytes, name: str
) -> dict[str, Any]:
    app = LedgerApplication(database_url, pool_size=1, projector=InlineProjections())
    try:
        opened = open_account(
            app, name=name, master_key=master_key, pepper=pepper, at=datetime.now(UTC)
        )
    finally:
        app.close()
    return opened.document()
