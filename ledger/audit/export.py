"""`licentric audit export` and `verify-export`: a tenant's log as JSON lines an auditor
can check with nothing but the environment's public key.

Format (UTF-8, one `\\n` after every line, nothing else):

- one line per event, oldest first: the event's canonical JSON (ledger/store/hashchain.py:
  tenant, stream, streamType, version, id, type, schemaVersion, data, metadata,
  occurredAt, recordedAt) plus its `position` and chain `hash` (hex), with sorted keys and
  no whitespace;
- a last line `{"head": {...}}`: the signed head of that log (ledger/audit/head.py).

Every line must be exactly the canonical serialization of what it says, so *any*
changed byte is caught: it either stops the line being canonical JSON, or changes a
value that the recomputed digest, the chain, the head or its signature covers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ledger.audit.head import HeadSignatureError
from ledger.audit.head import SignedHead
from ledger.audit.head import verify_head
from ledger.store.hashchain import GENESIS_HASH
from ledger.store.hashchain import link
from ledger.store.log import LoggedEvent

# What the digest covers (ChainedEvent.canonical_bytes), and what a line adds.
CANONICAL_KEYS = frozenset(
    (
        *("tenant", "stream", "streamType", "version", "id", "type", "schemaVersion"),
        *("data", "metadata", "occurredAt", "recordedAt"),
    )
)
EVENT_KEYS = CANONICAL_KEYS | {"position", "hash"}
HEAD_KEYS = frozenset({"environmentId", "position", "hash", "signedAt", "kid", "signature"})


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def event_line(event: LoggedEvent) -> bytes:
    line = orjson.loads(event.canonical_bytes())
    line["position"] = event.position
    line["hash"] = bytes(event.hash).hex()
    return _canonical(line) + b"\n"


def head_line(head: SignedHead) -> bytes:
    return _canonical({"head": head.document()}) + b"\n"


def export_lines(pages: Iterable[list[LoggedEvent]], head: SignedHead) -> Iterator[bytes]:
    """The export of a log read page by page up to `head`."""
    for events in pages:
        for event in events:
            yield event_line(event)
    yield head_line(head)


@dataclass(frozen=True)
class VerifiedExport:
    events: int
    head: SignedHead


class ExportInvalidError(ValueError):
    """The export does not verify; `line` is 1-based (0: the file as a whole)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message


def _parse(raw: bytes, number: int) -> dict[str, Any]:
    if not raw.endswith(b"\n"):
        raise ExportInvalidError(number, "the line does not end with a newline")
    body = raw[:-1]
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ExportInvalidError(number, "not JSON") from None
    if not isinstance(value, dict):
        raise ExportInvalidError(number, "not a JSON object")
    if _canonical(value) != body:
        raise ExportInvalidError(number, "not in canonical form (sorted keys, no spaces)")
    return value


def verify_export(
    lines: Iterable[bytes],
    public_key_b64: str,
    *,
    on_event: Callable[[int], None] | None = None,
) -> VerifiedExport:
    """Check every link, the head and its signature; raise ExportInvalidError if not."""
    previous, count, tenant = GENESIS_HASH, 0, None
    pending: tuple[int, bytes] | None = None
    for number, raw in enumerate(lines, start=1):
        if pending is not None:
            previous, tenant = _check_event(*pending, previous, tenant)
            count += 1
            if on_event is not None:
                on_event(count)
        pending = (number, raw)
    if pending is None:
        raise ExportInvalidError(0, "the export is empty (it must end with its signed head)")
    head = _check_head(*pending, count, previous, tenant)
    try:
        verify_head(head, public_key_b64)
    except HeadSignatureError as e:
        raise ExportInvalidError(pending[0], str(e)) from None
    return VerifiedExport(count, head)


def _check_event(number: int, raw: bytes, previous: bytes, tenant: str | None) -> tuple[bytes, str]:
    event = _parse(raw, number)
    if set(event) != EVENT_KEYS:
        raise ExportInvalidError(number, "not an event line (unexpected or missing fields)")
    # `type() is int`: JSON `true` would equal 1 in Python, and the digest omits position.
    if type(event["position"]) is not int or event["position"] != number:
        raise ExportInvalidError(number, f"position {event['position']} instead of {number}")
    if tenant is not None and event["tenant"] != tenant:
        raise ExportInvalidError(number, "an event of another environment")
    digest = hashlib.sha256(_canonical({k: event[k] for k in CANONICAL_KEYS})).digest()
    linked = link(previous, number, digest)
    if event["hash"] != linked.hex():
        raise ExportInvalidError(number, "the hash does not match the recomputed link")
    return linked, event["tenant"]


def _check_head(
    number: int, raw: bytes, count: int, last_hash: bytes, tenant: str | None
) -> SignedHead:
    line = _parse(raw, number)
    document = line.get("head")
    if set(line) != {"head"} or not isinstance(document, dict) or set(document) != HEAD_KEYS:
        raise ExportInvalidError(number, "the last line is not the signed head")
    try:
        head = SignedHead.from_document(document)
    except (TypeError, ValueError):
        raise ExportInvalidError(number, "the head's environmentId is not a UUID") from None
    if head.position != count or head.hash != last_hash.hex():
        msg = f"the head does not name the last event (position {count}, its hash)"
        raise ExportInvalidError(number, msg)
    if tenant is not None and str(head.environment_id) != tenant:
        raise ExportInvalidError(number, "the head is another environment's")
    return head
