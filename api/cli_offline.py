"""``licentric verify-file``: check an offline license file with no server and no database."""

from __future__ import annotations

import sys
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson

from ledger.offline.certificate import InvalidLicenseFileError
from ledger.offline.certificate import Reason
from ledger.offline.certificate import public_key_raw
from ledger.offline.certificate import verify_certificate

# Exit statuses, one per reason a file is refused (2 is click's usage error).
EXIT_STATUS = {
    Reason.MALFORMED: 3,
    Reason.BAD_SIGNATURE: 4,
    Reason.UNSUPPORTED_VERSION: 5,
    Reason.EXPIRED: 6,
    Reason.FINGERPRINT_MISMATCH: 7,
    Reason.NOT_DECRYPTABLE: 8,
    Reason.CLOCK_BEHIND: 9,
}


def _print_json(label: str, document: Any) -> None:
    click.echo(f"{label}:")
    click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


def _check_keys(public_keys: tuple[str, ...]) -> list[str]:
    for key in public_keys:
        try:
            public_key_raw(key)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--public-key") from None
    return list(public_keys)


@click.command("verify-file")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    "public_keys",
    required=True,
    multiple=True,
    help="Base64 SubjectPublicKeyInfo of the environment's Ed25519 key (GET /signing-keys). "
    "Repeat it to accept retired keys too.",
)
@click.option("--fingerprint", help="Refuse the file unless it is bound to this machine.")
@click.option(
    "--license-key",
    envvar="LICENTRIC_LICENSE_KEY",
    help="Decrypt an encrypted payload (also read from LICENTRIC_LICENSE_KEY).",
)
def verify_file(
    file: Path, public_keys: tuple[str, ...], fingerprint: str | None, license_key: str | None
) -> None:
    """Verify an offline license file (.lic) and print its header and payload.

    Checks the Ed25519 signature against the given public key(s), the format version, the
    expiry against this machine's clock and, when given, the fingerprint. Exits 0 when the
    file may be used now; otherwise prints the reason on stderr and exits with 3
    (malformed), 4 (bad signature), 5 (unsupported version), 6 (expired), 7 (another
    fingerprint), 8 (wrong license key) or 9 (issued after this clock's time).
    """
    keys = _check_keys(public_keys)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise click.ClickException(f"cannot read {file}: {e}") from None
    try:
        verified = verify_certificate(
            text, keys, now=datetime.now(UTC), fingerprint=fingerprint, license_key=license_key
        )
    except InvalidLicenseFileError as e:
        click.echo(f"INVALID ({e.reason}): {e.message}", err=True)
        sys.exit(EXIT_STATUS[e.reason])
    _print_json("header", verified.header)
    if verified.payload is not None:
        _print_json("payload", verified.payload)
    elif verified.header.get("encrypted") is True and verified.problem is None:
        click.echo("payload: encrypted (pass --license-key to read it)")
    if verified.problem is not None:
        click.echo(f"INVALID ({verified.problem.reason}): {verified.problem.message}", err=True)
        sys.exit(EXIT_STATUS[verified.problem.reason])
    click.echo(f"VALID: signed by {verified.public_key}", err=True)
