"""Embedded PostgreSQL (the ``pgserver`` wheel) for running without ``DATABASE_URL``.

The server is started detached (``cleanup_mode=None``): it must outlive the CLI process
that hands over to gunicorn, and several processes (API, worker, tests) share one data
directory. ``pgserver`` serialises start-up with an inter-process lock and reuses a
running postmaster, so calling :func:`start_embedded_postgres` again is cheap.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ledger.store.dsn import with_database

DATABASE_NAME = "licentric"

_log = logging.getLogger(__name__)


def _pgserver() -> Any:
    # pgserver resolves a runtime directory at import time and warns when
    # XDG_RUNTIME_DIR is unset (containers, CI); the fallback it picks is fine, and the
    # warning would fail test runs that turn warnings into errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver  # noqa: PLC0415  (heavy import, only needed in embedded mode)
    # pgserver logs every pg_ctl invocation at INFO; keep start-up output readable.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    return pgserver


def _pgdata(data_dir: Path) -> Path:
    return data_dir.expanduser().resolve() / "pg"


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded server in ``data_dir/pg`` and return a psycopg URI.

    The URI uses the Unix socket in the data directory (no TCP port is opened) and
    names the ``licentric`` database, created on first use. Authentication is ``trust``
    over that socket, so the URI carries no password.
    """
    pgdata = _pgdata(data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = _pgserver().get_server(str(pgdata), cleanup_mode=None)
    admin_url: str = server.get_uri()
    _ensure_database(admin_url, DATABASE_NAME)
    return with_database(admin_url, DATABASE_NAME)


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stop the embedded server of ``data_dir`` if it runs (used by tests and tooling)."""
    pgdata = _pgdata(data_dir)
    if not (pgdata / "postmaster.pid").exists():
        return
    pgserver = _pgserver()
    # As root pgserver runs postgres as its own system user; pg_ctl must match it.
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=30)


def _ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            _log.info("created embedded database %s", name)
        except psycopg.errors.DuplicateDatabase:
            pass  # another process sharing the data directory created it first
