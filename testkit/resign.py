"""Re-signing a saved HTTP API event with the local secrets and a current timestamp."""

from __future__ import annotations

import base64
import time
from typing import Any

from testkit.apigw import ROUTES
from testkit.secrets import LOCAL_EVENTS_SECRET, LOCAL_PADDLE_SECRET, LOCAL_STRIPE_SECRET
from testkit.signers import (
    hubspot_signature_v3,
    paddle_signature,
    standard_webhooks_signature,
    stripe_signature,
)


def resign_http_event(api_event: dict[str, Any], *, now: int | None = None) -> dict[str, Any]:
    """A saved HTTP API event signed again with the local secrets and a current timestamp, and
    received by API Gateway at that time.

    The committed samples carry 2026-01-01 timestamps, far outside the tolerance of Stripe,
    Paddle, HubSpot and Standard Webhooks; `make send` posts them through this. Pipedrive and
    Shopify sign no time, so their events come back unchanged.
    """
    ts = int(time.time()) if now is None else now
    path = api_event.get("rawPath") or ""
    body = (
        base64.b64decode(api_event["body"])
        if api_event.get("isBase64Encoded")
        else api_event["body"].encode()
    )
    headers = {k.lower(): v for k, v in (api_event.get("headers") or {}).items()}
    if path == ROUTES["stripe"]:
        headers["stripe-signature"] = stripe_signature(body, LOCAL_STRIPE_SECRET, ts)
    elif path == ROUTES["paddle"]:
        headers["paddle-signature"] = paddle_signature(body, LOCAL_PADDLE_SECRET, ts)
    elif path == ROUTES["hubspot"]:
        domain = (api_event.get("requestContext") or {}).get("domainName") or "localhost:3000"
        url = f"https://{domain}{path}" + (
            f"?{api_event['rawQueryString']}" if api_event.get("rawQueryString") else ""
        )
        signed = hubspot_signature_v3(body, url=url, timestamp_ms=ts * 1000)
        headers.update({k.lower(): v for k, v in signed.items()})
    elif path == ROUTES["events"]:
        signed = standard_webhooks_signature(headers.get("webhook-id", ""), body, LOCAL_EVENTS_SECRET, ts)
        headers.update(signed)
    context = {**(api_event.get("requestContext") or {}), "timeEpoch": ts * 1000}  # arrives now
    return {**api_event, "headers": headers, "requestContext": context}
