"""Session-wide real services: PostgreSQL and Redis (see tests/support/services.py).

Each run creates its own databases (``licentric_test_<hex>``) and drops them at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Iterator

import pytest

from api import facts_cache
from tests.support import services


@pytest.fixture(autouse=True, scope="module")
def _facts_cache_listeners_stopped() -> Iterator[None]:
    """Each app made in a module listens for cache invalidations on a connection of its
    own (api/facts_cache.py); stop them when the module is done, or a run's worth of
    them would hold PostgreSQL connections until the end (the databases live that long),
    and a later test spawning many processes could find the server full."""
    yield
    facts_cache.close_all()


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Admin URL of a PostgreSQL server where the run may create databases."""
    server = services.provision_postgres(os.environ, tmp_path_factory.mktemp("postgres"))
    yield server.url
    server.close()


@pytest.fixture(scope="session")
def fresh_database(pg_server_url: str) -> Iterator[Callable[[], str]]:
    """Factory: a new, migrated database per call (dropped when the run ends)."""
    created: list[str] = []

    def create() -> str:
        url = services.create_migrated_database(pg_server_url)
        created.append(url)
        return url

    yield create
    for url in created:
        services.drop_database(pg_server_url, url)


@pytest.fixture(scope="session")
def owner_url(fresh_database: Callable[[], str]) -> str:
    """The run's shared migrated database, as its owner."""
    return fresh_database()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server; it may be shared with other users: namespace your keys."""
    server = services.provision_redis(os.environ, tmp_path_factory.mktemp("redis"))
    yield server.url
    server.close()
