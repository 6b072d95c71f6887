"""Identifiers that must be unique but need not be unpredictable.

`uuid.uuid4()` reads `os.urandom` on every call: a system call, measured at ~25 µs on
this project's VMs, twice per validation (the request id and the validation record's
stream id). These ids are not secrets — they are echoed in headers and stored in the
open log — so the process's Mersenne Twister serves: the `random` module seeds it from
`os.urandom` at import and again in every child after `fork()` (gunicorn workers never
share a sequence), and 122 random bits make a collision as unlikely as uuid4's.
Never use these for credentials, keys or anything an attacker must not guess: those
come from `secrets`.
"""

from __future__ import annotations

import os
import random
from uuid import UUID

# An instance of its own, seeded from os.urandom now and after every fork.
_random = random.Random()  # noqa: S311 - not secrets: see the module docstring
os.register_at_fork(after_in_child=_random.seed)


def unique_id() -> UUID:
    """A version-4 (random) UUID, without a system call."""
    return UUID(int=_random.getrandbits(128), version=4)
