"""Maps domain events to stored events under stable names, not Python import paths.

The library's stock mapper stores `module:Class` topics, so moving a class would orphan
every stored event. Here an event is stored as `<stream type>.<snake_case event>` plus
a schema version (`license.suspended@1`), and its state as plain JSON (`occurredAt` and
`data`), which is what the auditor's feed and the hash chain read. Upcasting keeps the
library's convention (`class_version` and `upcast_vN_vN+1` methods on the event class).

Snapshots keep the stock behaviour (import-path topic, transcoded state): they are a
disposable cache, never part of the ledger.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any
from typing import ClassVar
from uuid import UUID

import orjson
from eventsourcing.domain import AggregateCreated
from eventsourcing.domain import CanSnapshotAggregate
from eventsourcing.domain import DecoratedFuncCaller
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.domain import decorated_funcs
from eventsourcing.persistence import Mapper
from eventsourcing.persistence import MapperDeserialisationError
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from ledger.store.hashchain import iso_micro

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_LIBRARY_FIELDS = ("originator_id", "originator_version", "timestamp", "originator_topic")


# Events declared on a shared base or mixin (`LedgerAggregate.Deleted`,
# `LicenseMachines.MachineActivated`) are triggered as that shared class, which does not
# say which stream it belongs to; the application says, for the aggregates it saves.
_saving: ContextVar[dict[Any, str] | None] = ContextVar("licentric_saving", default=None)


@contextmanager
def saving(aggregates: Iterable[Any]) -> Iterator[None]:
    """Tell the mapper the stream type of each aggregate being saved."""
    streams = {
        aggregate.id: aggregate.stream_type
        for aggregate in aggregates
        if hasattr(aggregate, "stream_type")
    }
    token = _saving.set(streams)
    try:
        yield
    finally:
        _saving.reset(token)


def snake_case(name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", name).lower()


class EventNames:
    """Two-way registry: event class <-> stable name, and event class -> aggregate."""

    _by_class: ClassVar[dict[type, str]] = {}
    _by_name: ClassVar[dict[str, type]] = {}
    _aggregate_of: ClassVar[dict[type, type]] = {}

    @classmethod
    def register(cls, *aggregate_classes: type) -> None:
        for aggregate in aggregate_classes:
            stream_type: str = aggregate.stream_type  # type: ignore[attr-defined]
            for attribute in dir(aggregate):
                event_class = getattr(aggregate, attribute)
                if not _is_own_event(aggregate, event_class):
                    continue
                name = f"{stream_type}.{snake_case(event_class.__name__)}"
                known = cls._by_name.get(name)
                if known is not None and known is not event_class:
                    msg = f"two event classes claim the stable name {name!r}"
                    raise ValueError(msg)
                cls._by_class[event_class] = name
                cls._by_name[name] = event_class
                cls._aggregate_of[event_class] = aggregate

    @classmethod
    def name_of(cls, event_class: type, originator_id: Any = None) -> str:
        streams = _saving.get()
        stream_type = streams.get(originator_id) if streams else None
        if stream_type is None:
            try:
                return cls._by_class[event_class]
            except KeyError:
                msg = f"{event_class.__qualname__} is not registered (EventNames.register)"
                raise LookupError(msg) from None
        name = f"{stream_type}.{snake_case(event_class.__name__)}"
        registered = cls._by_name.get(name)
        # The aggregate's own copy of a shared event subclasses it (or is it).
        if registered is None or not issubclass(registered, event_class):
            msg = f"{event_class.__qualname__} has no stable name in stream {stream_type!r}"
            raise LookupError(msg)
        return name

    @classmethod
    def class_of(cls, name: str) -> type:
        return cls._by_name[name]

    @classmethod
    def replay_class_of(cls, name: str) -> type:
        """The class that can apply a stored `name` event to its aggregate.

        The library gives each aggregate subclass its own copy of an event declared on a
        base (`Product.Updated` of `LedgerAggregate.Updated`), but only the base's class
        knows the decorated method that applies it.
        """
        event_class = cls._by_name[name]
        if issubclass(event_class, DecoratedFuncCaller) and event_class not in decorated_funcs:
            for base in event_class.__mro__[1:]:
                if base in decorated_funcs:
                    return base
        return event_class

    @classmethod
    def aggregate_of(cls, event_class: type) -> type:
        return cls._aggregate_of[event_class]


def _is_own_event(aggregate: type, candidate: object) -> bool:
    # Only event classes declared on this aggregate (its qualname prefix), not the
    # library's base `Event`/`Created` or a parent aggregate's events.
    return (
        isinstance(candidate, type)
        and issubclass(candidate, aggregate.Event)  # type: ignore[attr-defined]
        and candidate.__qualname__.startswith(aggregate.__qualname__ + ".")
        and candidate.__name__ not in ("Event", "Snapshot")
        and not issubclass(candidate, CanSnapshotAggregate)
    )


def split_topic(topic: str) -> tuple[str, int]:
    """`license.suspended@2` -> ("license.suspended", 2)."""
    name, _, version = topic.partition("@")
    return name, int(version or 1)


def stored_event(
    name: str,
    originator_id: UUID,
    version: int,
    at: datetime,
    data: dict[str, Any],
    *,
    schema_version: int = 1,
) -> StoredEvent:
    """The stored form of event `name` (`validation.success`), as `to_stored_event` makes
    it from a domain event. For appends that need no aggregate (one-event streams whose
    event is known field by field): building the aggregate costs ~20x the append."""
    body = {"occurredAt": iso_micro(at), "data": data}
    return StoredEvent(
        originator_id=originator_id,
        originator_version=version,
        topic=f"{name}@{schema_version}",
        state=orjson.dumps(body),
    )


class StableNameMapper(Mapper[UUID]):
    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        if isinstance(domain_event, CanSnapshotAggregate):
            return super().to_stored_event(domain_event)
        event_class = type(domain_event)
        state = vars(domain_event)
        data = {k: v for k, v in state.items() if k not in _LIBRARY_FIELDS}
        return stored_event(
            EventNames.name_of(event_class, state["originator_id"]),
            state["originator_id"],
            state["originator_version"],
            state["timestamp"],
            data,
            schema_version=getattr(event_class, "class_version", 1),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        if "@" not in stored_event.topic:
            return super().to_domain_event(stored_event)
        name, from_version = split_topic(stored_event.topic)
        try:
            body = orjson.loads(stored_event.state)
        except orjson.JSONDecodeError as e:
            msg = f"cannot decode stored event {name!r}: {e}"
            raise MapperDeserialisationError(msg) from e
        originator_id = stored_event.originator_id
        return domain_event_of(
            name,
            from_version,
            body["data"],
            originator_id=originator_id if isinstance(originator_id, UUID) else UUID(originator_id),
            originator_version=stored_event.originator_version,
            timestamp=datetime.fromisoformat(body["occurredAt"]),
        )


def domain_event_of(
    name: str,
    schema_version: int,
    data: dict[str, Any],
    *,
    originator_id: UUID,
    originator_version: int,
    timestamp: datetime,
) -> DomainEventProtocol[UUID]:
    """The domain event a stored row describes (upcast to its class's version).

    `data` is taken over (not copied): pass a dict nobody else holds. Used by the mapper
    and by replays that read rows directly (rebuilds, the auditor's tools).
    """
    try:
        event_class, to_version, created_topic = _decoding(name)
    except KeyError as e:
        msg = f"cannot decode stored event {name!r}: {e}"
        raise MapperDeserialisationError(msg) from e
    while schema_version < to_version:
        getattr(event_class, f"upcast_v{schema_version}_v{schema_version + 1}")(data)
        schema_version += 1
    data["originator_id"] = originator_id
    data["originator_version"] = originator_version
    data["timestamp"] = timestamp
    if created_topic is not None:
        data["originator_topic"] = created_topic
    domain_event: DomainEventProtocol[UUID] = object.__new__(event_class)
    object.__setattr__(domain_event, "__dict__", data)
    return domain_event


@functools.cache
def _decoding(name: str) -> tuple[type, int, str | None]:
    """Per stable name: the class that applies it, its schema version, and (for created
    events) its aggregate's topic. Cached: replays decode millions of rows of a few dozen
    names. (An unknown name raises KeyError, which is not cached.)"""
    event_class = EventNames.replay_class_of(name)
    topic = None
    if issubclass(event_class, AggregateCreated):
        topic = get_topic(EventNames.aggregate_of(event_class))
    return event_class, getattr(event_class, "class_version", 1), topic
