"""What the provider-API sandboxes share: query strings, a provider's history, its webhook log.

A provider-API sandbox (Stripe, Paddle, Shopify, HubSpot, Pipedrive) answers the reads the
relay makes, from what it holds: seeded history (times relative to now, so "the last two
hours" means something), and every webhook the provider sent, which the local stack reports
with `observe_webhook(headers, body, status)` (or over HTTP, `POST /_sandbox/webhooks`
`{"headers": {…}, "body": "<the raw body>", "status": 503}`): the provider's log holds an
event whether or not the relay took it, and knows which deliveries failed.

Subclasses declare `provider`, their routes and `observe_webhook`, and seed in `seed_history`;
`reset()` forgets requests, faults and webhooks, and restores the seeds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from .api import ApiError, Response
from .base import CONTROL_PREFIX, Sandbox
from .ratelimit import RateLimiter


class ProviderApiSandbox(Sandbox):
    provider: ClassVar[str] = ""
    # (requests, seconds) the provider documents; a sandbox may be started with its own.
    default_limit: ClassVar[tuple[int, float] | None] = None

    def __init__(
        self,
        *,
        seed: bool = True,
        limit: tuple[int, float] | None = None,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        self._seeded = seed
        self._clock = clock
        self._history_lock = threading.RLock()
        self._query = threading.local()  # the query string of the request this worker thread serves
        super().__init__(**options)
        requests, window = limit or self.default_limit or (0, 1.0)
        self._api_limiter = RateLimiter(requests or None, window=window)
        self._restore()

    # ---- history

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def forget_history(self) -> None:
        """Drop everything held (subclasses empty their stores)."""
        raise NotImplementedError

    def seed_history(self) -> None:
        """Hold the default history (times relative to now)."""

    def observe_webhook(self, headers: Mapping[str, str], body: bytes, status: int) -> None:
        """A webhook the provider sent (answered `status`): into the provider's log."""
        raise NotImplementedError

    def _restore(self) -> None:
        with self._history_lock:
            self.forget_history()
            if self._seeded:
                self.seed_history()

    def reset(self) -> None:
        super().reset()
        self._api_limiter.reset()
        self._restore()

    # ---- helpers for the routes

    def serve_http(self, http: Any) -> None:
        self._query.params = parse_qs(urlsplit(http.path).query, keep_blank_values=True)
        try:
            super().serve_http(http)
        finally:
            self._query.params = {}

    def params(self, name: str) -> list[str]:
        return list((getattr(self._query, "params", None) or {}).get(name, []))

    def params_all(self) -> dict[str, list[str]]:
        return dict(getattr(self._query, "params", None) or {})

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.params(name)
        return values[-1] if values else default

    def limited(self, key: str, headers: Mapping[str, str] | None = None) -> None:
        """Spend one request of `key`'s budget, or answer 429 (with the provider's headers)."""
        wait = self._api_limiter.acquire(key)
        if wait is not None:
            raise ApiError(429, "rate limit exceeded", headers=dict(headers or {"Retry-After": str(wait)}))

    def bearer(self, headers: Mapping[str, str]) -> str | None:
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None

    # ---- control: webhooks over HTTP (a sandbox in another process)

    def _control(self, method: str, path: str, body: bytes) -> Response:
        action = path.removeprefix(CONTROL_PREFIX).rstrip("/")
        if method == "POST" and action == "webhooks":
            try:
                sent = json.loads(body or b"{}")
                self.observe_webhook(
                    sent.get("headers") or {}, str(sent["body"]).encode(), int(sent["status"])
                )
            except (ValueError, KeyError, TypeError) as exc:
                return Response(400, {"error": f"expected {{'headers', 'body', 'status'}}: {exc}"})
            return Response(200, {"observed": True})
        return super()._control(method, path, body)


def lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None  # not JSON: the provider would not have sent it; nothing to hold


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def moment(value: Any) -> datetime | None:
    """An ISO 8601 time (`Z` or an offset) or epoch seconds/ms as an aware datetime; else None."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        number = int(text)
        return datetime.fromtimestamp(number / 1000 if abs(number) > 10**11 else number, UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
