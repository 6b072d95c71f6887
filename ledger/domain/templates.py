"""Policy settings: defaults, templates (API.md §4 Policies) and their checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import TypedDict

from ledger.domain.checks import Issues
from ledger.domain.checks import check_bool
from ledger.domain.checks import check_choice
from ledger.domain.checks import check_int
from ledger.domain.checks import check_optional_int
from ledger.domain.codes import ExpirationStrategy
from ledger.domain.codes import FingerprintUniqueness
from ledger.domain.codes import HeartbeatCullStrategy
from ledger.domain.codes import PolicyTemplate


class PolicySettings(TypedDict, total=False):
    """The tunable fields of a policy (snake_case; camelCase on the wire)."""

    max_machines: int | None
    max_uses: int | None
    floating: bool
    duration_days: int | None
    expiration_strategy: str
    require_heartbeat: bool
    heartbeat_interval_minutes: int
    heartbeat_cull_strategy: str
    require_fingerprint: bool
    fingerprint_uniqueness: str
    offline_allowed: bool
    offline_max_days: int
    allow_machine_transfer: bool
    is_trial: bool
    trial_duration_days: int | None
    overridable: bool


DEFAULTS: PolicySettings = {
    "max_machines": None,
    "max_uses": None,
    "floating": False,
    "duration_days": None,
    "expiration_strategy": ExpirationStrategy.RESTRICT_ACCESS.value,
    "require_heartbeat": False,
    "heartbeat_interval_minutes": 60,
    "heartbeat_cull_strategy": HeartbeatCullStrategy.DEACTIVATE_DEAD.value,
    "require_fingerprint": True,
    "fingerprint_uniqueness": FingerprintUniqueness.PER_LICENSE.value,
    "offline_allowed": True,
    "offline_max_days": 14,
    "allow_machine_transfer": False,
    "is_trial": False,
    "trial_duration_days": None,
    "overridable": True,
}

TEMPLATES: dict[PolicyTemplate, PolicySettings] = {
    PolicyTemplate.DESKTOP_APP: {
        "max_machines": 2,
        "offline_allowed": True,
        "offline_max_days": 14,
    },
    PolicyTemplate.CLI_TOOL: {"max_machines": 3, "offline_allowed": True, "offline_max_days": 7},
    PolicyTemplate.SAAS: {
        "max_machines": None,
        "floating": True,
        "require_fingerprint": False,
        "offline_allowed": False,
        "require_heartbeat": True,
        "heartbeat_interval_minutes": 24 * 60,
        "duration_days": 30,
    },
    PolicyTemplate.TRIAL: {
        "max_machines": 1,
        "offline_allowed": False,
        "is_trial": True,
        "duration_days": 14,
        "trial_duration_days": 14,
    },
    PolicyTemplate.CUSTOM: {},
}

_INTS = {  # field -> (minimum, nullable)
    "max_machines": (1, True),
    "max_uses": (1, True),
    "duration_days": (1, True),
    "heartbeat_interval_minutes": (1, False),
    "offline_max_days": (1, False),
    "trial_duration_days": (1, True),
}
_CHOICES = {
    "expiration_strategy": [str(c) for c in ExpirationStrategy],
    "heartbeat_cull_strategy": [str(c) for c in HeartbeatCullStrategy],
    "fingerprint_uniqueness": [str(c) for c in FingerprintUniqueness],
}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def check_settings(issues: Issues, settings: Mapping[str, Any]) -> None:
    for key, value in settings.items():
        field = camel(key)
        if key not in DEFAULTS:
            issues.add([field], "unknown policy field")
        elif key in _INTS:
            minimum, nullable = _INTS[key]
            if nullable:
                check_optional_int(issues, field, value, minimum=minimum)
            else:
                check_int(issues, field, value, minimum=minimum)
        elif key in _CHOICES:
            check_choice(issues, field, value, _CHOICES[key])
        else:
            check_bool(issues, field, value)


def check_template(issues: Issues, template: object) -> None:
    if template is not None:
        check_choice(issues, "template", template, [str(t) for t in PolicyTemplate])


def template_settings(template: str | None) -> dict[str, Any]:
    """What a template fills in; explicit fields given alongside it win."""
    return {} if template is None else dict(TEMPLATES[PolicyTemplate(template)])


def resolve_settings(template: str | None, explicit: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults, overlaid by the template's values, overlaid by explicit fields."""
    return {**DEFAULTS, **template_settings(template), **explicit}
