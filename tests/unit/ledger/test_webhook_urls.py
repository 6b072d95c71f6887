"""Webhook URL format and destination rules (API.md §6)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ledger.webhooks.urls import UnresolvableHostError
from ledger.webhooks.urls import destination_problem
from ledger.webhooks.urls import url_format_problem


def resolver(*addresses: str):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> Sequence[str]:
        if not addresses:
            raise UnresolvableHostError(host)
        return addresses

    return resolve


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/licentric", "http://93.184.216.34:8080/x?y=1", "HTTPS://a.b/"],
)
def test_http_and_https_urls_are_well_formed(url: str) -> None:
    assert url_format_problem(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "https:///nohost",
        "example.com/hook",
        "http://example.com:99999/",
        "https://" + "a" * 2100 + ".com/",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    assert url_format_problem(url) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://localhost:3000/",
        "http://api.localhost/",
        "http://[::ffff:10.0.0.1]/",
    ],
)
def test_private_loopback_and_link_local_literals_are_refused(url: str) -> None:
    assert destination_problem(url, allow_private=False, resolve=resolver()) is not None
    assert destination_problem(url, allow_private=True, resolve=resolver()) is None


def test_names_are_judged_by_every_address_they_resolve_to() -> None:
    url = "https://hooks.example.com/x"
    assert destination_problem(url, allow_private=False, resolve=resolver("93.184.216.34")) is None
    rebound = resolver("93.184.216.34", "10.0.0.7")
    assert destination_problem(url, allow_private=False, resolve=rebound) is not None


def test_unresolvable_names_are_left_to_the_caller() -> None:
    with pytest.raises(UnresolvableHostError):
        destination_problem("https://nowhere.invalid/", allow_private=False, resolve=resolver())
