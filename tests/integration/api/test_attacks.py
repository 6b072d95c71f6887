"""Attacks on every endpoint (issue 8), over the app's own route table like the contract
tests (`test_contract.py`, whose 401/403/cross-tenant-404 checks are not repeated here).

The victim is tenant A (acme live) with one of each resource; after every attack A's
data is read back as A and must be unchanged. The attacks:

- tenant B's License key on every endpoint with A's ids; B's API key and A's own test
  key with A's ids in bodies and query strings (the paths are test_contract's);
- another license's License key (same tenant) on a license's machines;
- scope escalation through `POST /api-keys`, and tenant keys on operator endpoints;
- SQL-significant, NUL and very long unicode strings in every string field of every
  body (found by walking each operation's JSON Schema), in every query parameter and
  in the non-uuid path parameters; numbers that JSON or jsonb cannot hold;
- bodies just over 1 MiB, 10,000 levels deep, non-JSON or without a content type.

Answers must be the documented 4xx (never a 5xx; `CheckedClient` checks every status
and body against the OpenAPI document), and every tenant's hash chain must still verify.
"""

from __future__ import annotations

import copy
import io
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from uuid import UUID
from uuid import uuid4

import falcon
import pytest

from api.auth import Auth
from api.config import Config
from api.media import MAX_BODY_BYTES
from api.media import BoundedJSONHandler
from ledger.application import LedgerApplication
from ledger.commands import licenses
from ledger.domain.codes import Scope
from ledger.store.log import verify_chain
from tests.integration.api.conftest import ADMIN_TOKEN
from tests.integration.api.conftest import Account
from tests.integration.api.conftest import CheckedClient
from tests.integration.api.conftest import Tenant
from tests.integration.api.test_contract import OPERATIONS
from tests.integration.api.test_contract import Op
from tests.integration.api.test_contract import body_for
from tests.integration.api.test_contract import build_world
from tests.integration.api.test_contract import context
from tests.integration.api.test_contract import scoped_key
from tests.integration.api.test_contract import snapshot
from tests.integration.api.test_contract import url_for
from tests.integration.ledger.helpers import app_connection
from tests.integration.ledger.helpers import as_tenant
from tests.integration.ledger.helpers import whole_log

TENANT_OPS = [op for op in OPERATIONS if op.auth in (Auth.API_KEY, Auth.LICENSE_OR_API_KEY)]
LICENSE_AUTH_OPS = [op for op in OPERATIONS if op.auth is Auth.LICENSE_OR_API_KEY]
OPERATOR_OPS = [op for op in OPERATIONS if op.auth is Auth.OPERATOR]
COLLECTION_OPS = [op for op in TENANT_OPS if "{" not in op.path]
WITH_BODY = [op for op in OPERATIONS if op.spec.body is not None]
WITH_QUERY = [op for op in TENANT_OPS if op.spec.query]


def _text_params(op: Op) -> list[str]:
    """Path parameters that are not ids (the uuid converter refuses any other text)."""
    return [name for name in re.findall(r"\{(\w+)\}", op.path) if not name.endswith("_id")]


WITH_TEXT_PATH = [op for op in TENANT_OPS if _text_params(op)]

HOSTILE = {
    "sql-quote": "' OR 1=1 --",
    "sql-drop": '"; DROP TABLE events; --',
    "nul": "before\u0000after",
    "long-unicode": "ü€😀" * 40_000,
    "percent": "%",
    "underscore": "_",
    "like-pattern": "%_%\\",
}
# Raw JSON number literals: some are not JSON (400 at parse), some overflow a double,
# some are floats jsonb would print back differently (1e100, -0.0).
HOSTILE_NUMBERS = ["1e400", "-1e400", "NaN", "Infinity", "1e100", "1.0", "-0.0", "1.5",
                   "18446744073709551617", "-9223372036854775809"]  # fmt: skip


# --- the worlds ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def world_a(ledger: LedgerApplication, config: Config, acme: Account) -> dict[str, str]:
    """The victim's resources (A = acme live)."""
    return build_world(ledger, config, acme.live)


@pytest.fixture(scope="module")
def world_b(ledger: LedgerApplication, config: Config, globex: Account) -> dict[str, str]:
    """The attacker's own resources (B = globex live): its License key, and a sandbox
    for hostile input that B may legitimately store in its own tenant."""
    return build_world(ledger, config, globex.live)


@pytest.fixture(scope="module")
def sibling_key(
    ledger: LedgerApplication, config: Config, acme: Account, world_a: dict[str, str]
) -> str:
    """The License key of a second license of A's (same product and policy)."""
    return licenses.issue_license(
        ledger,
        context(acme.live),
        license_id=uuid4(),
        product_id=UUID(world_a["product_id"]),
        policy_id=UUID(world_a["policy_id"]),
        pepper=config.pepper,
    ).key


def victim_state(
    client: CheckedClient, tenant: Tenant, world: dict[str, str], database: str
) -> list[Any]:
    """A's resources as A reads them, plus the head of A's log: any write appends."""
    with app_connection(database) as conn, as_tenant(conn, UUID(tenant.tenant_id)) as curs:
        head = curs.execute("SELECT position, hash FROM log_heads").fetchone()
    return [*snapshot(client, tenant, world), head]


@pytest.fixture
def unchanged(
    client: CheckedClient, acme: Account, world_a: dict[str, str], database: str
) -> Iterator[None]:
    """The test must leave A exactly as it found it."""
    before = victim_state(client, acme.live, world_a, database)
    yield
    assert victim_state(client, acme.live, world_a, database) == before


def a_ids(world: dict[str, str]) -> list[str]:
    return [value for name, value in world.items() if name.endswith("_id") or name == "key"]


def assert_refused(result: Any, *statuses: int) -> None:
    assert result.status_code in statuses, result.text[:300]
    assert result.json["code"], result.text[:300]


# --- other credentials on A's ids -------------------------------------------------------


@pytest.mark.parametrize("op", TENANT_OPS, ids=lambda op: op.id)
@pytest.mark.usefixtures("unchanged")
def test_another_tenants_license_key_reaches_nothing_of_ours(
    op: Op, client: CheckedClient, world_a: dict[str, str], world_b: dict[str, str]
) -> None:
    result = client.request(
        op.method,
        url_for(op, world_a),
        auth=f"License {world_b['key']}",
        json=body_for(op, world_a),
    )
    if op.auth is Auth.API_KEY:
        assert_refused(result, 401)  # a License key is no credential here at all
    elif op.spec.scope is not None or "{" not in op.path:
        assert_refused(result, 403)  # scopes are API keys' only; or another license's id
    else:
        assert_refused(result, 404)  # B's license cannot see A's machines


@pytest.mark.parametrize("op", LICENSE_AUTH_OPS, ids=lambda op: op.id)
@pytest.mark.usefixtures("unchanged")
def test_a_license_key_cannot_act_on_another_licenses_machines(
    op: Op, client: CheckedClient, world_a: dict[str, str], sibling_key: str
) -> None:
    result = client.request(
        op.method, url_for(op, world_a), auth=f"License {sibling_key}", json=body_for(op, world_a)
    )
    assert_refused(result, 403)
    assert result.json["code"] == "FORBIDDEN"


def test_the_license_key_of_the_machine_works(
    client: CheckedClient, world_a: dict[str, str]
) -> None:
    """The control for the test above: the refusal is about the license, not the scheme."""
    machine = f"/api/v1/machines/{world_a['machine_id']}"
    assert client.get(machine, auth=f"License {world_a['key']}").status_code == 200


def _query_with_ids(op: Op, world: dict[str, str]) -> dict[str, str]:
    """Every uuid query parameter set to one of `world`'s ids (productId -> product_id)."""
    params = {}
    for name, schema in op.spec.query.items():
        if schema.get("format") == "uuid":
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
            params[name] = world.get(snake, world["product_id"])
    return params


@pytest.mark.parametrize("op", COLLECTION_OPS, ids=lambda op: op.id)
@pytest.mark.usefixtures("unchanged")
def test_our_ids_in_bodies_and_queries_are_invisible_to_other_tenants_and_environments(
    op: Op, client: CheckedClient, acme: Account, globex: Account, world_a: dict[str, str]
) -> None:
    body = body_for(op, world_a)
    names_ours = any(i in json.dumps(body) for i in a_ids(world_a))
    for intruder in (globex.live, acme.test):
        result = client.request(
            op.method,
            url_for(op, world_a),
            key=intruder.api_key,
            json=body,
            params=_query_with_ids(op, world_a),
        )
        assert result.status_code < 500, result.text[:300]
        if names_ours and op.method != "GET":
            assert result.status_code >= 400, (intruder.environment, result.text[:300])
        if result.status_code < 300:
            leaked = [i for i in a_ids(world_a) if i in result.text]
            assert not leaked, (intruder.environment, leaked)


def test_test_keys_validate_no_live_license(
    client: CheckedClient, acme: Account, world_a: dict[str, str]
) -> None:
    result = client.post(
        "/api/v1/licenses/validate-key", key=acme.test.api_key, json={"key": world_a["key"]}
    )
    assert result.status_code == 200
    assert result.json["data"]["valid"] is False
    assert result.json["data"]["code"] == "NOT_FOUND"
    assert result.json["data"]["license"] is None


# --- escalation ------------------------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
def test_a_scoped_key_cannot_create_a_broader_key(
    client: CheckedClient, ledger: LedgerApplication, config: Config, acme: Account
) -> None:
    manage = str(Scope.API_KEYS_WRITE)
    for scope in (str(s) for s in Scope if s is not Scope.API_KEYS_WRITE):
        key = scoped_key(ledger, config, acme.test, [manage, scope])
        other = next(str(s) for s in Scope if str(s) not in (manage, scope))
        for asked in ([], [other], [scope, other], [manage, scope, other]):
            result = client.post(
                "/api/v1/api-keys", key=key, json={"name": "escalate", "scopes": asked}
            )
            assert_refused(result, 403)
            assert result.json["code"] == "FORBIDDEN", (scope, asked)
        granted = client.post("/api/v1/api-keys", key=key, json={"name": "ok", "scopes": [scope]})
        assert granted.status_code == 201, granted.text
        assert granted.json["data"]["scopes"] == [scope]


@pytest.mark.parametrize("op", OPERATOR_OPS, ids=lambda op: op.id)
def test_tenant_keys_are_not_operator_tokens(
    op: Op, client: CheckedClient, acme: Account, world_a: dict[str, str]
) -> None:
    for auth in (f"Bearer {acme.live.api_key}", f"License {world_a['key']}"):
        result = client.request(op.method, url_for(op, {}), auth=auth, json=body_for(op, {}))
        assert_refused(result, 401)


# --- hostile strings -------------------------------------------------------------------

_KEY = object()  # a path step meaning "the hostile value is the key of a free-form object"


def string_slots(schema: dict[str, Any], path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place a string can go in a body valid for `schema`."""
    for alternative in schema.get("anyOf", []):
        yield from string_slots(alternative, path)
    kind = schema.get("type")
    if kind == "string":
        yield path
    elif kind == "array":
        yield from string_slots(schema.get("items", {}), (*path, 0))
    elif kind == "object":
        properties = schema.get("properties")
        if properties is None:  # free-form (metadata): hostile keys and values
            yield (*path, _KEY)
            yield (*path, "note")
        for name, sub in (properties or {}).items():
            yield from string_slots(sub, (*path, name))


def number_slots(schema: dict[str, Any], path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place a number can go: typed number fields, and free-form objects' values."""
    for alternative in schema.get("anyOf", []):
        yield from number_slots(alternative, path)
    kind = schema.get("type")
    if kind in ("integer", "number"):
        yield path
    elif kind == "array":
        yield from number_slots(schema.get("items", {}), (*path, 0))
    elif kind == "object":
        properties = schema.get("properties")
        if properties is None:
            yield (*path, "amount")
        for name, sub in (properties or {}).items():
            yield from number_slots(sub, (*path, name))


def placed(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of `body` with `value` at `path` (containers created as needed)."""
    if not path:
        return value
    step, rest = path[0], path[1:]
    if step is _KEY:
        return {value: "x"}
    if isinstance(step, int):
        return [placed(None, rest, value)]
    base = copy.deepcopy(body) if isinstance(body, dict) else {}
    base[step] = placed(base.get(step), rest, value)
    return base


WITH_STRINGS = [op for op in WITH_BODY if any(string_slots(dict(op.spec.body or {})))]


def label(path: tuple[Any, ...]) -> str:
    return ".".join("<key>" if p is _KEY else str(p) for p in path)


def _auth_for(op: Op, tenant: Tenant) -> str:
    return f"Bearer {ADMIN_TOKEN if op.auth is Auth.OPERATOR else tenant.api_key}"


@pytest.mark.parametrize("op", WITH_STRINGS, ids=lambda op: op.id)
@pytest.mark.usefixtures("unchanged")
def test_hostile_strings_in_every_body_field_are_stored_verbatim_or_refused(
    op: Op, client: CheckedClient, globex: Account, world_b: dict[str, str]
) -> None:
    assert op.spec.body is not None
    for path in dict.fromkeys(string_slots(dict(op.spec.body))):
        for name, value in HOSTILE.items():
            # A fresh example each time: a repeated activation would answer the first one.
            body = placed(body_for(op, world_b) or {}, path, value)
            result = client.request(
                op.method, url_for(op, world_b), auth=_auth_for(op, globex.live), json=body
            )
            where = (op.id, label(path), name)
            assert result.status_code < 500, (where, result.text[:300])
            if "\u0000" in value:
                assert result.status_code == 400, where
                assert result.json["code"] == "VALIDATION_ERROR", where
            elif result.status_code < 300 and result.content:
                # Stored, then: as data, never as SQL (the value comes back whole).
                top = path[0]
                data = result.json.get("data")
                if isinstance(data, dict) and len(path) == 1 and isinstance(data.get(top), str):
                    assert data[top] == value, where


@pytest.mark.parametrize("op", WITH_BODY, ids=lambda op: op.id)
@pytest.mark.usefixtures("unchanged")
def test_numbers_json_or_jsonb_cannot_hold_are_refused(
    op: Op, client: CheckedClient, globex: Account, world_b: dict[str, str]
) -> None:
    assert op.spec.body is not None
    base = body_for(op, world_b) or {}
    for path in dict.fromkeys(number_slots(dict(op.spec.body))):
        for literal in HOSTILE_NUMBERS:
            marker = "@@" + secrets.token_hex(4)
            text = json.dumps(placed(base, path, marker)).replace(f'"{marker}"', literal)
            result = client.request(
                op.method,
                url_for(op, world_b),
                auth=_auth_for(op, globex.live),
                body=text,
                headers={"Content-Type": "application/json"},
            )
            assert result.status_code < 500, (op.id, label(path), literal, result.text[:300])


@pytest.mark.parametrize("op", WITH_QUERY, ids=lambda op: op.id)
@pytest.mark.usefixtures("unchanged")
def test_hostile_query_parameters_are_refused_or_match_nothing(
    op: Op, client: CheckedClient, globex: Account, world_b: dict[str, str]
) -> None:
    for param in [*op.spec.query, "unknownParam"]:
        for name, value in HOSTILE.items():
            result = client.request(
                op.method, url_for(op, world_b), key=globex.live.api_key, params={param: value}
            )
            where = (op.id, param, name)
            assert result.status_code < 500, (where, result.text[:300])
            if "\u0000" in value:
                assert result.status_code == 400, where
                assert result.json["code"] == "VALIDATION_ERROR", where


@pytest.mark.parametrize("op", WITH_TEXT_PATH, ids=lambda op: op.id)
@pytest.mark.usefixtures("unchanged")
def test_hostile_path_parameters_find_nothing(
    op: Op, client: CheckedClient, globex: Account, world_b: dict[str, str]
) -> None:
    for name, value in HOSTILE.items():
        url = op.path.format_map(
            {**world_b, **dict.fromkeys(_text_params(op), quote(value, safe=""))}
        )
        result = client.request(op.method, url, key=globex.live.api_key, json=body_for(op, world_b))
        assert result.status_code in (400, 404), (op.id, name, result.text[:300])


# --- hostile documents -----------------------------------------------------------------


def _send_raw(
    client: CheckedClient, op: Op, world: dict[str, str], tenant: Tenant, body: bytes, ctype: str
) -> Any:
    headers = {"Content-Type": ctype} if ctype else {}
    return client.request(
        op.method, url_for(op, world), auth=_auth_for(op, tenant), body=body, headers=headers
    )


def _bad_documents(valid: Any) -> dict[str, tuple[bytes, str]]:
    just_over = {"name": "x" * MAX_BODY_BYTES}
    deep = "[" * 10_000 + "]" * 10_000
    nested_metadata = {"metadata": {"a": json.loads("[" * 200 + "]" * 200)}}
    as_json = json.dumps(valid).encode()
    return {
        "just over 1 MiB": (json.dumps(just_over).encode(), "application/json"),
        "10,000 levels": (deep.encode(), "application/json"),
        "200 levels of metadata": (json.dumps(nested_metadata).encode(), "application/json"),
        "not UTF-8": (b'{"name": "\xff\xfe"}', "application/json"),
        "text/plain": (as_json, "text/plain"),
        "form": (b"name=x&code=y", "application/x-www-form-urlencoded"),
        "no content type": (as_json, ""),
        "JSON with NaN": (b'{"metadata": {"n": NaN}}', "application/json"),
        "JSON with 1e400": (b'{"metadata": {"n": 1e400}}', "application/json"),
    }  # fmt: skip


@pytest.mark.parametrize("op", WITH_BODY, ids=lambda op: op.id)
@pytest.mark.usefixtures("unchanged")
def test_oversize_deep_malformed_and_non_json_bodies_are_400(
    op: Op, client: CheckedClient, acme: Account, world_a: dict[str, str]
) -> None:
    """Sent by A on A's own resources: refused before anything is written."""
    for name, (body, ctype) in _bad_documents(body_for(op, world_a) or {}).items():
        result = _send_raw(client, op, world_a, acme.live, body, ctype)
        assert result.status_code == 400, (op.id, name, result.text[:300])
        assert result.json["code"] == "VALIDATION_ERROR", (op.id, name)
        assert len(result.content) < 4096, (op.id, name)  # no echo of the hostile input


def test_a_chunked_body_is_cut_at_the_cap() -> None:
    """No Content-Length (chunked): the handler itself stops reading past 1 MiB."""
    handler = BoundedJSONHandler()
    stream = io.BytesIO(b'"' + b"x" * MAX_BODY_BYTES + b'"')
    with pytest.raises(falcon.HTTPContentTooLarge):
        handler.deserialize(stream, "application/json", None)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("9.99", True),
        ("1e15", True),
        ("-1.5e-300", True),
        ("9223372036854775807", True),
        ("1e16", False),
        ("1e100", False),
        ("-0.0", False),
        ("100000000000000000000", False),  # parsed as a float 1e20
    ],
)
def test_metadata_numbers_are_refused_unless_jsonb_gives_them_back_unchanged(
    value: str, accepted: bool, client: CheckedClient, globex: Account
) -> None:
    code = "num-" + secrets.token_hex(4)
    body = f'{{"name": "n", "code": "{code}", "metadata": {{"n": {value}}}}}'
    result = client.post(
        "/api/v1/products",
        key=globex.live.api_key,
        body=body,
        headers={"Content-Type": "application/json"},
    )
    if not accepted:
        assert result.status_code == 400, result.text
        assert result.json["details"]["issues"][0]["path"] == ["metadata"]
        return
    assert result.status_code == 201, result.text
    again = client.get(f"/api/v1/products/{result.json['data']['id']}", key=globex.live.api_key)
    assert again.json["data"]["metadata"] == {"n": json.loads(value)}


# --- afterwards ------------------------------------------------------------------------


def test_every_chain_still_verifies(
    database: str, acme: Account, globex: Account, world_a: dict[str, str], world_b: dict[str, str]
) -> None:
    """Whatever the attacks stored (in B's sandbox) re-hashes to the same chain."""
    with app_connection(database) as conn:
        for tenant in (acme.live, acme.test, globex.live, globex.test):
            events = whole_log(conn, UUID(tenant.tenant_id))
            assert verify_chain(events) is None, tenant.environment
        assert len(whole_log(conn, UUID(globex.live.tenant_id))) > 10
