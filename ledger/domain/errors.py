"""Domain errors. Each carries a stable `ErrorCode`; the API maps codes to HTTP."""

# Names read as domain facts (`NotFound`, `MachineLimitExceeded`), like the codes they carry.
# ruff: noqa: N818

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from typing import TypedDict

from ledger.domain.codes import ErrorCode
from ledger.domain.codes import LicenseStatus


class Issue(TypedDict):
    """One validation problem: `path` is the camelCase wire path of the field."""

    path: list[str | int]
    message: str


class DomainError(Exception):
    code: ErrorCode = ErrorCode.BUSINESS_RULE_VIOLATION

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class ValidationFailed(DomainError):
    code = ErrorCode.VALIDATION_ERROR

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        text = "; ".join(
            f"{'.'.join(str(p) for p in i['path'])}: {i['message']}" for i in self.issues
        )
        super().__init__(f"Validation failed: {text}", {"issues": self.issues})

    @classmethod
    def single(cls, path: Sequence[str | int], message: str) -> ValidationFailed:
        return cls([Issue(path=list(path), message=message)])


class CheckoutTtlInvalid(DomainError):
    code = ErrorCode.CHECKOUT_TTL_INVALID


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class Conflict(DomainError):
    code = ErrorCode.CONFLICT


class InvalidTransition(Conflict):
    """A state transition that API.md does not allow (409 CONFLICT)."""

    def __init__(self, action: str, status: str) -> None:
        super().__init__(
            f"Cannot {action} a resource that is {status}",
            {"action": action, "status": status},
        )


_STATE_CODES = {
    LicenseStatus.SUSPENDED: ErrorCode.LICENSE_SUSPENDED,
    LicenseStatus.REVOKED: ErrorCode.LICENSE_REVOKED,
    LicenseStatus.EXPIRED: ErrorCode.LICENSE_EXPIRED,
    LicenseStatus.BANNED: ErrorCode.LICENSE_BANNED,
}


class LicenseStateError(DomainError):
    """The license's status forbids the action (409 LICENSE_<STATUS>)."""

    def __init__(self, status: LicenseStatus) -> None:
        super().__init__(f"License is {status}", {"status": str(status)})
        self.status = status
        self.code = _STATE_CODES[status]


class MachineLimitExceeded(DomainError):
    code = ErrorCode.MACHINE_LIMIT_EXCEEDED

    def __init__(self, maximum: int, current: int, reason: str | None = None) -> None:
        details: dict[str, Any] = {"max": maximum, "current": current}
        if reason is not None:
            details["reason"] = reason
        super().__init__(f"Machine limit of {maximum} reached", details)


class FloatingLimitExceeded(DomainError):
    code = ErrorCode.FLOATING_LIMIT_EXCEEDED

    def __init__(self, maximum: int, current: int) -> None:
        super().__init__(
            f"Floating limit of {maximum} reached", {"max": maximum, "current": current}
        )


class FingerprintTaken(DomainError):
    code = ErrorCode.FINGERPRINT_TAKEN


class OfflineNotAllowed(DomainError):
    code = ErrorCode.OFFLINE_NOT_ALLOWED


class UsageLimitExceeded(DomainError):
    code = ErrorCode.USAGE_LIMIT_EXCEEDED

    def __init__(self, maximum: int, current: int) -> None:
        super().__init__(f"Usage limit of {maximum} reached", {"max": maximum, "current": current})


class ReferenceNotFound(DomainError):
    code = ErrorCode.REFERENCE_NOT_FOUND


class BusinessRuleViolation(DomainError):
    code = ErrorCode.BUSINESS_RULE_VIOLATION

    def __init__(self, message: str, reason: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, {"reason": reason, **(details or {})})
