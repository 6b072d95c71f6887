"""Fresh, migrated databases for benchmarks (same server the tests would pick)."""

from __future__ import annotations

import os
import uuid

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.conninfo import make_conninfo

from ledger.store.migrate import migrate

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_SERVER


def fresh_database(prefix: str = "licentric_bench", *, migrated: bool = True) -> str:
    admin = server_url()
    # run_all.py tags the databases of the scripts it runs, to drop what a script that
    # failed or timed out left behind (and nothing of anyone else's).
    tag = os.environ.get("BENCH_DB_TAG", "")
    name = f"{prefix}_{tag + '_' if tag else ''}{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(admin)
    params["dbname"] = name
    url = make_conninfo(**params)
    if migrated:
        migrate(url)
    return url


def drop_database(url: str) -> None:
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_tagged_databases(tag: str) -> list[str]:
    """Drop every database whose name carries `tag` (see `fresh_database`)."""
    with psycopg.connect(server_url(), autocommit=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE strpos(datname, %s) > 0", (f"_{tag}_",)
            )
        ]
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return names
