"""HTTP to the vendors: one requests.Session per cold start, explicit timeouts, answers by type.

Every vendor call goes through `Transport.request`, which turns what happened into the
relay's delivery errors (relay.errors), so callers decide by type, never by text:

- 2xx → the response;
- 429 → TransientDeliveryError with `retry_after` (seconds or an HTTP date);
- 5xx, 408 → TransientDeliveryError;
- any other status → PermanentDeliveryError (400/401/403/404/422…), with the vendor's reason;
- connection refused, DNS failure, TLS or connect timeout → TransientDeliveryError (nothing
  reached the vendor);
- read timeout or a connection dropped after the request went out → UnansweredDeliveryError
  (the vendor may have taken it).

A JSON body is serialised by `relay.vendors.wire.json_bytes`, the one serialisation a vendor
receives, so that a vendor module can measure a field against a documented size limit exactly
as it goes on the wire (Scanova's properties).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from relay.errors import PermanentDeliveryError, TransientDeliveryError, UnansweredDeliveryError
from relay.vendors.answers import clean_message, describe
from relay.vendors.wire import json_bytes
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

CONNECT_TIMEOUT_SECONDS = 3.05  # just over a TCP retransmission window
USER_AGENT = "conversion-relay/0.1 (+server-side conversions)"

# (destination name, milliseconds) for each vendor call that got an HTTP answer
LatencyObserver = Callable[[str, float], None]


class Transport:
    def __init__(self, session: requests.Session, observe: LatencyObserver | None = None):
        self._session = session
        self._observe = observe

    def request(
        self,
        method: str,
        url: str,
        *,
        destination: str,
        timeout: float,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> requests.Response:
        sent_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        body = None
        if json_body is not None:
            try:
                body = json_bytes(json_body)
            except (TypeError, ValueError) as exc:  # nothing was sent
                raise TransientDeliveryError(f"body is not JSON ({type(exc).__name__})") from exc
            sent_headers.setdefault("Content-Type", "application/json")
        started = time.perf_counter()
        try:
            response = self._session.request(
                method,
                url,
                data=body,
                headers=sent_headers,
                params=params,
                timeout=(CONNECT_TIMEOUT_SECONDS, timeout),
                allow_redirects=False,
            )
        except requests.ConnectTimeout as exc:
            raise TransientDeliveryError("connect timeout") from exc
        except requests.ConnectionError as exc:
            if _never_sent(exc):
                raise TransientDeliveryError("connection failed") from exc
            raise UnansweredDeliveryError("connection dropped before the answer") from exc
        except requests.Timeout as exc:
            raise UnansweredDeliveryError(f"no answer within {timeout:g} s") from exc
        except requests.RequestException as exc:
            raise TransientDeliveryError(f"request failed ({type(exc).__name__})") from exc
        if self._observe is not None:
            self._observe(destination, (time.perf_counter() - started) * 1000)
        return check_status(response)


def check_status(response: requests.Response) -> requests.Response:
    status = response.status_code
    if 200 <= status < 300:
        return response
    message = vendor_message(response)
    if status == 429:
        raise TransientDeliveryError(
            "rate limited",
            status=status,
            vendor_message=message,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )
    if status >= 500 or status == 408:
        raise TransientDeliveryError(f"vendor error {status}", status=status, vendor_message=message)
    raise PermanentDeliveryError(f"refused with {status}", status=status, vendor_message=message)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def vendor_message(response: requests.Response) -> str | None:
    """The vendor's reason in one line, whatever its error shape, scrubbed of PII and bounded."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return clean_message(describe(body))


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection was never established, so the vendor cannot have the request."""
    if isinstance(exc, requests.exceptions.SSLError):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def new_session(connections: int = 10) -> requests.Session:
    """One per cold start: connections are kept alive between invocations. `connections`: the most
    requests in flight at once to one host (more would open connections only to drop them)."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=connections)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
