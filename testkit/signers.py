"""Signers: each signs exactly as its provider documents, by default with the local secrets.

`relay-local send` signs with SIGNATURE_HEADERS[provider](body, secret, *, url, method,
timestamp): the headers the provider would send now.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

from testkit.secrets import (
    LOCAL_EVENTS_SECRET,
    LOCAL_HUBSPOT_SECRET,
    LOCAL_HUBSPOT_URL,
    LOCAL_PADDLE_SECRET,
    LOCAL_PIPEDRIVE_BASIC_AUTH,
    LOCAL_SHOPIFY_SECRET,
    LOCAL_STRIPE_SECRET,
)


def _now() -> int:
    return int(time.time())


def stripe_signature(body: bytes, secret: str = LOCAL_STRIPE_SECRET, timestamp: int | None = None) -> str:
    t = _now() if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def hubspot_signature_v3(
    body: bytes,
    *,
    url: str = LOCAL_HUBSPOT_URL,
    secret: str = LOCAL_HUBSPOT_SECRET,
    timestamp_ms: int | None = None,
    method: str = "POST",
) -> dict[str, str]:
    """X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp headers for a request."""
    ts = str(_now() * 1000 if timestamp_ms is None else timestamp_ms)
    signed = f"{method.upper()}{url}".encode() + body + ts.encode()
    digest = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    return {"X-HubSpot-Signature-v3": digest, "X-HubSpot-Request-Timestamp": ts}


def basic_authorization(credentials: str = LOCAL_PIPEDRIVE_BASIC_AUTH) -> str:
    """`Authorization: Basic …` for "user:password" (how Pipedrive calls a webhook URL)."""
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def paddle_signature(body: bytes, secret: str = LOCAL_PADDLE_SECRET, timestamp: int | None = None) -> str:
    ts = _now() if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return f"ts={ts};h1={digest}"


def shopify_hmac(body: bytes, secret: str = LOCAL_SHOPIFY_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def standard_webhooks_signature(
    msg_id: str, body: bytes, secret: str = LOCAL_EVENTS_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """webhook-id / webhook-timestamp / webhook-signature headers (the `whsec_` key is base64)."""
    ts = _now() if timestamp is None else timestamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
    }


# --- what `relay-local send` signs with: the headers the provider would send now


def as_api_gateway_reports(url: str) -> str:
    """The URL as the relay sees it behind API Gateway, which reports every request as https."""
    return "https://" + url.split("://", 1)[1] if url.startswith("http://") else url


def stripe_signature_headers(
    body: bytes, secret: str, *, url: str, method: str, timestamp: int
) -> dict[str, str]:
    return {"Stripe-Signature": stripe_signature(body, secret, timestamp)}


def hubspot_signature_headers(
    body: bytes, secret: str, *, url: str, method: str, timestamp: int
) -> dict[str, str]:
    return hubspot_signature_v3(
        body, url=as_api_gateway_reports(url), secret=secret, timestamp_ms=timestamp * 1000, method=method
    )


def pipedrive_signature_headers(
    body: bytes, secret: str, *, url: str, method: str, timestamp: int
) -> dict[str, str]:
    return {"Authorization": basic_authorization(secret)}


def paddle_signature_headers(
    body: bytes, secret: str, *, url: str, method: str, timestamp: int
) -> dict[str, str]:
    return {"Paddle-Signature": paddle_signature(body, secret, timestamp)}


def shopify_signature_headers(
    body: bytes, secret: str, *, url: str, method: str, timestamp: int
) -> dict[str, str]:
    return {"X-Shopify-Hmac-Sha256": shopify_hmac(body, secret)}


def events_signature_headers(
    body: bytes, secret: str, *, url: str, method: str, timestamp: int
) -> dict[str, str]:
    # The message id follows the body: sending the same file twice is a redelivery (a duplicate).
    msg_id = "msg_" + hashlib.sha256(body).hexdigest()[:24]
    return standard_webhooks_signature(msg_id, body, secret, timestamp)


SignatureHeaders = Callable[..., dict[str, str]]
SIGNATURE_HEADERS: dict[str, SignatureHeaders] = {  # by the provider of functions/ingest_<provider>
    "stripe": stripe_signature_headers,
    "hubspot": hubspot_signature_headers,
    "pipedrive": pipedrive_signature_headers,
    "paddle": paddle_signature_headers,
    "shopify": shopify_signature_headers,
    "events": events_signature_headers,
}
