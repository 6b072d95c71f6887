"""Changes this process has just committed, announced in-process before the command returns.

Migration 0012's triggers announce every change to the validation facts' tables on the
`licentric_facts` channel, whoever the writer is. Those notifications reach a listening
process asynchronously: PostgreSQL signals the listening backends at commit, and each
writes to its client's socket when it is next scheduled — on a loaded machine that can be
after the writer's own client has its COMMIT back and has sent the next request (the CI
run of 2026-12-01 caught a command followed at once by a validation in the same process
being answered from the cache). So a command also announces what it changed here,
synchronously, after its commit and before it returns: in the process that made a
change, the very next validation (or request with a revoked API key) sees it, with no wait.

Messages use the payload format of the triggers (`L|<tenant>|<ids>`, `P|…`, `K|…` for API
keys, `T|<tenant>`), so a subscriber handles both sources with one function. Subscribers
are held weakly.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Protocol
from uuid import UUID


class Subscriber(Protocol):
    def on_notify(self, payload: str) -> None: ...


_subscribers: weakref.WeakSet[Subscriber] = weakref.WeakSet()


def subscribe(subscriber: Subscriber) -> None:
    _subscribers.add(subscriber)


def announce(payloads: Iterable[str]) -> None:
    messages = list(payloads)
    if not messages:
        return
    for subscriber in list(_subscribers):
        for payload in messages:
            subscriber.on_notify(payload)


def license_changed(tenant_id: UUID, license_id: UUID | str) -> str:
    return f"L|{tenant_id}|{license_id}"


def policy_changed(tenant_id: UUID, policy_id: UUID | str) -> str:
    return f"P|{tenant_id}|{policy_id}"


def api_key_changed(tenant_id: UUID, api_key_id: UUID | str) -> str:
    return f"K|{tenant_id}|{api_key_id}"


def tenant_changed(tenant_id: UUID) -> str:
    return f"T|{tenant_id}"
