"""Provider events for tests, benchmarks, `events/` and `make send`.

Stripe events are the real stripe-mock fixture objects (tests/fixtures/providers/stripe)
wrapped in the event envelope, with the few fields a scenario needs overridden.
API Gateway HTTP API (payload v2) events are shaped as AWS sends them.

`python -m local.events` regenerates `events/` deterministically (fixed timestamps,
the documented local secrets); a test checks the committed files match.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "providers"
EVENTS_DIR = REPO_ROOT / "events"

# The local stack's signing secrets (documented in the README; never used in AWS).
LOCAL_STRIPE_SECRET = "whsec_local_conversion_relay"
FIXED_TIMESTAMP = 1_767_225_600  # 2026-01-01T00:00:00Z: committed events are reproducible

SCAN_SESSION_ID = "7ad26d4f-3181-4ef8-b6ca-b8f59499dd43"
PAGENT_SESSION = {
    "session_id": "sess_9f8e7d",
    "user_id": "user_1a2b3c",
    "visit_id": "v_456",
    "conversion_id": "3f9a3c1e-8d2b-4a57-9c1e-2b7d5e4f6a10",
}
ATTRIBUTION_METADATA = {
    "scan_session_id": SCAN_SESSION_ID,
    "pagent": json.dumps(PAGENT_SESSION, separators=(",", ":")),
    "fbc": "fb.1.1710000000000.IwAR2xyz",
    "fbp": "fb.1.1710000000000.1234567890",
    "ttclid": "E.C.P.ttclid123",
    "ttp": "ttp_cookie_value",
    "snackvideo_click_id": "kwai_click_abc",
    "quicklizard_vid": "DASDAS-CCCC-NA",
    "event_source_url": "https://shop.example.com/checkout",
    "referrer_url": "https://facebook.com/",
}
CUSTOMER_DETAILS = {
    "email": "Jenny.Rosen@Example.com",
    "phone": "+1 (616) 954-7888",
    "name": "Jenny Rosen",
    "address": {
        "city": "Menlo Park",
        "country": "US",
        "line1": "1 Hacker Way",
        "line2": None,
        "postal_code": "94025",
        "state": "CA",
    },
    "tax_exempt": "none",
    "tax_ids": [],
}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "stripe" / name).read_text(encoding="utf-8"))


def stripe_event(
    event_type: str,
    data_object: dict[str, Any],
    *,
    event_id: str,
    created: int = FIXED_TIMESTAMP,
    livemode: bool = False,
) -> dict[str, Any]:
    """The envelope of tests/fixtures/providers/stripe/event.plan.created.json around an object."""
    envelope = fixture("event.plan.created.json")
    envelope.update(
        id=event_id, type=event_type, created=created, livemode=livemode, api_version="2024-06-20"
    )
    envelope["data"] = {"object": data_object}
    return envelope


def checkout_session(
    *,
    session_id: str = "cs_test_a1b2c3",
    payment_intent: str | None = "pi_3MtwBwLkdIwHu7ix28a3tqPa",
    paid: bool = True,
    amount: int = 4999,
    currency: str = "usd",
    metadata: dict[str, str] | None = None,
    mode: str = "payment",
) -> dict[str, Any]:
    obj = copy.deepcopy(fixture("object.checkout.session.json"))
    obj.update(
        id=session_id,
        status="complete",
        payment_status="paid" if paid else "unpaid",
        mode=mode,
        amount_total=amount,
        amount_subtotal=amount,
        currency=currency,
        payment_intent=payment_intent,
        customer="cus_NffrFeUfNV2Hib",
        customer_details=copy.deepcopy(CUSTOMER_DETAILS),
        customer_email=None,
        metadata=dict(ATTRIBUTION_METADATA if metadata is None else metadata),
        client_reference_id=None,
    )
    return obj


def payment_intent(
    *,
    intent_id: str = "pi_3MtwBwLkdIwHu7ix28a3tqPa",
    amount: int = 4999,
    currency: str = "usd",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    obj = copy.deepcopy(fixture("object.payment_intent.json"))
    obj.update(
        id=intent_id,
        status="succeeded",
        amount=amount,
        amount_received=amount,
        currency=currency,
        customer="cus_NffrFeUfNV2Hib",
        receipt_email="jenny.rosen@example.com",
        metadata=dict(ATTRIBUTION_METADATA if metadata is None else metadata),
    )
    obj.pop("invoice", None)
    return obj


def invoice(
    *,
    invoice_id: str = "in_1MtHbELkdIwHu7ixl4OzzPMv",
    billing_reason: str = "subscription_create",
    amount_paid: int = 2000,
    currency: str = "usd",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    obj = copy.deepcopy(fixture("object.invoice.json"))
    obj.update(
        id=invoice_id,
        status="paid",
        billing_reason=billing_reason,
        amount_paid=amount_paid,
        amount_due=amount_paid,
        currency=currency,
        customer="cus_NffrFeUfNV2Hib",
        customer_email="jenny.rosen@example.com",
        customer_name="Jenny Rosen",
        subscription="sub_1MowQVLkdIwHu7ixeRlqHVzs",
        parent={
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(ATTRIBUTION_METADATA if metadata is None else metadata),
                "subscription": "sub_1MowQVLkdIwHu7ixeRlqHVzs",
            },
        },
    )
    return obj


def subscription(
    *,
    subscription_id: str = "sub_1MowQVLkdIwHu7ixeRlqHVzs",
    status: str = "trialing",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    obj = copy.deepcopy(fixture("object.subscription.json"))
    obj.update(
        id=subscription_id,
        status=status,
        customer="cus_NffrFeUfNV2Hib",
        metadata=dict(ATTRIBUTION_METADATA if metadata is None else metadata),
    )
    return obj


def stripe_signature(body: bytes, secret: str = LOCAL_STRIPE_SECRET, timestamp: int | None = None) -> str:
    import time

    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def http_api_event(
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    method: str = "POST",
    base64_body: bool = False,
    query: str = "",
    time_epoch_ms: int = FIXED_TIMESTAMP * 1000,
    domain: str = "localhost:3000",
) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2.0 event, as AWS sends it."""
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
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": time_epoch_ms,
        },
        "body": base64.b64encode(body).decode() if base64_body else body.decode("utf-8"),
        "isBase64Encoded": base64_body,
    }


def signed_stripe_http_event(
    stripe_evt: dict[str, Any],
    *,
    secret: str = LOCAL_STRIPE_SECRET,
    timestamp: int | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    body = json.dumps(stripe_evt, indent=2).encode()
    return http_api_event(
        "/webhooks/stripe",
        body,
        {"Stripe-Signature": stripe_signature(body, secret, timestamp), "User-Agent": "Stripe/1.0"},
        base64_body=base64_body,
    )


def sample_stripe_events() -> dict[str, dict[str, Any]]:
    """The scenarios committed under events/stripe/ (file stem → Stripe event)."""
    return {
        "checkout_session_completed": stripe_event(
            "checkout.session.completed", checkout_session(), event_id="evt_1LocalCheckoutCompleted"
        ),
        "checkout_session_async_payment_succeeded": stripe_event(
            "checkout.session.async_payment_succeeded",
            checkout_session(session_id="cs_test_async", payment_intent="pi_3LocalAsync"),
            event_id="evt_1LocalAsyncSucceeded",
        ),
        "payment_intent_succeeded": stripe_event(
            "payment_intent.succeeded", payment_intent(), event_id="evt_1LocalIntentSucceeded"
        ),
        "invoice_paid": stripe_event("invoice.paid", invoice(), event_id="evt_1LocalInvoicePaid"),
        "invoice_paid_renewal": stripe_event(
            "invoice.paid",
            invoice(invoice_id="in_1LocalRenewal", billing_reason="subscription_cycle"),
            event_id="evt_1LocalInvoiceRenewal",
        ),
        "customer_subscription_created_trial": stripe_event(
            "customer.subscription.created", subscription(), event_id="evt_1LocalTrialStarted"
        ),
    }


def write_sample_events(directory: Path = EVENTS_DIR) -> list[Path]:
    written = []
    (directory / "stripe").mkdir(parents=True, exist_ok=True)
    for stem, evt in sample_stripe_events().items():
        path = directory / "stripe" / f"{stem}.json"
        api_event = signed_stripe_http_event(evt, timestamp=FIXED_TIMESTAMP)
        path.write_text(json.dumps(api_event, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_sample_events(Path(sys.argv[1]) if len(sys.argv) > 1 else EVENTS_DIR):
        print(written_path.relative_to(REPO_ROOT) if written_path.is_relative_to(REPO_ROOT) else written_path)
