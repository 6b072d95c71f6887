"""Event data as the API shows it: camelCase, no stored secrets, user metadata verbatim."""

from __future__ import annotations

from projections.history import public_data


def test_secrets_are_left_out_and_keys_camel_cased() -> None:
    data = {
        "product_id": "p",
        "key_hash": "ab" * 32,
        "sealed_key": "x",
        "signing_key": {"kid": "k", "public_key": "MCow", "encrypted_seed": "s"},
        "encrypted_response_secret": "c",
        "changes": {"max_machines_override": 2, "metadata": {"key_hash": 1, "snake_key": 2}},
        "metadata": {"user_field": {"encrypted": True}},
        "machines": [{"ip_address": "10.0.0.1"}],
    }
    assert public_data(data) == {
        "productId": "p",
        "signingKey": {"kid": "k", "publicKey": "MCow"},
        "changes": {"maxMachinesOverride": 2, "metadata": {"key_hash": 1, "snake_key": 2}},
        "metadata": {"user_field": {"encrypted": True}},
        "machines": [{"ipAddress": "10.0.0.1"}],
    }
