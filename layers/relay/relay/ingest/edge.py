"""The HTTP edge: API Gateway HTTP API (payload v2) events in, JSON answers out.

Errors are mapped to answers here and nowhere else: a RequestError answers its own
4xx with its reason; anything else that stops ingest before the jobs are queued
answers 5xx, so the provider retries.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from relay.errors import (
    ClaimInProgressError,
    EnqueueError,
    EnrichmentError,
    MalformedSecretError,
    MethodNotAllowedError,
    ParkingError,
    PayloadError,
    PayloadTooLargeError,
    RequestError,
    SignatureError,
)

logger = Logger(child=True)

SIGNATURE_REASON = "invalid signature"  # the only reason a 401 gives
INTERNAL_ERROR = {"error": "internal", "reason": "internal error; retry"}


@dataclass(frozen=True)
class WebhookRequest:
    """An inbound HTTP request, as API Gateway delivered it (body as raw bytes)."""

    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    public_url: str = ""  # scheme://host/path?query as the provider called it (HubSpot v3 signs it)
    # When API Gateway received the request (Unix seconds, from requestContext.timeEpoch); a
    # signature's age is measured from here, so a cold start never makes a fresh webhook stale.
    # None (not behind API Gateway): the handler's clock.
    received_at: float | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def respond(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
    }


def webhook_request(event: dict[str, Any], *, max_body_bytes: int) -> WebhookRequest:
    """The raw request an HTTP API event carries; the body as the exact bytes signed."""
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    method = (http.get("method") or "").upper()
    if method != "POST":
        raise MethodNotAllowedError(f"{method or 'this method'} is not accepted; webhooks are POSTed")
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PayloadError("body is flagged base64 but is not valid base64") from exc
    else:
        body = raw.encode("utf-8")
    if len(body) > max_body_bytes:
        raise PayloadTooLargeError(f"body is {len(body)} bytes; the limit is {max_body_bytes}")
    if not body.strip():
        raise PayloadError("body is empty")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    path = event.get("rawPath") or http.get("path") or "/"
    query = event.get("rawQueryString") or ""
    host = context.get("domainName") or headers.get("host", "")
    scheme = headers.get("x-forwarded-proto", "https")
    return WebhookRequest(
        method=method,
        path=path,
        headers=headers,
        body=body,
        query=dict(event.get("queryStringParameters") or {}),
        public_url=f"{scheme}://{host}{path}" + (f"?{query}" if query else ""),
        received_at=arrival(context),
    )


def arrival(context: Mapping[str, Any]) -> float | None:
    """requestContext.timeEpoch (milliseconds, set by API Gateway, never by the client) in seconds."""
    epoch_ms = context.get("timeEpoch")
    if isinstance(epoch_ms, bool) or not isinstance(epoch_ms, int | float) or not math.isfinite(epoch_ms):
        return None
    return epoch_ms / 1000 if epoch_ms > 0 else None


# A dependency of the relay failed (not the request): 503, and the provider retries.
_UNAVAILABLE: dict[type[Exception], tuple[str, str]] = {
    ParkingError: ("parked event not recorded", "could not record the event; retry"),
    EnqueueError: ("jobs not queued", "could not queue the conversions; retry"),
    EnrichmentError: ("provider API unavailable", "provider API unavailable; retry"),
}


def error_response(exc: Exception) -> dict[str, Any]:
    """The one place where errors become HTTP answers."""
    if isinstance(exc, RequestError):
        logger.info("request refused", extra={"status": exc.status, "error": exc.code, "reason": exc.reason})
        headers = None
        if isinstance(exc, ClaimInProgressError):
            headers = {"Retry-After": "5"}
        elif isinstance(exc, MethodNotAllowedError):
            headers = {"Allow": "POST"}  # RFC 9110 §15.5.6: a 405 names the allowed methods
        # An unauthenticated caller learns the kind of failure only: how many secrets are
        # configured, or that a source has none, stays in the log line above.
        reason = SIGNATURE_REASON if isinstance(exc, SignatureError) else exc.reason
        return respond(exc.status, {"error": exc.code, "reason": reason}, headers)
    if isinstance(exc, MalformedSecretError):
        # Fail closed: every request is refused until the secret is fixed. Name, never value.
        logger.error(
            "secret malformed; every request is refused until it is fixed",
            extra={"secret": exc.secret_name, "problem": exc.problem},
        )
        return respond(500, INTERNAL_ERROR)
    for kind, (log, reason) in _UNAVAILABLE.items():
        if isinstance(exc, kind):
            logger.error(f"{log}; the provider will retry", extra={"reason": str(exc)})
            return respond(503, {"error": "unavailable", "reason": reason})
    logger.exception("ingest failed; the provider will retry")
    return respond(500, INTERNAL_ERROR)
