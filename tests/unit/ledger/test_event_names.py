"""Every stored event name decodes to a class that can apply it on replay."""

from __future__ import annotations

import pytest
from eventsourcing.domain import AggregateCreated
from eventsourcing.domain import decorated_funcs

from ledger.application import STREAMS
from ledger.store.mapper import EventNames

EventNames.register(*STREAMS)
NAMES = sorted(EventNames._by_name)


@pytest.mark.parametrize("name", NAMES)
def test_every_event_name_replays_through_a_decorated_method(name: str) -> None:
    event_class = EventNames.replay_class_of(name)
    assert issubclass(event_class, AggregateCreated) or event_class in decorated_funcs


def test_inherited_events_are_named_per_stream() -> None:
    assert {"product.updated", "policy.deleted", "license.machine_activated"} <= set(NAMES)
