"""Codes that are part of the wire contract (API.md). Defined once, used everywhere."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Error codes of API.md §2."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    CHECKOUT_TTL_INVALID = "CHECKOUT_TTL_INVALID"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    LICENSE_SUSPENDED = "LICENSE_SUSPENDED"
    LICENSE_REVOKED = "LICENSE_REVOKED"
    LICENSE_EXPIRED = "LICENSE_EXPIRED"
    LICENSE_BANNED = "LICENSE_BANNED"
    MACHINE_LIMIT_EXCEEDED = "MACHINE_LIMIT_EXCEEDED"
    FLOATING_LIMIT_EXCEEDED = "FLOATING_LIMIT_EXCEEDED"
    FINGERPRINT_TAKEN = "FINGERPRINT_TAKEN"
    OFFLINE_NOT_ALLOWED = "OFFLINE_NOT_ALLOWED"
    USAGE_LIMIT_EXCEEDED = "USAGE_LIMIT_EXCEEDED"
    REFERENCE_NOT_FOUND = "REFERENCE_NOT_FOUND"
    BUSINESS_RULE_VIOLATION = "BUSINESS_RULE_VIOLATION"
    RATE_LIMITED = "RATE_LIMITED"
    UNAVAILABLE = "UNAVAILABLE"


class ValidationCode(StrEnum):
    """Validation result codes of API.md §5.2."""

    VALID = "VALID"
    NOT_FOUND = "NOT_FOUND"
    BANNED = "BANNED"
    REVOKED = "REVOKED"
    SUSPENDED = "SUSPENDED"
    EXPIRED = "EXPIRED"
    USAGE_LIMIT_EXCEEDED = "USAGE_LIMIT_EXCEEDED"
    ENTITLEMENTS_MISSING = "ENTITLEMENTS_MISSING"
    FINGERPRINT_REQUIRED = "FINGERPRINT_REQUIRED"
    FINGERPRINT_NOT_FOUND = "FINGERPRINT_NOT_FOUND"
    MACHINE_LIMIT_EXCEEDED = "MACHINE_LIMIT_EXCEEDED"
    HEARTBEAT_REQUIRED = "HEARTBEAT_REQUIRED"


class LicenseStatus(StrEnum):
    """License status on the wire; `expired` is derived from time (see License.status_at)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    REVOKED = "revoked"
    BANNED = "banned"


class ExpirationStrategy(StrEnum):
    RESTRICT_ACCESS = "RESTRICT_ACCESS"
    ALLOW_ACCESS = "ALLOW_ACCESS"
    REVOKE = "REVOKE"


class HeartbeatCullStrategy(StrEnum):
    DEACTIVATE_DEAD = "DEACTIVATE_DEAD"
    KEEP_DEAD = "KEEP_DEAD"


class HeartbeatStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    ALIVE = "ALIVE"
    DEAD = "DEAD"


class FingerprintUniqueness(StrEnum):
    PER_LICENSE = "PER_LICENSE"
    PER_POLICY = "PER_POLICY"
    PER_ACCOUNT = "PER_ACCOUNT"


class PolicyTemplate(StrEnum):
    DESKTOP_APP = "desktop_app"
    CLI_TOOL = "cli_tool"
    SAAS = "saas"
    TRIAL = "trial"
    CUSTOM = "custom"


class Platform(StrEnum):
    MACOS = "macos"
    WINDOWS = "windows"
    LINUX = "linux"
    DOCKER = "docker"
    KUBERNETES = "kubernetes"


class EnvironmentName(StrEnum):
    LIVE = "live"
    TEST = "test"


class Scope(StrEnum):
    """API key scopes of API.md §3 (an empty list means full access)."""

    PRODUCTS_READ = "products:read"
    PRODUCTS_WRITE = "products:write"
    POLICIES_READ = "policies:read"
    POLICIES_WRITE = "policies:write"
    ENTITLEMENTS_READ = "entitlements:read"
    ENTITLEMENTS_WRITE = "entitlements:write"
    LICENSES_READ = "licenses:read"
    LICENSES_WRITE = "licenses:write"
    MACHINES_READ = "machines:read"
    MACHINES_WRITE = "machines:write"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    EVENTS_READ = "events:read"
    ANALYTICS_READ = "analytics:read"
    API_KEYS_WRITE = "api_keys:write"


class WebhookEventType(StrEnum):
    """Webhook event types of API.md §6 (`*` in a subscription is a pattern, not a type)."""

    LICENSE_CREATED = "license.created"
    LICENSE_UPDATED = "license.updated"
    LICENSE_ACTIVATED = "license.activated"
    LICENSE_SUSPENDED = "license.suspended"
    LICENSE_REINSTATED = "license.reinstated"
    LICENSE_RENEWED = "license.renewed"
    LICENSE_REVOKED = "license.revoked"
    LICENSE_BANNED = "license.banned"
    LICENSE_EXPIRED = "license.expired"
    LICENSE_DELETED = "license.deleted"
    LICENSE_LIMIT_REACHED = "license.limit_reached"
    LICENSE_CHECKED_OUT = "license.checked_out"
    LICENSE_FILE_REGENERATED = "license.file_regenerated"
    LICENSE_USAGE_INCREMENTED = "license.usage_incremented"
    LICENSE_ENTITLEMENTS_CHANGED = "license.entitlements_changed"
    MACHINE_ACTIVATED = "machine.activated"
    MACHINE_DEACTIVATED = "machine.deactivated"
    MACHINE_HEARTBEAT_STARTED = "machine.heartbeat_started"
    MACHINE_DEAD = "machine.dead"
    MACHINE_REVIVED = "machine.revived"
    VALIDATION_SUCCESS = "validation.success"
    VALIDATION_FAILED = "validation.failed"
    PRODUCT_CREATED = "product.created"
    PRODUCT_UPDATED = "product.updated"
    PRODUCT_DELETED = "product.deleted"
    POLICY_CREATED = "policy.created"
    POLICY_UPDATED = "policy.updated"
    POLICY_DELETED = "policy.deleted"
    ENTITLEMENT_CREATED = "entitlement.created"
    ENTITLEMENT_UPDATED = "entitlement.updated"
    ENTITLEMENT_DELETED = "entitlement.deleted"
    WEBHOOK_TEST = "webhook.test"
