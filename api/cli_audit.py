"""`licentric audit …` and `licentric projections …`: the auditor's command line.

They connect with DATABASE_URL as the owner (or to the embedded database) and read
across tenants as the `licentric_auditor` role (migration 0009); only `projections
rebuild` without `--verify` writes, and only the rows that differ from the rebuild.
`audit verify-export` needs no database at all. Progress bars go to stderr, so stdout
stays clean for redirection.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from typing import IO
from typing import Any
from uuid import UUID

import click
import orjson
import psycopg

from api.config import Config
from api.config import ConfigError
from ledger.application import STREAMS
from ledger.audit.auditor import TenantHead
from ledger.audit.auditor import account_tenants
from ledger.audit.auditor import auditor_role
from ledger.audit.auditor import iter_log
from ledger.audit.auditor import list_tenants
from ledger.audit.auditor import stream_rows
from ledger.audit.auditor import tenant_head
from ledger.audit.export import ExportInvalidError
from ledger.audit.export import export_lines
from ledger.audit.export import verify_export
from ledger.audit.head import sign_head
from ledger.audit.verify import TenantCheck
from ledger.audit.verify import verify_tenant
from ledger.domain.environment import Environment
from ledger.store.mapper import EventNames
from ledger.store.replay import replay
from projections import read_models
from projections.rebuild import DEFAULT_BATCH
from projections.rebuild import RebuildReport
from projections.rebuild import rebuild
from projections.rebuild_jobs import RebuildJobFailedError
from projections.rebuild_jobs import rebuild_in_parallel

_ENVIRONMENTS = click.Choice(["live", "test"])
_SHOWN_DIFFERENCES = 20


def _config() -> Config:
    try:
        return Config.from_env(os.environ)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _owner_url() -> str:
    """DATABASE_URL (the owner's), else the embedded database (migrated)."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url
    from ledger.store.embedded import start_embedded_postgres  # noqa: PLC0415 (slow import)
    from ledger.store.migrate import migrate  # noqa: PLC0415

    embedded: str = start_embedded_postgres(_config().data_dir)
    migrate(embedded)
    return embedded


@contextmanager
def _owner_connection() -> Iterator[psycopg.Connection[Any]]:
    try:
        conn = psycopg.connect(_owner_url(), autocommit=True)
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot connect to the database: {exc}") from exc
    with conn:
        yield conn


def _in_parallel(
    *,
    names: Sequence[str],
    verify: bool,
    heads: list[TenantHead],
    jobs: int,
    batch: int,
    on_progress: Callable[[int], None],
) -> RebuildReport:
    try:
        return rebuild_in_parallel(
            _owner_url(),
            names,
            verify=verify,
            tenants=heads,
            jobs=jobs,
            batch=batch,
            on_progress=on_progress,
        )
    except RebuildJobFailedError as exc:
        raise click.ClickException(str(exc)) from exc


def _tenants(
    conn: psycopg.Connection[Any], account: UUID | None, environment: str | None
) -> list[TenantHead]:
    if environment is not None and account is None:
        raise click.UsageError("--env needs --account")
    with auditor_role(conn):
        heads = list_tenants(conn, account_id=account, environment=environment)
    if account is not None and not heads:
        raise click.ClickException(f"no environment of account {account} has a ledger")
    return heads


def _bar(length: int, label: str) -> Any:
    return click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True)


@click.group()
def audit() -> None:
    """Verify and export the ledger's hash chains (docs/audit.md)."""


@audit.command("verify")
@click.option("--account", type=click.UUID, help="Only this account's environments.")
@click.option("--env", "environment", type=_ENVIRONMENTS, help="Only this environment.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per environment.")
def audit_verify(account: UUID | None, environment: str | None, as_json: bool) -> None:
    """Recompute every environment's hash chain from its rows alone.

    Reports, per environment, the first position where the stored log stops matching
    (an altered, deleted, inserted or reordered row). Exits 1 if any chain is broken.
    """
    with _owner_connection() as conn:
        heads = _tenants(conn, account, environment)
        checks: list[TenantCheck] = []
        with auditor_role(conn), _bar(sum(h.position for h in heads), "verifying") as bar:
            for head in heads:
                checks.append(verify_tenant(conn, head, on_progress=bar.update))
    for check in checks:
        click.echo(_describe(check, as_json=as_json))
    if any(not c.ok for c in checks):
        sys.exit(1)
    if not as_json:
        click.echo(f"{len(checks)} chain(s) verified, {sum(c.events for c in checks)} events")


def _describe(check: TenantCheck, *, as_json: bool) -> str:
    broken = check.broken
    if as_json:
        return orjson.dumps(
            {
                "environmentId": str(check.tenant.tenant_id),
                "accountId": None
                if check.tenant.account_id is None
                else str(check.tenant.account_id),
                "environment": check.tenant.environment,
                "events": check.events,
                "ok": check.ok,
                "brokenAt": None if broken is None else broken.position,
                "reason": None if broken is None else broken.reason,
            }
        ).decode()
    if broken is None:
        return f"OK      {check.tenant.label}: {check.events} events"
    return f"BROKEN  {check.tenant.label}: position {broken.position}: {broken.reason}"


@audit.command("export")
@click.option("--account", type=click.UUID, required=True, help="The account.")
@click.option("--env", "environment", type=_ENVIRONMENTS, required=True, help="live or test.")
@click.option(
    "--output", "-o", type=click.File("wb"), default="-", help="File to write (default stdout)."
)
def audit_export(account: UUID, environment: str, output: IO[bytes]) -> None:
    """Write an environment's ledger as JSON lines, ending with its signed head.

    Check it anywhere with `licentric audit verify-export FILE --public-key <b64>`.
    The export holds keyed hashes and encrypted secrets as stored (never plaintext keys):
    treat it as confidential.
    """
    master_key = _config().master_key
    with _owner_connection() as conn, auditor_role(conn):
        tenant_id = account_tenants(conn, account).get(environment)
        if tenant_id is None:
            raise click.ClickException(f"account {account} has no {environment} environment")
        head = tenant_head(conn, tenant_id)
        EventNames.register(*STREAMS)
        environment_aggregate = replay(stream_rows(conn, tenant_id, tenant_id))
        if not isinstance(environment_aggregate, Environment):
            raise click.ClickException(f"{tenant_id} is not an environment's ledger")
        signed = sign_head(
            environment_aggregate,
            master_key,
            position=head.position,
            chain_hash=head.hash,
            at=datetime.now(UTC),
        )
        with _bar(head.position, "exporting") as bar:
            pages = iter_log(conn, tenant_id, upto=head.position)
            for line in export_lines(_counted(pages, bar), signed):
                output.write(line)
    output.flush()


def _counted(pages: Iterator[list[Any]], bar: Any) -> Iterator[list[Any]]:
    for page in pages:
        yield page
        bar.update(len(page))


@audit.command("verify-export")
@click.argument("file", type=click.File("rb"))
@click.option("--public-key", required=True, help="The environment's public key (base64 SPKI DER).")
def audit_verify_export(file: IO[bytes], public_key: str) -> None:
    """Check an export with the public key alone (no database): every event's hash,
    the chain, and the signature of its head. Any changed byte fails. Exits 1 if not valid.
    """
    try:
        verified = verify_export(file, public_key.strip())
    except ExportInvalidError as exc:
        click.echo(f"INVALID: {exc}")
        sys.exit(1)
    head = verified.head
    click.echo(
        f"OK: {verified.events} events of environment {head.environment_id}; head position "
        f"{head.position}, hash {head.hash}, signed {head.signed_at} by key {head.kid}"
    )


@click.group()
def projections() -> None:
    """Rebuild or verify the read models from the events alone."""


@projections.command("rebuild")
@click.option(
    "--name",
    "names",
    multiple=True,
    help="A read model to rebuild (repeatable; default: all). "
    + "Known: "
    + ", ".join(m.name for m in read_models.READ_MODELS),
)
@click.option(
    "--verify",
    is_flag=True,
    help="Rebuild into shadow tables and report differences with the live ones; "
    "changes nothing. Exits 1 if any.",
)
@click.option("--account", type=click.UUID, help="Only this account's environments.")
@click.option("--env", "environment", type=_ENVIRONMENTS, help="Only this environment.")
@click.option(
    "--batch",
    type=click.IntRange(10, 100_000),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Events per transaction.",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes rebuilding environments side by side.",
)
def projections_rebuild(
    *,
    names: tuple[str, ...],
    verify: bool,
    account: UUID | None,
    environment: str | None,
    batch: int,
    jobs: int,
) -> None:
    """Replay every stream and rewrite the inline read models from it.

    Live rows that differ from the rebuild are replaced, tenant by tenant, while that
    tenant's appends wait a moment; other tenants are not held up.
    """
    try:
        models = read_models.select(names)
    except LookupError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from exc
    with _owner_connection() as conn:
        heads = _tenants(conn, account, environment)
        label = "verifying" if verify else "rebuilding"
        with _bar(sum(h.position for h in heads), label) as bar:
            if jobs == 1:
                report = rebuild(
                    conn, models, verify=verify, tenants=heads, batch=batch, on_progress=bar.update
                )
            else:
                report = _in_parallel(
                    names=names,
                    verify=verify,
                    heads=heads,
                    jobs=jobs,
                    batch=batch,
                    on_progress=bar.update,
                )
    names_shown = ", ".join(m.name for m in models)
    click.echo(f"{names_shown}: {report.tenants} environment(s), {report.events} events replayed")
    if not verify:
        click.echo(f"{report.rows_replaced} live row(s) replaced")
        return
    click.echo(f"{len(report.differences)} difference(s)")
    for difference in report.differences[:_SHOWN_DIFFERENCES]:
        key = ", ".join(k.hex() if isinstance(k, bytes) else str(k) for k in difference.key)
        click.echo(f"  {difference.kind:10} {difference.table} ({key}) of {difference.tenant_id}")
    if report.differences:
        sys.exit(1)
