"""``licentric``: the command line (a composition root: it reads the environment).

Without ``DATABASE_URL`` every command uses an embedded PostgreSQL in
``LICENTRIC_DATA_DIR``; the server process it starts outlives the command and is shared
by later ones (``serve``, ``worker`` and ``account create`` all find the same one).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

import click
import orjson

from api.accounts import create_account
from api.cli_audit import audit
from api.cli_audit import projections
from api.cli_offline import verify_file
from api.config import Config
from api.config import ConfigError
from api.config import master_key_path
from api.logging import configure_logging
from ledger.store.dsn import redact_url

_log = logging.getLogger("licentric.cli")
_GUNICORN_CONF = Path(__file__).with_name("gunicorn_conf.py")
_FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="licentric-ledger", prog_name="licentric")
def cli() -> None:
    """Licentric Ledger: a self-hosted, event-sourced licensing server (/api/v1).

    Configuration comes from the environment (see docs/configuration.md); flags win.
    With no DATABASE_URL, an embedded PostgreSQL is started in LICENTRIC_DATA_DIR and
    keeps running after the command exits, shared by later commands.
    """


@cli.command()
@click.option(
    "--partitions",
    type=click.IntRange(1, 1024),
    default=16,
    show_default=True,
    help="Hash partitions of the events table (only used when it is first created).",
)
def migrate(partitions: int) -> None:
    """Apply pending database migrations, as the database owner.

    Uses DATABASE_URL (which must name the owner role) or the embedded database.
    Safe to run repeatedly and concurrently: applied migrations are skipped.
    """
    config = _load_config()
    configure_logging(config.log_level)
    url = _database_url(config)
    applied = _migrate(url, partitions)
    if applied:
        for name in applied:
            click.echo(f"applied {name}")
    else:
        click.echo("database is up to date")


@cli.command()
@click.option("--host", help="Interface to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=click.IntRange(1, 65535), help="TCP port.  [default: 8000]")
@click.option(
    "--workers", type=click.IntRange(1, 256), help="Gunicorn worker processes.  [default: CPUs]"
)
@click.option("--threads", type=click.IntRange(1, 256), help="Threads per worker.  [default: 4]")
@click.option(
    "--migrate/--no-migrate",
    "run_migrations",
    default=None,
    help="Apply migrations before serving.  [default: only for the embedded database]",
)
def serve(
    host: str | None,
    port: int | None,
    workers: int | None,
    threads: int | None,
    run_migrations: bool | None,
) -> None:
    """Run the HTTP API (gunicorn, gthread workers) until SIGTERM or Ctrl-C.

    With no DATABASE_URL: starts the embedded PostgreSQL and migrates it first.
    With no REDIS_URL: rate limits are kept in each process.
    """
    config = _load_config(host=host, port=port, workers=workers, threads=threads)
    configure_logging(config.log_level)
    url = _database_url(config)
    if run_migrations if run_migrations is not None else config.embedded:
        _migrate(url)
    _log.info("database: %s", _describe_database(config, url))
    if config.redis_url:
        _log.info("rate limits: Redis at %s", redact_url(config.redis_url))
    else:
        _log.info("rate limits: in-process (set REDIS_URL to share them between processes)")
    _log.info("starting API on http://%s:%s", config.host, config.port)
    command = [sys.executable, "-m", "gunicorn", "-c", str(_GUNICORN_CONF), "api.wsgi:app"]
    env = _child_env(config, url)
    # Every gunicorn worker writes its metric samples here; /metrics aggregates them.
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="licentric-metrics-"))
    sys.exit(_run_forwarding_signals(command, env))


@cli.command()
@click.option("--once", is_flag=True, help="Run one pass of every loop, then exit.")
def worker(once: bool) -> None:
    """Run the background loops (webhook delivery, timers, re-signing).

    Runs until SIGTERM, which finishes the batch in hand. Several workers may run at
    once; they share the work.
    """
    config = _load_config()
    configure_logging(config.log_level)
    url = _database_url(config)
    if config.embedded:
        _migrate(url)
    argv = [sys.executable, "-m", "workers", *(["--once"] if once else [])]
    sys.stdout.flush()
    sys.stderr.flush()
    # exec, not a child: signals reach the worker directly and there is one process.
    os.execve(sys.executable, argv, _child_env(config, url))  # noqa: S606


@cli.group()
def account() -> None:
    """Manage accounts (each has a live and a test environment)."""


@account.command("create")
@click.option("--name", required=True, help="Display name of the account.")
@click.option("--json", "as_json", is_flag=True, help="Print the API.md §3 JSON document.")
def account_create(name: str, as_json: bool) -> None:
    """Create an account and print its API keys and signing keys.

    The keys are shown only this once: store them now.
    """
    config = _load_config()
    configure_logging(config.log_level)
    url = _database_url(config)
    if config.embedded:
        _migrate(url)
    document = create_account(url, config.master_key, config.pepper, name)
    if as_json:
        click.echo(orjson.dumps(document).decode())
        return
    click.echo(f"Account {name!r} created: {document['accountId']}")
    for environment, keys in document["environments"].items():
        click.echo(f"\n[{environment}]")
        click.echo(f"  API key:     {keys['apiKey']}")
        click.echo(f"  signing key: {keys['signingKey']}")
        click.echo(f"  public key:  {keys['publicKey']}")
    click.echo("\nThe API keys and signing keys are shown only once; store them now.")


cli.add_command(audit)
cli.add_command(projections)
cli.add_command(verify_file)


def main() -> None:
    """Console-script entry point (``licentric``)."""
    cli(prog_name="licentric")


def _load_config(**overrides: Any) -> Config:
    try:
        return Config.from_env(os.environ, **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _database_url(config: Config) -> str:
    if config.database_url is not None:
        return config.database_url
    start = _require("ledger.store.embedded", "start_embedded_postgres")
    _log.info("using embedded PostgreSQL", extra={"data_dir": str(config.data_dir)})
    url: str = start(config.data_dir)
    return url


def _describe_database(config: Config, url: str) -> str:
    if config.embedded:
        return f"embedded PostgreSQL at {config.data_dir / 'pg'}"
    return redact_url(url)


def _migrate(url: str, partitions: int = 16) -> list[str]:
    migrate_database = _require("ledger.store.migrate", "migrate")
    applied: list[str] = migrate_database(url, partitions)
    _log.info("migrations applied: %s", ", ".join(applied) or "none (up to date)")
    return applied


def _require(module: str, name: str) -> Any:
    # Imported late: commands that do not need the database stay fast to start.
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        msg = f"{module}.{name} is not available in this build ({exc})"
        raise click.ClickException(msg) from exc


def _child_env(config: Config, database_url: str) -> dict[str, str]:
    """The environment of gunicorn / the worker: the resolved settings, explicitly."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        LICENTRIC_DATA_DIR=str(config.data_dir),
        LICENTRIC_HOST=config.host,
        LICENTRIC_PORT=str(config.port),
        LICENTRIC_WORKERS=str(config.workers),
        LICENTRIC_THREADS=str(config.threads),
        LICENTRIC_LOG_LEVEL=config.log_level,
    )
    has_key = (
        env.get("LICENTRIC_MASTER_KEY", "").strip()
        or env.get("LICENTRIC_MASTER_KEY_FILE", "").strip()
    )
    if config.embedded and not has_key:
        # Point at the generated key rather than copying it into the environment.
        env["LICENTRIC_MASTER_KEY_FILE"] = str(master_key_path(config.data_dir))
    return env


def _run_forwarding_signals(command: list[str], env: dict[str, str]) -> int:
    """Run ``command`` as a child, pass SIGTERM/SIGINT on, return its exit status."""
    child = subprocess.Popen(command, env=env)  # noqa: S603  (our own argv, no shell)

    def forward(signum: int, frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    for signum in _FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    code = child.wait()
    # A child killed by a signal reports -N; shells expect 128 + N.
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    main()
