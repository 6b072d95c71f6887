"""FactsCache's bookkeeping, as a property: whatever the interleaving of reads, puts and
change messages, the cache never answers with facts (or a resolved credential) that a
message has since declared changed, and keeps what no message concerned."""

from __future__ import annotations

from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from api.facts_cache import FactsCache
from ledger.application import announced_changes
from ledger.domain.codes import ExpirationStrategy
from ledger.domain.codes import LicenseStatus
from ledger.domain.validation import LicenseFacts
from ledger.domain.validation import PolicyFacts
from ledger.store import local_changes
from ledger.store.tenancy import tenant_scope
from projections.credentials import ApiKeyCredential
from projections.credentials import LicenseCredential
from projections.validation import ValidationFacts

TENANTS = [UUID(int=1), UUID(int=2)]
POLICIES = [UUID(int=10), UUID(int=11)]
# license index -> (tenant, policy): licenses 0 and 1 share a policy, 2 and 3 a tenant.
LICENSES = [
    (UUID(int=100), TENANTS[0], POLICIES[0]),
    (UUID(int=101), TENANTS[0], POLICIES[0]),
    (UUID(int=102), TENANTS[1], POLICIES[1]),
    (UUID(int=103), TENANTS[1], POLICIES[1]),
]
# api key index -> (api key id, tenant)
API_KEYS = [(UUID(int=200), TENANTS[0]), (UUID(int=201), TENANTS[1])]
# What the property caches: the facts of each license (items 0-3), each API key (4-5)
# and each license key as a credential (6-9).
ITEMS = len(LICENSES) + len(API_KEYS) + len(LICENSES)


def credential(item: int) -> ApiKeyCredential | LicenseCredential:
    if item < len(LICENSES) + len(API_KEYS):
        api_key_id, tenant_id = API_KEYS[item - len(LICENSES)]
        return ApiKeyCredential(tenant_id, api_key_id, "live", (), None)
    license_id, tenant_id, _ = LICENSES[item - len(LICENSES) - len(API_KEYS)]
    return LicenseCredential(tenant_id, license_id, "live")


def facts(index: int) -> ValidationFacts:
    license_id, tenant_id, policy_id = LICENSES[index]
    return ValidationFacts(
        tenant_id=tenant_id,
        encrypted_response_secret=None,
        license=LicenseFacts(
            id=license_id,
            status=LicenseStatus.ACTIVE,
            name=None,
            expires_at=None,
            uses_count=0,
            max_machines_override=None,
            max_uses_override=None,
            entitlements=(),
        ),
        policy_id=policy_id,
        policy=PolicyFacts(
            max_machines=None,
            max_uses=None,
            floating=False,
            expiration_strategy=ExpirationStrategy.RESTRICT_ACCESS,
            require_heartbeat=False,
            heartbeat_interval_minutes=None,
            require_fingerprint=False,
            overridable=False,
            entitlements=(),
        ),
        machines=(),
        activated=True,
    )


def key(index: int) -> bytes:
    return bytes([index])


def concerns(message: tuple[str, str], index: int) -> bool:
    kind, one = message
    if index >= len(LICENSES):
        cred = credential(index)
        ref = ("K", str(cred.api_key_id)) if isinstance(cred, ApiKeyCredential) else (
            "L", str(cred.license_id))  # fmt: skip
        return kind == "*" or message == ref or (kind == "T" and one == str(cred.tenant_id))
    license_id, tenant_id, policy_id = LICENSES[index]
    return (
        kind == "*"
        or (kind == "L" and one == str(license_id))
        or (kind == "P" and one == str(policy_id))
        or (kind == "T" and one == str(tenant_id))
    )


def payload(message: tuple[str, str]) -> str:
    kind, one = message
    if kind == "*":
        return "*"
    if kind == "T":
        return f"T|{one}"
    return f"{kind}|{TENANTS[0]}|{one}"


messages = st.one_of(
    st.tuples(st.just("L"), st.sampled_from([str(lic[0]) for lic in LICENSES])),
    st.tuples(st.just("P"), st.sampled_from([str(p) for p in POLICIES])),
    st.tuples(st.just("K"), st.sampled_from([str(k) for k, _ in API_KEYS])),
    st.tuples(st.just("T"), st.sampled_from([str(t) for t in TENANTS])),
    st.just(("*", "")),
)
licenses = st.integers(0, ITEMS - 1)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("read"), licenses),
        st.tuples(st.just("put"), licenses),
        st.tuples(st.just("message"), messages),
        st.tuples(st.just("get"), licenses),
    ),
    max_size=60,
)


@given(operations)
def test_never_answers_with_facts_a_message_declared_changed(ops: list[tuple[str, object]]) -> None:
    cache = FactsCache("postgresql://unused", clock=lambda: 0.0)
    cache._connected()  # listening (no real listener: nothing pending)
    log: list[tuple[str, str]] = []  # every message so far
    reads: dict[int, int] = {}  # license -> len(log) when its read started
    tickets: dict[int, int] = {}  # license -> the cache's ticket for that read
    cached_since: dict[int, int] = {}  # license -> len(log) when its put was accepted
    for op, arg in ops:
        if op == "read":
            assert isinstance(arg, int)
            reads[arg] = len(log)
            tickets[arg] = cache.ticket()
        elif op == "put" and arg in reads:
            assert isinstance(arg, int)
            if arg < len(LICENSES):
                cache.put(key(arg), facts(arg), tickets[arg])
            else:
                cache.put_credential(key(arg), credential(arg), tickets[arg])
            if not any(concerns(m, arg) for m in log[reads[arg] :]):
                cached_since[arg] = len(log)
        elif op == "message":
            assert isinstance(arg, tuple)
            log.append(arg)
            cache.on_notify(payload(arg))
            for index in list(cached_since):
                if concerns(arg, index):
                    del cached_since[index]
        elif op == "get":
            assert isinstance(arg, int)
            got: object
            if arg < len(LICENSES):
                got = cache.get(key(arg))
                assert got is None or got.license.id == LICENSES[arg][0]
            else:
                got = cache.credential(key(arg))
                assert got is None or got == credential(arg)
            assert (got is not None) == (arg in cached_since), (ops, log)


def test_a_drop_of_the_connection_forgets_everything() -> None:
    cache = FactsCache("postgresql://unused", clock=lambda: 0.0)
    cache._connected()
    cache.put(key(0), facts(0), cache.ticket())
    assert cache.get(key(0)) is not None
    ticket = cache.ticket()
    cache._lost()
    cache.put(key(1), facts(1), ticket)  # not listening: refused
    cache._connected()
    assert cache.get(key(0)) is None
    cache.put(key(1), facts(1), ticket)  # read before the reconnection: refused
    assert cache.get(key(1)) is None


def test_entries_expire_after_the_ttl() -> None:
    now = [0.0]
    cache = FactsCache("postgresql://unused", ttl_seconds=60, clock=lambda: now[0])
    cache._connected()
    cache.put(key(0), facts(0), cache.ticket())
    now[0] = 59.0
    assert cache.get(key(0)) is not None
    now[0] = 61.0
    assert cache.get(key(0)) is None


def test_the_oldest_entry_makes_room() -> None:
    cache = FactsCache("postgresql://unused", max_entries=2, clock=lambda: 0.0)
    cache._connected()
    for index in range(3):
        cache.put(key(index), facts(index), cache.ticket())
    assert [cache.get(key(i)) is not None for i in range(3)] == [False, True, True]
    cache.on_notify(f"L|{TENANTS[0]}|{LICENSES[1][0]}")
    assert cache.get(key(1)) is None


def test_a_message_of_unknown_form_drops_everything() -> None:
    cache = FactsCache("postgresql://unused", clock=lambda: 0.0)
    cache._connected()
    cache.put(key(0), facts(0), cache.ticket())
    cache.on_notify("Z|something new")
    assert cache.get(key(0)) is None


def test_a_change_committed_by_this_process_is_dropped_before_the_command_returns() -> None:
    # ledger/store/local_changes.py: what LedgerApplication.save announces after commit,
    # with no notification from PostgreSQL at all.
    cache = FactsCache("postgresql://unused", clock=lambda: 0.0)
    cache._connected()
    for index in range(4):
        cache.put(key(index), facts(index), cache.ticket())
    license_id, tenant_id, _ = LICENSES[0]
    saved = _Saved("license", license_id.int)
    with tenant_scope(tenant_id):
        local_changes.announce(announced_changes((saved,)))
    assert cache.get(key(0)) is None
    assert [cache.get(key(i)) is not None for i in (1, 2, 3)] == [True, True, True]


def test_what_each_saved_stream_announces() -> None:
    tenant = TENANTS[0]
    aggregates = [_Saved("license", 1), _Saved("policy", 2), _Saved("product", 3)]
    aggregates += [_Saved(stream, 4) for stream in ("api_key", "webhook_endpoint", "validation")]
    with tenant_scope(tenant):
        assert list(announced_changes(tuple(aggregates))) == [
            f"L|{tenant}|{UUID(int=1)}",
            f"P|{tenant}|{UUID(int=2)}",
            f"T|{tenant}",
            f"K|{tenant}|{UUID(int=4)}",
        ]
    assert list(announced_changes(tuple(aggregates))) == []  # no tenant in scope: nothing committed


class _Saved:
    def __init__(self, stream_type: str, id_: int) -> None:
        self.stream_type = stream_type
        self.id = UUID(int=id_)
