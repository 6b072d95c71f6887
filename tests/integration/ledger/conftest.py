"""Per-module database and application for the event-store tests.

Each module gets a database of its own: several of them act as the owner (disabling the
append-only trigger, truncating), which must not disturb the others. A module may set
`APP_POOL_SIZE` when its threads need more connections.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator

import pytest

from ledger.application import LedgerApplication


@pytest.fixture(scope="module")
def database(fresh_database: Callable[[], str]) -> str:
    return fresh_database()


@pytest.fixture(scope="module")
def app(database: str, request: pytest.FixtureRequest) -> Iterator[LedgerApplication]:
    app = LedgerApplication(database, pool_size=getattr(request.module, "APP_POOL_SIZE", 2))
    yield app
    app.close()
