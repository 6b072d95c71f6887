"""One webhook attempt over HTTP: connect 5 s, 15 s in all, no redirects.

`requests` with a urllib3 `Timeout(connect=…, total=…)`: the read timeout is whatever
the connect left of the total, so a receiver that sleeps is cut off at the deadline.
Only the first 2 KiB of the response are kept (the delivery log shows them); a body is
read to its end only when small, so keep-alive connections are reused between
attempts to the same receiver. Each worker thread has its own session.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests
from urllib3.util import Timeout

from ledger.webhooks.urls import Resolver
from ledger.webhooks.urls import UnresolvableHostError
from ledger.webhooks.urls import destination_problem
from ledger.webhooks.urls import resolve_host

RESPONSE_EXCERPT_BYTES = 2048
# Read past the excerpt only this far (then drop the connection instead of draining).
MAX_DRAIN_BYTES = 64 * 1024
USER_AGENT = "Licentric-Webhooks/1.0"


@dataclass(frozen=True)
class HttpOutcome:
    status: int | None
    latency_ms: int
    response: str | None
    error: str | None
    retry_after: str | None = None


class HttpSender:
    def __init__(
        self,
        *,
        connect_timeout: float,
        total_timeout: float,
        allow_private: bool,
        resolve: Resolver = resolve_host,
    ) -> None:
        self._connect = connect_timeout
        self._total = total_timeout
        self._allow_private = allow_private
        self._resolve = resolve
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # Proxies from the environment must not see (or reroute) signed deliveries.
            session.trust_env = False
            self._local.session = session
        return session

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> HttpOutcome:
        started = time.monotonic()
        refusal = self._refusal(url)
        if refusal is not None:
            return HttpOutcome(None, 0, None, refusal)
        all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
        try:
            response = self._session().post(
                url,
                data=body,
                headers=all_headers,
                # requests hands a urllib3 Timeout through as is (its stubs say no).
                timeout=Timeout(connect=self._connect, total=self._total),  # type: ignore[arg-type]
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            return HttpOutcome(None, _ms(started), None, f"timed out after {self._total:g} s")
        except requests.RequestException as e:
            return HttpOutcome(None, _ms(started), None, f"connection failed: {type(e).__name__}")
        try:
            excerpt = self._excerpt(response, started)
        except requests.RequestException:
            excerpt = None
        finally:
            response.close()
        latency = _ms(started)
        if latency > self._total * 1000:
            return HttpOutcome(response.status_code, latency, excerpt, "response too slow")
        return HttpOutcome(
            response.status_code, latency, excerpt, None, response.headers.get("Retry-After")
        )

    def _excerpt(self, response: requests.Response, started: float) -> str:
        kept = bytearray()
        seen = 0
        for chunk in response.iter_content(8192):
            if len(kept) < RESPONSE_EXCERPT_BYTES:
                kept += chunk[: RESPONSE_EXCERPT_BYTES - len(kept)]
            seen += len(chunk)
            if seen > MAX_DRAIN_BYTES or time.monotonic() - started > self._total:
                break
        return kept.decode("utf-8", errors="replace")

    def _refusal(self, url: str) -> str | None:
        """Checked before every attempt: a name can resolve somewhere private later."""
        try:
            problem = destination_problem(
                url, allow_private=self._allow_private, resolve=self._resolve
            )
        except UnresolvableHostError:
            return "host name does not resolve"
        return None if problem is None else f"destination refused: url {problem}"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
