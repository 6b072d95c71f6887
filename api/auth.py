"""Who is calling: API keys, license keys and the operator token (API.md §3).

Each resource class declares `auth` (default: an API key is required), so a route that
forgets to say is closed, not open. The middleware resolves the credential by keyed hash
(one indexed lookup; comparing hashes by equality in the index is constant-time with
respect to the secret), puts a `Principal` on `req.context` and sets the tenant for the
request; the tenant scope is reset when the response is done (gthread workers reuse
threads). Resolved credentials are kept in the process's facts cache (api/facts_cache.py)
until a message says they changed: an authenticated request then costs no round trip
before its own work.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any
from typing import TypeVar
from uuid import UUID

import falcon

from api.errors import ApiError
from api.facts_cache import FactsCache
from api.services import Services
from ledger.crypto import keyed_hash
from ledger.domain.codes import ErrorCode
from ledger.domain.codes import Scope
from ledger.store.tenancy import tenant_scope
from projections.credentials import ApiKeyCredential
from projections.credentials import LicenseCredential
from projections.credentials import resolve_api_key
from projections.credentials import resolve_license_key

# The operator acts outside every tenant; its idempotency rows live under this id.
OPERATOR_TENANT = UUID(int=0)
_API_KEY_PREFIXES = ("lk_live_", "lk_test_")
_MAX_CREDENTIAL_LENGTH = 512
C = TypeVar("C", ApiKeyCredential, LicenseCredential)


class Auth(Enum):
    API_KEY = "api_key"  # Bearer lk_live_… / lk_test_…
    LICENSE_OR_API_KEY = "license_or_api_key"  # License <key>, or an API key
    OPERATOR = "operator"  # Bearer <LICENTRIC_ADMIN_TOKEN>
    NONE = "none"


@dataclass(frozen=True)
class Principal:
    kind: str  # api_key | license | operator
    id: str | None
    tenant_id: UUID
    environment: str | None = None
    scopes: tuple[str, ...] = ()

    def allows(self, scope: Scope) -> bool:
        """API keys: an empty scope list is full access. License keys have no scopes."""
        if self.kind != "api_key":
            return False
        return not self.scopes or str(scope) in self.scopes


def unauthorized(message: str) -> ApiError:
    return ApiError(
        ErrorCode.UNAUTHORIZED, message, headers={"WWW-Authenticate": 'Bearer realm="licentric"'}
    )


def _admin_disabled() -> ApiError:
    return ApiError(ErrorCode.NOT_FOUND, "The admin API is disabled on this server.")


def principal_of(req: falcon.Request) -> Principal:
    principal = getattr(req.context, "principal", None)
    if principal is None:
        raise unauthorized("Authentication required.")
    assert isinstance(principal, Principal)
    return principal


class AuthMiddleware:
    def __init__(self, services: Services, cache: FactsCache | None = None) -> None:
        self._services = services
        self._cache = cache if cache is not None and cache.enabled else None

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        if resource is None:
            return
        policy: Auth = getattr(resource, "auth", Auth.API_KEY)
        if policy is Auth.NONE:
            return
        if policy is Auth.OPERATOR and self._services.config.admin_token is None:
            # Disabled means absent, whatever credential (or none) the request carries.
            raise _admin_disabled()
        scheme, _, credential = (req.get_header("Authorization") or "").strip().partition(" ")
        credential = credential.strip()
        if not credential or len(credential) > _MAX_CREDENTIAL_LENGTH:
            raise unauthorized("Missing or malformed Authorization header.")
        scheme = scheme.lower()
        if policy is Auth.OPERATOR:
            principal = self._operator(scheme, credential)
        elif scheme == "license" and policy is Auth.LICENSE_OR_API_KEY:
            principal = self._license(credential)
        elif scheme == "bearer":
            principal = self._api_key(credential)
        else:
            raise unauthorized("Unsupported authorization scheme for this endpoint.")
        req.context.principal = principal
        scope = tenant_scope(principal.tenant_id)
        scope.__enter__()
        req.context.tenant_scope = scope

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        scope = getattr(req.context, "tenant_scope", None)
        if scope is not None:
            req.context.tenant_scope = None
            scope.__exit__(None, None, None)

    def _operator(self, scheme: str, credential: str) -> Principal:
        token = self._services.config.admin_token
        if token is None:
            raise _admin_disabled()
        if scheme != "bearer" or not hmac.compare_digest(credential.encode(), token.encode()):
            raise unauthorized("Invalid operator token.")
        return Principal(kind="operator", id=None, tenant_id=OPERATOR_TENANT)

    def _api_key(self, credential: str) -> Principal:
        if not credential.startswith(_API_KEY_PREFIXES):
            raise unauthorized("Invalid API key.")
        key_hash = bytes.fromhex(keyed_hash(self._services.pepper, credential))
        found = self._resolved(key_hash, ApiKeyCredential, resolve_api_key)
        now = self._services.clock()
        if found is None or (found.expires_at is not None and found.expires_at <= now):
            raise unauthorized("Invalid, revoked or expired API key.")
        return Principal(
            kind="api_key",
            id=str(found.api_key_id),
            tenant_id=found.tenant_id,
            environment=found.environment,
            scopes=found.scopes,
        )

    def _license(self, credential: str) -> Principal:
        key_hash = bytes.fromhex(keyed_hash(self._services.pepper, credential))
        found = self._resolved(key_hash, LicenseCredential, resolve_license_key)
        if found is None:
            raise unauthorized("Invalid license key.")
        return Principal(
            kind="license",
            id=str(found.license_id),
            tenant_id=found.tenant_id,
            environment=found.environment,
        )

    def _resolved(
        self, key_hash: bytes, kind: type[C], resolve: Callable[[Any, bytes], C | None]
    ) -> C | None:
        """The credential with this hash: from the cache, else one statement (then kept,
        unless a message about it arrived while it was being read)."""
        cache = self._cache
        if cache is not None:
            cached = cache.credential(key_hash)
            if isinstance(cached, kind):
                return cached
            ticket = cache.ticket()
        with self._services.ledger.autocommit() as curs:
            found = resolve(curs, key_hash)
        if found is not None and cache is not None:
            cache.put_credential(key_hash, found, ticket)
        return found


def optional_api_key(services: Services, req: falcon.Request) -> Principal | None:
    """A Bearer API key sent to an endpoint that needs none (`validate-key` uses it to
    scope the lookup to the caller's environment). None when absent or another scheme;
    401 when it is a Bearer credential that does not authenticate."""
    scheme, _, credential = (req.get_header("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    credential = credential.strip()
    if not credential or len(credential) > _MAX_CREDENTIAL_LENGTH:
        raise unauthorized("Missing or malformed Authorization header.")
    return AuthMiddleware(services)._api_key(credential)
