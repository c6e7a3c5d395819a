"""API Gateway HTTP API (payload v2.0) events, shaped as AWS sends them to a webhook function."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

# The template's webhook routes, by provider (the Standard Webhooks route is the backend's).
ROUTES = {
    "stripe": "/webhooks/stripe",
    "hubspot": "/webhooks/hubspot",
    "pipedrive": "/webhooks/pipedrive",
    "paddle": "/webhooks/paddle",
    "shopify": "/webhooks/shopify",
    "events": "/events",
}


def http_api_event(
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    method: str = "POST",
    base64_body: bool = False,
    query: str = "",
    time_epoch_ms: int | None = None,
    domain: str = "localhost:3000",
) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2.0 event, as AWS sends it.

    `time_epoch_ms` is when API Gateway received the request (requestContext.timeEpoch, from
    which signature ages are measured): now unless given.
    """
    if time_epoch_ms is None:
        time_epoch_ms = int(time.time() * 1000)
    lower = {k.lower(): v for k, v in headers.items()}
    lower.setdefault("content-type", "application/json")
    lower.setdefault("content-length", str(len(body)))
    lower.setdefault("host", domain)
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "cookies": [],
        "headers": lower,
        "queryStringParameters": dict(p.split("=", 1) for p in query.split("&") if "=" in p) or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lower.get("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)"),
            },
            "requestId": "local-request",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(time_epoch_ms // 1000)),
            "timeEpoch": time_epoch_ms,
        },
        "body": base64.b64encode(body).decode() if base64_body else body.decode("utf-8"),
        "isBase64Encoded": base64_body,
    }


def arrival_ms(seconds: int | None) -> int | None:
    """The timeEpoch of a request that arrives when it was signed (None: now)."""
    return None if seconds is None else seconds * 1000


def compact_body(document: Any) -> bytes:
    """A JSON request body without whitespace, as the providers send it."""
    return json.dumps(document, separators=(",", ":")).encode()
