"""Key material for offline files, opened and sealed under the master key.

- Ed25519 seeds are stored encrypted in the environment's events (ledger.accounts);
- a license's offline *file key* (derived from its license key, ledger.offline.encryption)
  is stored sealed the same way. Each ciphertext names its owner as associated data
  (tenant, and license or kid), so a copy pasted under another owner does not open.
"""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID

from ledger.accounts import signing_seed_context
from ledger.crypto import decrypt
from ledger.crypto import encrypt
from ledger.domain.environment import SigningKey


def file_key_context(tenant_id: UUID, license_id: UUID) -> str:
    return f"{tenant_id}:offline-file-key:{license_id}"


def seal_file_key(master_key: bytes, tenant_id: UUID, license_id: UUID, file_key: bytes) -> str:
    return encrypt(master_key, file_key, context=file_key_context(tenant_id, license_id))


def open_file_key(master_key: bytes, tenant_id: UUID, license_id: UUID, sealed: str) -> bytes:
    return decrypt(master_key, sealed, context=file_key_context(tenant_id, license_id))


def signing_seed(master_key: bytes, tenant_id: UUID, key: SigningKey) -> bytes:
    return _open_seed(master_key, tenant_id, key.kid, key.encrypted_seed)


# Every checkout signs with its environment's active key: opening the seed each time was
# an AES-GCM decryption per file. Kept per process, keyed by the ciphertext itself (a
# rotated key is another entry; the retired one ages out). Holding the open seed adds no
# exposure: the master key that opens every seed is in the same memory.
@lru_cache(maxsize=1024)
def _open_seed(master_key: bytes, tenant_id: UUID, kid: str, encrypted_seed: str) -> bytes:
    return decrypt(master_key, encrypted_seed, context=signing_seed_context(tenant_id, kid))
