"""Field checks shared by the aggregates; they collect issues with camelCase wire paths."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from ledger.domain.errors import Issue
from ledger.domain.errors import ValidationFailed

METADATA_MAX_KEYS = 64
METADATA_MAX_BYTES = 16 * 1024


class Issues:
    """Collects every problem of a command before refusing it, so a client sees them all."""

    def __init__(self) -> None:
        self.items: list[Issue] = []

    def add(self, path: Sequence[str | int], message: str) -> None:
        self.items.append(Issue(path=list(path), message=message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)


def check_text(
    issues: Issues,
    field: str,
    value: object,
    *,
    min_len: int = 0,
    max_len: int,
    pattern: re.Pattern[str] | None = None,
    pattern_text: str = "",
) -> None:
    if not isinstance(value, str):
        issues.add([field], "must be a string")
        return
    if not min_len <= len(value) <= max_len:
        issues.add([field], f"length must be between {min_len} and {max_len}")
    elif pattern is not None and not pattern.fullmatch(value):
        issues.add([field], f"must match {pattern_text or pattern.pattern}")


def check_optional_text(issues: Issues, field: str, value: object, *, max_len: int) -> None:
    if value is not None:
        check_text(issues, field, value, max_len=max_len)


def check_int(
    issues: Issues, field: str, value: object, *, minimum: int, maximum: int | None = None
) -> None:
    # bool is an int in Python but never a valid count on the wire.
    if not isinstance(value, int) or isinstance(value, bool):
        issues.add([field], "must be an integer")
    elif value < minimum:
        issues.add([field], f"must be at least {minimum}")
    elif maximum is not None and value > maximum:
        issues.add([field], f"must be at most {maximum}")


def check_optional_int(
    issues: Issues, field: str, value: object, *, minimum: int, maximum: int | None = None
) -> None:
    if value is not None:
        check_int(issues, field, value, minimum=minimum, maximum=maximum)


def check_bool(issues: Issues, field: str, value: object) -> None:
    if not isinstance(value, bool):
        issues.add([field], "must be a boolean")


def check_choice(issues: Issues, field: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        issues.add([field], f"must be one of {', '.join(choices)}")


# Numbers must read back from PostgreSQL `jsonb` exactly as they were hashed into the
# ledger's chain (and stay serialisable by orjson). jsonb prints 1e16 and larger floats
# as integer digits (1e100 comes back as a 101-digit int), and -0.0 as 0.0; integers
# beyond 64 bits cannot be serialised. Everything inside these bounds round-trips.
_FLOAT_LIMIT = 1e16
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
NUMBER_RULE = (
    "numbers must be 64-bit integers or decimals of magnitude below 1e16 (not -0.0);"
    " send other values as strings"
)


def _is_storable_number(value: int | float) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return _INT_MIN <= value <= _INT_MAX
    return (
        math.isfinite(value)
        and abs(value) < _FLOAT_LIMIT
        and not (value == 0 and math.copysign(1.0, value) < 0)
    )


def _is_json_native(value: object) -> bool:
    if value is None or isinstance(value, str | bool):
        return True
    if isinstance(value, int | float):
        return _is_storable_number(value)
    if isinstance(value, list):
        return all(_is_json_native(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json_native(v) for k, v in value.items())
    return False


def check_metadata(issues: Issues, value: object, field: str = "metadata") -> None:
    """Free JSON object: at most 64 keys and 16 KiB of compact UTF-8 JSON (API.md §1)."""
    if not isinstance(value, dict):
        issues.add([field], "must be an object")
        return
    if not _is_json_native(value):
        issues.add([field], f"must contain only JSON values; {NUMBER_RULE}")
        return
    if len(value) > METADATA_MAX_KEYS:
        issues.add([field], f"must have at most {METADATA_MAX_KEYS} keys")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > METADATA_MAX_BYTES:
        issues.add([field], f"must be at most {METADATA_MAX_BYTES} bytes")


ENTITLEMENT_CODE = re.compile(r"[a-z0-9_-]{1,100}")


def check_codes(issues: Issues, field: str, codes: object) -> None:
    if not isinstance(codes, list | tuple):
        issues.add([field], "must be a list of entitlement codes")
        return
    for index, code in enumerate(codes):
        if not isinstance(code, str) or not ENTITLEMENT_CODE.fullmatch(code):
            issues.add([field, index], "must match [a-z0-9_-]{1,100}")


def unique_codes(codes: Sequence[str]) -> list[str]:
    """Deduplicate, keeping first-seen order (events must be deterministic)."""
    return list(dict.fromkeys(codes))


def json_copy(value: Mapping[str, Any]) -> dict[str, Any]:
    """Deep copy of JSON data, so events and aggregate state never share mutable objects."""
    result: dict[str, Any] = json.loads(json.dumps(value))
    return result
