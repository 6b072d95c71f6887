"""Validation facts kept in memory, dropped the moment a row they came from changes.

A validation reads a license, its policy, its active machines with their latest pings and
the environment's signing secret (`validation_facts`, migration 0005). Read from
PostgreSQL that is a round trip and ~0.5 ms of database CPU per request; most validations
re-read facts that have not changed since the last one. So each API process keeps them,
keyed by the license key's hash, and drops them on the notifications of migration 0012:
statement triggers on every table the read touches send `licentric_facts` messages at
commit, whoever the writer is (API, worker timers, re-signer, rebuild, a DBA's UPDATE).

Why a cached answer is never older than what the database had when the request arrived,
give or take the moment between a commit and its message reaching this process's
socket (PostgreSQL signals the listening backends as it commits):
- Entries are served only while the listener is connected. When it loses its
  connection the whole cache is dropped and bypassed until LISTEN is back in place, then
  dropped again (messages sent in between were missed).
- A message that has reached the socket but not been handled yet (this process's
  listener thread not scheduled yet, or mid-batch) counts: while anything is pending,
  the cache is bypassed (`ChannelListener.pending`, a non-blocking poll).
- A read that raced with a change is not stored: `ticket()` is taken before the read,
  and `put()` refuses when any message that could concern those facts arrived since (a
  change committed after the read's snapshot announces itself after the read started).
- Time-dependent answers (expiry, heartbeat deadlines) are decided per request from the
  facts and the clock; the facts themselves do not change with time.
- A backstop `ttl` (10 min) bounds the damage of a writer that bypassed the triggers
  (`session_replication_role = replica`, say).
What the cache does not hold: facts the validation must count against (`maxUses`) or
record a first activation for; those answers are committed by a command anyway.
What is left is the delivery of a notification to *other* processes: PostgreSQL signals
the listening backends at commit, and each writes the message to its socket when it is
next scheduled — usually well under a millisecond, but on a loaded machine that can be
after the writer's client has its COMMIT back. So:
- a change committed by this process (a command, a heartbeat's last-seen row) is also
  announced in-process before the command returns (ledger/store/local_changes.py): the
  next validation here sees it, always;
- a change committed by another process (another gunicorn worker or host, the worker's
  timers, a DBA) is seen once its message has reached this process's socket.
scripts/bench/notify_delay.py measures that delivery delay (p99 ~1 ms, worst seen ~4 ms
on a loaded 2-core machine); docs/validation.md ("Facts cache") states the guarantee.

Credentials too: the API keys and license keys requests authenticate with
(api/auth.py), resolved by `api_key_principal` / `license_principal` (migration 0015),
are kept by hash under the same rules, dropped by the same channel's messages: `K|…`
for an API key (its lookup row, migration 0012; its scopes, expiry or revocation,
migration 0017), `L|…` for a license key, `T|…` for the tenant (its environment). An
API key revoked in this process is refused by the very next request here; elsewhere once
the message has arrived (same bound as above). Expiry is checked per request.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from collections.abc import Iterable

from api.answers import Remembered
from api.answers import RequestKey
from ledger.store import local_changes
from ledger.store.listen import ChannelListener
from projections.credentials import ApiKeyCredential
from projections.credentials import LicenseCredential
from projections.validation import ValidationFacts

_log = logging.getLogger(__name__)

CHANNEL = "licentric_facts"
# A backstop only (invalidation is by message): long enough that a fleet validating every
# few minutes keeps hitting, short enough to bound a trigger-bypassing writer's damage.
DEFAULT_TTL_SECONDS = 600.0
# Recent messages remembered for `put`'s race check; a read older than the oldest is
# simply not stored.
_RECENT = 4096
# How long "no message waiting on the socket" is trusted before polling it again. The
# poll is a system call (~20 µs on these VMs, and it releases the GIL, inviting a thread
# switch): once per millisecond instead of once per validation. It only ever concerned
# other processes' changes (this process's own are announced synchronously), which
# arrive asynchronously anyway; this adds at most 1 ms to their delivery.
QUIET_SECONDS = 0.001
_ALL = "*"


class Cached:
    """One license's facts in memory, and the answers already made from them.

    `answers` belongs to the validator (api/validator.py): decisions it may reuse for the
    same request while they hold. It lives and dies with the facts: a message that drops
    the facts drops them too."""

    __slots__ = ("answers", "facts", "stored_at")

    def __init__(self, facts: ValidationFacts, stored_at: float) -> None:
        self.facts = facts
        self.stored_at = stored_at
        self.answers: dict[RequestKey, Remembered] = {}


Credential = ApiKeyCredential | LicenseCredential


class _CachedCredential:
    __slots__ = ("credential", "stored_at")

    def __init__(self, credential: Credential, stored_at: float) -> None:
        self.credential = credential
        self.stored_at = stored_at


def _credential_ref(credential: Credential) -> tuple[str, str]:
    """(message kind, id) of the messages that concern `credential`."""
    if isinstance(credential, ApiKeyCredential):
        return "K", str(credential.api_key_id)
    return "L", str(credential.license_id)


_instances: weakref.WeakSet[FactsCache] = weakref.WeakSet()


def close_all() -> None:
    """Stop the listener of every cache of this process (tests: the apps of a finished
    module, whose listeners would otherwise hold a connection each until the run ends)."""
    for cache in list(_instances):
        cache.close()


class FactsCache:
    """Thread-safe. Reads take no lock (one dict lookup); changes take `_lock`."""

    def __init__(
        self,
        database_url: str | None,
        *,
        max_entries: int = 100_000,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = database_url
        self._max = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[bytes, Cached] = {}
        self._by_license: dict[str, bytes] = {}
        self._by_policy: dict[str, set[bytes]] = {}
        self._by_tenant: dict[str, set[bytes]] = {}
        self._credentials: dict[bytes, _CachedCredential] = {}
        self._credential_by_ref: dict[tuple[str, str], bytes] = {}
        self._credentials_by_tenant: dict[str, set[bytes]] = {}
        self._seq = 0  # count of messages (and connection changes) seen
        self._recent: deque[tuple[int, str, str]] = deque(maxlen=_RECENT)
        self._live = False
        self._listener: ChannelListener | None = None
        self._quiet_at = float("-inf")  # when the socket was last polled and found empty
        self.enabled = database_url is not None and max_entries > 0
        self.hits = 0  # answers served from memory (approximate under threads; tests)
        if self.enabled:
            # This process's own commits, announced before the command returns.
            local_changes.subscribe(self)
            _instances.add(self)

    # The request path

    def get(self, key_hash: bytes) -> ValidationFacts | None:
        entry = self.entry(key_hash)
        return None if entry is None else entry.facts

    def entry(self, key_hash: bytes) -> Cached | None:
        if not self._serving():
            return None
        entry = self._entries.get(key_hash)
        if entry is None or not self._fresh(entry.stored_at):
            return None
        self.hits += 1
        return entry

    def credential(self, key_hash: bytes) -> Credential | None:
        """The API key or license key with this hash, as last resolved, while no message
        has said it changed."""
        if not self._serving():
            return None
        entry = self._credentials.get(key_hash)
        if entry is None or not self._fresh(entry.stored_at):
            return None
        return entry.credential

    def _serving(self) -> bool:
        """Listening; otherwise start the listener (first use) and serve nothing yet."""
        if self._live:
            return True
        self._start()
        return False

    def _fresh(self, stored_at: float) -> bool:
        now = self._clock()
        if now - stored_at > self._ttl:
            return False
        if now - self._quiet_at > QUIET_SECONDS:
            listener = self._listener
            if listener is not None and listener.pending():
                return False  # a message not handled yet may concern it: read the database
            self._quiet_at = now
        return True

    def heard_since(self, ticket: int, kind: str, one: str) -> bool:
        """Whether a message of `kind` ("L", "P", "K", "T") naming `one` was handled after
        `ticket` was taken (diagnostics and tests: a foreign writer's change is seen
        once its message has arrived)."""
        with self._lock:
            return any(seq > ticket and k == kind and o == one for seq, k, o in self._recent)

    def ticket(self) -> int:
        """Take before reading the facts from the database; hand to `put`."""
        return self._seq

    def put(self, key_hash: bytes, facts: ValidationFacts, ticket: int) -> None:
        if not self._live or facts.policy_id is None:
            return
        license_id = str(facts.license.id)
        policy_id = str(facts.policy_id)
        tenant_id = str(facts.tenant_id)
        concerned = {"L": license_id, "P": policy_id, "T": tenant_id}
        with self._lock:
            if not self._live or self._stale(ticket, concerned):
                return
            if key_hash not in self._entries and len(self._entries) >= self._max:
                self._evict(next(iter(self._entries)))
            self._entries[key_hash] = Cached(facts, self._clock())
            self._by_license[license_id] = key_hash
            self._by_policy.setdefault(policy_id, set()).add(key_hash)
            self._by_tenant.setdefault(tenant_id, set()).add(key_hash)

    def put_credential(self, key_hash: bytes, credential: Credential, ticket: int) -> None:
        if not self._live:
            return
        kind, ref = _credential_ref(credential)
        tenant_id = str(credential.tenant_id)
        with self._lock:
            if not self._live or self._stale(ticket, {kind: ref, "T": tenant_id}):
                return
            if key_hash not in self._credentials and len(self._credentials) >= self._max:
                self._evict_credential(next(iter(self._credentials)))
            self._credentials[key_hash] = _CachedCredential(credential, self._clock())
            self._credential_by_ref[kind, ref] = key_hash
            self._credentials_by_tenant.setdefault(tenant_id, set()).add(key_hash)

    # Notifications

    def on_notify(self, payload: str) -> None:
        kind, _, rest = payload.partition("|")
        tenant, _, ids = rest.partition("|")
        if kind in ("L", "P") and ids:
            self._message(kind, ids.split(","))
        elif kind == "T" and tenant:
            self._message("T", (tenant,))
        elif kind == "K" and ids:
            self._message("K", ids.split(","))
        else:  # "*" (a truncate) or a message this version does not know
            self._message(_ALL, ("",))

    def _message(self, kind: str, ids: Iterable[str]) -> None:
        with self._lock:
            for one in ids:
                self._seq += 1
                self._recent.append((self._seq, kind, one))
                if kind in ("L", "K"):
                    if kind == "L" and (key_hash := self._by_license.get(one)) is not None:
                        self._evict(key_hash)
                    if (held := self._credential_by_ref.get((kind, one))) is not None:
                        self._evict_credential(held)
                elif kind == "P":
                    for key_hash in list(self._by_policy.get(one, ())):
                        self._evict(key_hash)
                elif kind == "T":
                    for key_hash in list(self._by_tenant.get(one, ())):
                        self._evict(key_hash)
                    for key_hash in list(self._credentials_by_tenant.get(one, ())):
                        self._evict_credential(key_hash)
                else:
                    self._clear()

    def _connected(self) -> None:
        self._message(_ALL, ("",))
        self._live = True
        _log.info("validation facts cache: listening on %s", CHANNEL)

    def _lost(self) -> None:
        self._live = False
        self._message(_ALL, ("",))

    # Internals (under _lock)

    def _stale(self, ticket: int, concerned: dict[str, str]) -> bool:
        """Whether a message since `ticket` named any of `concerned` (kind -> id)."""
        if ticket == self._seq:
            return False
        if not self._recent or self._recent[0][0] > ticket + 1:
            return True  # messages since the read were forgotten: assume the worst
        for seq, kind, one in reversed(self._recent):
            if seq <= ticket:
                break
            if kind == _ALL or concerned.get(kind) == one:
                return True
        return False

    def _evict(self, key_hash: bytes) -> None:
        entry = self._entries.pop(key_hash, None)
        if entry is None:
            return
        facts = entry.facts
        self._by_license.pop(str(facts.license.id), None)
        _discard(self._by_policy, str(facts.policy_id), key_hash)
        _discard(self._by_tenant, str(facts.tenant_id), key_hash)

    def _evict_credential(self, key_hash: bytes) -> None:
        entry = self._credentials.pop(key_hash, None)
        if entry is None:
            return
        kind, ref = _credential_ref(entry.credential)
        self._credential_by_ref.pop((kind, ref), None)
        _discard(self._credentials_by_tenant, str(entry.credential.tenant_id), key_hash)

    def _clear(self) -> None:
        self._credentials.clear()
        self._credential_by_ref.clear()
        self._credentials_by_tenant.clear()
        self._entries.clear()
        self._by_license.clear()
        self._by_policy.clear()
        self._by_tenant.clear()

    def _start(self) -> None:
        # Started on first use, after gunicorn forked this worker (threads do not
        # survive a fork).
        if not self.enabled or self._listener is not None or self._url is None:
            return
        with self._lock:
            if self._listener is not None:
                return
            self._listener = ChannelListener(
                self._url,
                CHANNEL,
                self.on_notify,
                on_connected=self._connected,
                on_lost=self._lost,
                name="facts-cache-listener",
            ).start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self._lost()


def _discard(index: dict[str, set[bytes]], key: str, key_hash: bytes) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(key_hash)
        if not members:
            del index[key]
