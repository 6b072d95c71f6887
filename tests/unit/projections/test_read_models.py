"""Every inline writer is registered for rebuilds, under the aggregate it projects."""

from __future__ import annotations

from projections import inline
from projections.read_models import READ_MODELS


def test_every_inline_writer_is_a_registered_read_model() -> None:
    registered = {(m.aggregate, m.writer) for m in READ_MODELS}
    live = {(aggregate, writer) for aggregate, writer in inline._WRITERS.items()}
    for aggregate, more in getattr(inline, "_MORE_WRITERS", {}).items():
        live |= {(aggregate, writer) for writer in more}
    missing = sorted(f"{a.__name__}: {w.__name__}" for a, w in live - registered)
    assert not missing, f"register these writers in projections/read_models.py: {missing}"


def test_read_model_names_are_unique_and_own_their_tables_once() -> None:
    names = [m.name for m in READ_MODELS]
    assert len(names) == len(set(names))
    owned = [(t.name, t.scope) for m in READ_MODELS for t in m.owns]
    assert len(owned) == len(set(owned))
