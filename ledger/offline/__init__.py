"""Offline license files (API.md §7), as pure functions: render -> encrypt? -> sign -> armour.

- `content`: what a file says (header and payload) about a checkout of a license;
- `encryption`: the optional AES-256-GCM payload under a key derived from the license key;
- `certificate`: signing, armouring and the strict verifier (the CLI and tests use it).

Nothing here reads a clock, a database or the environment: time, keys and state are
passed in, so the same inputs always give the same bytes (except an encryption nonce).
"""
