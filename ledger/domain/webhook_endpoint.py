"""WebhookEndpoint: where and which webhook events a tenant wants delivered (API.md §6).

The secret is held only encrypted (the command layer encrypts it under the master key
with a tenant-scoped context); the plaintext leaves the server once, when it is created
or rotated. A receiver answering 410 Gone disables the endpoint (`disable`), and an
operator's PATCH `enabled: true` turns it back on.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ledger.domain.base import UNSET
from ledger.domain.base import LedgerAggregate
from ledger.domain.base import Unset
from ledger.domain.checks import Issues
from ledger.domain.checks import check_bool
from ledger.domain.checks import check_metadata
from ledger.domain.checks import check_optional_text
from ledger.domain.checks import json_copy
from ledger.domain.codes import WebhookEventType
from ledger.domain.timestamps import require_utc
from ledger.webhooks.urls import url_format_problem

ALL_EVENTS = "*"
MAX_SUBSCRIPTIONS = 100
# `license.*` subscribes to every type of that family.
FAMILIES = frozenset(t.value.partition(".")[0] for t in WebhookEventType)
DISABLED_GONE = "HTTP_410_GONE"


def subscription_problem(pattern: object) -> str | None:
    if not isinstance(pattern, str):
        return "must be a string"
    if pattern == ALL_EVENTS or pattern in set(WebhookEventType):
        return None
    family, dot, rest = pattern.partition(".")
    if dot and rest == "*" and family in FAMILIES:
        return None
    return f"unknown event type {pattern!r}"


def subscribes(patterns: Sequence[str], event_type: str) -> bool:
    """Whether a subscription list covers `event_type` (`*`, `family.*` or exact)."""
    family = event_type.partition(".")[0]
    return any(p in (ALL_EVENTS, event_type, f"{family}.*") for p in patterns)


def check_endpoint_fields(fields: Mapping[str, Any]) -> None:
    issues = Issues()
    if "url" in fields:
        url = fields["url"]
        problem = "must be a string" if not isinstance(url, str) else url_format_problem(url)
        if problem:
            issues.add(["url"], problem)
    if "events" in fields:
        events = fields["events"]
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_SUBSCRIPTIONS:
            issues.add(["events"], f"must be a list of 1 to {MAX_SUBSCRIPTIONS} event types")
        else:
            for index, pattern in enumerate(events):
                if problem := subscription_problem(pattern):
                    issues.add(["events", index], problem)
    if "description" in fields:
        check_optional_text(issues, "description", fields["description"], max_len=1000)
    if "enabled" in fields:
        check_bool(issues, "enabled", fields["enabled"])
    if "metadata" in fields:
        check_metadata(issues, fields["metadata"])
    issues.raise_if_any()


class WebhookEndpoint(LedgerAggregate):
    stream_type: ClassVar[str] = "webhook_endpoint"

    @event("Created")
    def __init__(
        self,
        *,
        url: str,
        events: list[str],
        description: str | None,
        enabled: bool,
        encrypted_secret: str,
        metadata: dict[str, Any],
        timestamp: datetime,
    ) -> None:
        self._start(metadata)
        self.url = url
        self.events = list(events)
        self.description = description
        self.enabled = enabled
        self.encrypted_secret = encrypted_secret
        self.disabled_reason: str | None = None

    @classmethod
    def create(
        cls,
        *,
        id: UUID,
        url: str,
        events: Sequence[str],
        encrypted_secret: str,
        description: str | None = None,
        enabled: bool = True,
        metadata: Mapping[str, Any] | None = None,
        at: datetime,
    ) -> WebhookEndpoint:
        metadata = {} if metadata is None else metadata
        fields = {
            "url": url,
            "events": list(events),
            "description": description,
            "enabled": enabled,
            "metadata": metadata,
        }
        check_endpoint_fields(fields)
        return cls._create(
            cls.Created,
            id=id,
            url=url,
            events=list(dict.fromkeys(events)),
            description=description,
            enabled=enabled,
            encrypted_secret=encrypted_secret,
            metadata=json_copy(metadata),
            timestamp=require_utc(at),
        )

    def update(
        self,
        *,
        url: str | Unset = UNSET,
        events: Sequence[str] | Unset = UNSET,
        description: str | Unset | None = UNSET,
        enabled: bool | Unset = UNSET,
        metadata: Mapping[str, Any] | Unset = UNSET,
        at: datetime,
    ) -> bool:
        """PATCH; returns False (no event) when nothing changes.

        Setting `enabled` (either way) clears the reason of an automatic disable.
        """
        self.check_not_deleted()
        given = {
            "url": url,
            "events": events if isinstance(events, Unset) else list(events),
            "description": description,
            "enabled": enabled,
            "metadata": metadata,
        }
        changes: dict[str, Any] = {k: v for k, v in given.items() if v is not UNSET}
        check_endpoint_fields(changes)
        if "events" in changes:
            changes["events"] = list(dict.fromkeys(changes["events"]))
        if "enabled" in changes and self.disabled_reason is not None:
            changes["disabled_reason"] = None
        return self._record_changes(changes, at)

    def rotate_secret(self, *, encrypted_secret: str, at: datetime) -> None:
        self.check_not_deleted()
        self._secret_rotated(encrypted_secret=encrypted_secret, timestamp=require_utc(at))

    @event("SecretRotated")
    def _secret_rotated(self, encrypted_secret: str, timestamp: datetime) -> None:
        self.encrypted_secret = encrypted_secret

    def disable(self, *, reason: str, at: datetime) -> bool:
        """Turn deliveries off (the receiver said 410 Gone); False if already off."""
        self.check_not_deleted()
        if not self.enabled:
            return False
        self._disabled(reason=reason, timestamp=require_utc(at))
        return True

    @event("Disabled")
    def _disabled(self, reason: str, timestamp: datetime) -> None:
        self.enabled = False
        self.disabled_reason = reason
