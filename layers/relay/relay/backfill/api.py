"""One provider's REST API, read politely: pacing, retries, Retry-After, a call counter.

- Pacing: at least `min_interval` seconds between two calls (each reader sets it under the
  provider's documented limit), so a long backfill does not trip the limiter at all.
- 429: wait what `Retry-After` says (or the provider's reset header, or an exponential
  backoff), up to `max_wait` seconds a time; then ProviderApiError.
- 5xx, timeouts, connection errors: retried with exponential backoff, `attempts` times.
- 404 on a single object: None (the provider no longer keeps it).
- 401/403: ProviderApiError at once, naming the permission the read key needs.
- Any other 4xx: ProviderApiError with the provider's own short message.

Nothing here logs a body: a provider's answer carries personal data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from relay.errors import ProviderApiError
from relay.vendors.http import vendor_message

TIMEOUT = (3.05, 30.0)  # connect, read
MAX_BACKOFF_SECONDS = 8.0
_RETRIED = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]


class ProviderApi:
    """`auth()` returns the headers that authenticate a call (read at every call: rotations)."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        auth: Callable[[], dict[str, str]],
        *,
        permission: str,
        min_interval: float = 0.0,
        max_wait: float = 60.0,
        attempts: int = 5,
        reset_header: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self._permission = permission
        self.min_interval = min_interval
        self._max_wait = max_wait
        self._attempts = attempts
        self._reset_header = reset_header
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._last_call: float | None = None
        self.calls = 0  # HTTP requests made, retries included

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, missing_ok: bool = False
    ) -> Reply | None:
        return self._call("GET", path, params=params, missing_ok=missing_ok)

    def post(self, path: str, body: Any) -> Reply:
        reply = self._call("POST", path, json_body=body)
        assert reply is not None
        return reply

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        missing_ok: bool = False,
    ) -> Reply | None:
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        failures = 0
        while True:
            self._pace()
            self.calls += 1
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers={"Accept": "application/json", **self._auth()},
                    timeout=TIMEOUT,
                )
            except requests.RequestException as exc:
                failures += 1
                self._retry_or_raise(failures, f"{type(exc).__name__}", None)
                continue
            if response.status_code == 429:
                failures += 1
                self._wait_for_limit(response, failures)
                continue
            if response.status_code in _RETRIED:
                failures += 1
                self._retry_or_raise(failures, f"answered {response.status_code}", response.status_code)
                continue
            if response.status_code == 404 and missing_ok:
                return None
            if response.status_code in (401, 403):
                raise ProviderApiError(
                    f"{self.provider} API refused the read key ({response.status_code}): it needs "
                    f"{self._permission}",
                    status=response.status_code,
                )
            if not 200 <= response.status_code < 300:
                raise ProviderApiError(
                    f"{self.provider} API answered {response.status_code} to {method} {path.split('?')[0]}: "
                    f"{(vendor_message(response) or '')[:200]}",
                    status=response.status_code,
                )
            try:
                body = response.json() if response.content else None
            except ValueError as exc:
                raise ProviderApiError(f"{self.provider} API answered non-JSON", status=200) from exc
            return Reply(response.status_code, body, response.headers)

    def _pace(self) -> None:
        now = self._clock()
        if self._last_call is not None and self.min_interval > 0:
            wait = self._last_call + self.min_interval - now
            if wait > 0:
                self._sleep(wait)
                now += wait
        self._last_call = now

    def _backoff(self, failures: int) -> float:
        return min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (failures - 1))

    def _retry_or_raise(self, failures: int, what: str, status: int | None) -> None:
        if failures >= self._attempts:
            raise ProviderApiError(f"{self.provider} API {what}, {failures} times", status=status)
        self._sleep(self._backoff(failures))

    def _wait_for_limit(self, response: requests.Response, failures: int) -> None:
        wait = _seconds(response.headers.get("Retry-After"))
        if wait is None and self._reset_header:
            wait = _seconds(response.headers.get(self._reset_header))
        if wait is None:
            wait = self._backoff(failures)
        if wait > self._max_wait or failures > 2 * self._attempts:
            raise ProviderApiError(
                f"{self.provider} API rate limit: asked to wait {wait:g} s (run again later, or with "
                "a narrower window)",
                status=429,
            )
        self._sleep(wait)


def bearer(key: Callable[[], str]) -> Callable[[], dict[str, str]]:
    """Auth headers of a token sent as `Authorization: Bearer` (Stripe, Paddle, HubSpot)."""
    return lambda: {"Authorization": f"Bearer {key()}"}


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff is close enough
