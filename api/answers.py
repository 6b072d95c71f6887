"""Validation answers kept with their cached facts, and the bytes of an answer's body.

A fleet validates the same license with the same fingerprint again and again. With its
facts in the cache (api/facts_cache.py), the decision for the same request is the same
until an instant the decision itself names (`decision_holds_until`: the license's expiry,
the machine's heartbeat deadline). So the validator keeps, per cached license and per
request (fingerprint, entitlements), the decision and the serialized body up to its
`metadata` — which alone differs between answers (the time, the caller's nonce) — and
answers a repeat by appending the metadata and signing. The answers live in the facts'
cache entry: a change that drops the facts drops them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ledger.domain.validation import Decision

# Requests remembered per license (a machine asks with its one fingerprint; a few
# entitlement combinations at most): past this the license's answers start over.
MAX_PER_LICENSE = 8
_OPEN_METADATA = b"null}}"

RequestKey = tuple[str | None, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Remembered:
    decision: Decision
    prefix: bytes  # the body up to and including `"metadata":`
    made_at: datetime
    until: datetime | None  # None: no instant ahead changes the decision

    def holds_at(self, now: datetime) -> bool:
        # A clock that went back is not trusted with an answer made "later".
        return self.made_at <= now and (self.until is None or now < self.until)


def body_prefix(data: dict[str, Any]) -> bytes:
    """`{"data": {…data, "metadata": ` — the start of every body with this data."""
    whole = orjson.dumps({"data": {**data, "metadata": None}})
    assert whole.endswith(_OPEN_METADATA)
    return whole[: -len(_OPEN_METADATA)]


def body(prefix: bytes, metadata: dict[str, Any]) -> bytes:
    """Exactly `orjson.dumps({"data": {…data, "metadata": metadata}})` (a unit test
    compares them), from the prefix made once."""
    return prefix + orjson.dumps(metadata) + b"}}"


def remember(answers: dict[RequestKey, Remembered], key: RequestKey, answer: Remembered) -> None:
    if len(answers) >= MAX_PER_LICENSE:
        answers.clear()
    answers[key] = answer
