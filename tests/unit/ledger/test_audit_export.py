"""Exports and signed heads, without a database: an export of a synthetic log verifies
with its public key, and nothing in it can change without verification failing."""

from __future__ import annotations

import base64
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey

from ledger.audit.export import ExportInvalidError
from ledger.audit.export import export_lines
from ledger.audit.export import verify_export
from ledger.audit.head import HeadSignatureError
from ledger.audit.head import SignedHead
from ledger.audit.head import head_message
from ledger.audit.head import kid_of
from ledger.audit.head import verify_head
from ledger.crypto import spki_base64
from ledger.store.hashchain import GENESIS_HASH
from ledger.store.hashchain import ChainedEvent
from ledger.store.hashchain import link
from ledger.store.log import LoggedEvent

TENANT = UUID("6f1c1d9e-2b1e-4a55-9a7e-0e6f1b1f2a10")
AT = datetime(2030, 1, 1, tzinfo=UTC)
KEY = SigningKey(bytes(range(32)))
PUBLIC_KEY = spki_base64(bytes(KEY.verify_key))


def _log(count: int) -> list[LoggedEvent]:
    events, previous = [], GENESIS_HASH
    stream = uuid4()
    for position in range(1, count + 1):
        chained = ChainedEvent(
            tenant_id=TENANT, stream_id=stream, stream_type="license", version=position,
            event_id=uuid4(), event_type="license.usage_incremented", schema_version=1,
            data={"increment": position, "note": "é ✓"}, metadata={"requestId": f"r{position}"},
            occurred_at=AT + timedelta(seconds=position), recorded_at=AT,
        )  # fmt: skip
        previous = link(previous, position, chained.digest())
        events.append(LoggedEvent(**vars_of(chained), position=position, hash=previous))
    return events


def vars_of(event: ChainedEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in ChainedEvent.__dataclass_fields__}


def _head(position: int, chain_hash: bytes, key: SigningKey = KEY) -> SignedHead:
    kid = kid_of(spki_base64(bytes(key.verify_key)))
    signed_at = "2030-01-02T00:00:00.000Z"
    message = head_message(TENANT, position, chain_hash.hex(), signed_at, kid)
    signature = base64.b64encode(key.sign(message).signature).decode()
    return SignedHead(TENANT, position, chain_hash.hex(), signed_at, kid, signature)


def _export(count: int = 5) -> bytes:
    events = _log(count)
    last = events[-1].hash if events else GENESIS_HASH
    return b"".join(export_lines([events], _head(count, last)))


def test_an_export_verifies_with_its_public_key() -> None:
    verified = verify_export(_export().splitlines(keepends=True), PUBLIC_KEY)
    assert verified.events == 5
    assert verified.head.position == 5


def test_an_empty_log_exports_its_genesis_head() -> None:
    assert verify_export(_export(0).splitlines(keepends=True), PUBLIC_KEY).events == 0


EXPORT = _export()


@settings(max_examples=500)
@given(index=st.integers(0, len(EXPORT) - 1), byte=st.integers(0, 255))
def test_any_changed_byte_fails(index: int, byte: int) -> None:
    if EXPORT[index] == byte:
        byte = (byte + 1) % 256
    changed = EXPORT[:index] + bytes([byte]) + EXPORT[index + 1 :]
    with pytest.raises(ExportInvalidError):
        verify_export(changed.splitlines(keepends=True), PUBLIC_KEY)


@pytest.mark.parametrize(
    "edit",
    [
        lambda lines: lines[:-1],  # no head
        lambda lines: lines[1:],  # first event dropped
        lambda lines: [lines[1], lines[0], *lines[2:]],  # two events swapped
        lambda lines: [*lines[:2], *lines[3:]],  # an event dropped in the middle
        lambda lines: [*lines[:-2], lines[-1]],  # the newest event dropped
        lambda lines: [*lines, b"\n"],  # trailing junk
        lambda lines: [*lines[:-1], lines[-1].rstrip(b"\n")],  # no final newline
        lambda lines: [],  # nothing
    ],
)
def test_lines_dropped_reordered_or_added_fail(edit: object) -> None:
    lines = EXPORT.splitlines(keepends=True)
    with pytest.raises(ExportInvalidError):
        verify_export(edit(lines), PUBLIC_KEY)  # type: ignore[operator]


def test_a_head_signed_by_another_key_fails() -> None:
    other = SigningKey(bytes(range(1, 33)))
    events = _log(2)
    forged = b"".join(export_lines([events], _head(2, events[-1].hash, other)))
    with pytest.raises(ExportInvalidError, match="not by this public key"):
        verify_export(forged.splitlines(keepends=True), PUBLIC_KEY)
    # Claiming the right kid does not help: the signature is checked.
    head = _head(2, events[-1].hash, other)
    disguised = SignedHead(
        head.environment_id,
        head.position,
        head.hash,
        head.signed_at,
        kid_of(PUBLIC_KEY),
        head.signature,
    )
    with pytest.raises(HeadSignatureError, match="does not match"):
        verify_head(disguised, PUBLIC_KEY)


def test_the_head_check_shown_in_docs_audit_md_works() -> None:
    text = (Path(__file__).parents[3] / "docs" / "audit.md").read_text(encoding="utf-8")
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    head = _head(2, _log(2)[-1].hash).document()
    namespace["verify_head"](head, PUBLIC_KEY)
    with pytest.raises(BadSignatureError):
        namespace["verify_head"]({**head, "position": 3}, PUBLIC_KEY)
