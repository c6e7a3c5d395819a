"""Provider events for tests, benchmarks, `events/` and `make send`.

Stripe events are the real stripe-mock fixture objects (tests/fixtures/providers/stripe)
wrapped in the event envelope, with the few fields a scenario needs overridden; Paddle
transactions are the Paddle SDK's fixture; HubSpot, Pipedrive, Shopify and backend events
follow each provider's documented shape. Each provider has a signer that signs exactly as
the provider does, with the local secrets below, and `resign_http_event` re-signs a saved
event with a fresh timestamp (Paddle allows 5 s of clock skew, HubSpot and Standard
Webhooks 5 minutes). API Gateway HTTP API (payload v2) events are shaped as AWS sends them.

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
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "providers"
EVENTS_DIR = REPO_ROOT / "events"

# The local stack's signing secrets (documented in the README; never used in AWS).
LOCAL_STRIPE_SECRET = "whsec_local_conversion_relay"
LOCAL_HUBSPOT_SECRET = "local-hubspot-client-secret"
LOCAL_HUBSPOT_TOKEN = "pat-local-hubspot"  # the HubSpot API sandbox's private-app token
# HubSpot v3 signs the URL it calls, and the relay checks the URL as API Gateway reports it:
# https (x-forwarded-proto), the Host, the path. The samples' requests go to localhost:3000.
LOCAL_HUBSPOT_URL = "https://localhost:3000/webhooks/hubspot"
LOCAL_PIPEDRIVE_BASIC_AUTH = "relay:local-pipedrive-password"
LOCAL_PADDLE_SECRET = "pdl_ntfset_01local0conversion0relay_c2VjcmV0"
LOCAL_SHOPIFY_SECRET = "shpss_local_conversion_relay"
LOCAL_EVENTS_SECRET = "whsec_bG9jYWwgY29udmVyc2lvbiByZWxheSBldmVudHMhISE="
LOCAL_WEBHOOK_SECRETS = {
    "stripe": LOCAL_STRIPE_SECRET,
    "hubspot": LOCAL_HUBSPOT_SECRET,
    "pipedrive": LOCAL_PIPEDRIVE_BASIC_AUTH,
    "paddle": LOCAL_PADDLE_SECRET,
    "shopify": LOCAL_SHOPIFY_SECRET,
    "events": LOCAL_EVENTS_SECRET,
}
ROUTES = {
    "stripe": "/webhooks/stripe",
    "hubspot": "/webhooks/hubspot",
    "pipedrive": "/webhooks/pipedrive",
    "paddle": "/webhooks/paddle",
    "shopify": "/webhooks/shopify",
    "events": "/events",
}
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


def fixture(name: str, provider: str = "stripe") -> Any:
    return json.loads((FIXTURES / provider / name).read_text(encoding="utf-8"))


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
    # The fixture's line is an invoice item with no product; a subscription's first invoice
    # has one line for the plan, priced as the current API (2025-03-31+) shapes it.
    line = obj["lines"]["data"][0]
    line.update(amount=amount_paid, currency=currency, quantity=1, description="1 x Pro plan")
    line["pricing"] = {
        "type": "price_details",
        "price_details": {"price": "price_1MowQULkdIwHu7ixraBm864M", "product": "prod_NjpI7DbZx6AlWQ"},
        "unit_amount_decimal": str(amount_paid),
    }
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


# --- signers: each exactly as its provider signs -------------------------------------------------


def _now() -> int:
    import time

    return int(time.time())


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


# `relay-local send` signs with these: <provider>_signature_headers(body, secret, *, url, method,
# timestamp) → the headers the provider would send now.


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


def _compact(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


# --- HubSpot -------------------------------------------------------------------------------------

HUBSPOT_PORTAL_ID = 62515  # the portal of HubSpot's own examples
HUBSPOT_APP_ID = 54321
HUBSPOT_WON_DEAL_ID = 9001  # seeded in sandboxes.hubspot_api: won, 1500.50 USD, contact 201
HUBSPOT_OPEN_DEAL_ID = 9002
HUBSPOT_CONTACT_ID = 123  # the objectId of HubSpot's signature example (contact.creation.json)


def hubspot_deal_stage_change(
    deal_id: int = HUBSPOT_WON_DEAL_ID,
    stage: str = "closedwon",
    *,
    occurred_at_ms: int = FIXED_TIMESTAMP * 1000,
    attempt: int = 0,
    event_id: int = 100,
) -> dict[str, Any]:
    """A deal.propertyChange event of `dealstage`, as a webhook subscription sends it."""
    return {
        "eventId": event_id,
        "subscriptionId": 2001,
        "portalId": HUBSPOT_PORTAL_ID,
        "appId": HUBSPOT_APP_ID,
        "occurredAt": occurred_at_ms,
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": attempt,
        "objectId": deal_id,
        "propertyName": "dealstage",
        "propertyValue": stage,
        "changeSource": "CRM_UI",
        "sourceId": "userId:1001",
    }


def hubspot_contact_creation(
    contact_id: int = HUBSPOT_CONTACT_ID, *, occurred_at_ms: int = FIXED_TIMESTAMP * 1000, attempt: int = 0
) -> dict[str, Any]:
    """HubSpot's own contact.creation example (tests/fixtures/providers/hubspot) for a contact."""
    (event,) = fixture("contact.creation.json", "hubspot")
    event.update(objectId=contact_id, occurredAt=occurred_at_ms, attemptNumber=attempt)
    return event


def signed_hubspot_http_event(
    events: list[dict[str, Any]] | dict[str, Any],
    *,
    secret: str = LOCAL_HUBSPOT_SECRET,
    timestamp_ms: int | None = None,
    url: str = LOCAL_HUBSPOT_URL,
) -> dict[str, Any]:
    """A v3-signed HubSpot request: a batch (list) or a workflow webhook (one object)."""
    body = _compact(events)
    headers = {**hubspot_signature_v3(body, url=url, secret=secret, timestamp_ms=timestamp_ms)}
    headers["User-Agent"] = "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon"
    return http_api_event(ROUTES["hubspot"], body, headers)


def sample_hubspot_events() -> dict[str, dict[str, Any]]:
    ts = FIXED_TIMESTAMP * 1000
    return {
        "deal_won": signed_hubspot_http_event([hubspot_deal_stage_change()], timestamp_ms=ts),
        "batch_contact_and_deal_stages": signed_hubspot_http_event(
            [
                hubspot_contact_creation(),
                hubspot_deal_stage_change(HUBSPOT_OPEN_DEAL_ID, "qualifiedtobuy", event_id=101),
                hubspot_deal_stage_change(event_id=102, occurred_at_ms=ts + 60_000),
            ],
            timestamp_ms=ts,
        ),
        "contact_creation": signed_hubspot_http_event([hubspot_contact_creation()], timestamp_ms=ts),
    }


# --- Pipedrive -----------------------------------------------------------------------------------

# Custom field keys of the local Pipedrive account (config/relay.local.yaml maps them).
PIPEDRIVE_DEAL_FIELDS = {
    "scan_session_id": "4a266b7b8623b98da82112410e7d2dc573913988",
    "fbc": "ea5daed99b4fae6c8fe3e41a10cc9295358d424d",
    "fbp": "bc634fd1b5a8f0ab18f7e984bb7bef5789461c86",
    "ttclid": "9bce98cadd3820cc2fff5f779ca794dc1633512d",
    "pagent": "c88e3c886e5e3328a395e9d10f3da6e33b109afa",
}
PIPEDRIVE_PERSON_FIELDS = {
    "scan_session_id": "4aa38060e1733843d1a0758c6c5df291a6101c64",
    "fbc": "a846e6fb21391de5eb3a9b1d47583c1090454c45",
}
PIPEDRIVE_DEAL_ID = 9101
PIPEDRIVE_PERSON_ID = 301
_PIPEDRIVE_TIME = "2026-01-01T00:00:00Z"


def pipedrive_notification(
    action: str,
    entity: str,
    data: dict[str, Any] | None,
    previous: dict[str, Any] | None = None,
    *,
    attempt: int = 1,
    timestamp: str = _PIPEDRIVE_TIME,
) -> dict[str, Any]:
    """A webhooks v2 notification: {meta, data, previous}."""
    entity_id = str((data or {}).get("id", ""))
    return {
        "meta": {
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pipedrive:{entity}:{entity_id}:{action}:{timestamp}")),
            "company_id": "12882925",
            "correlation_id": "8d2f6d2c-4b1e-4a57-9c1e-2b7d5e4f6a10",
            "is_bulk_edit": False,
            "timestamp": timestamp,
            "type": "general",
            "user_id": "18487521",
            "version": "2.0",
            "webhook_id": "99",
            "webhook_owner_id": "18487521",
            "change_source": "app",
            "permitted_user_ids": ["18487521"],
            "attempt": attempt,
            "host": "company.pipedrive.com",
        },
        "data": data,
        "previous": previous,
    }


def _pipedrive_fields(keys: dict[str, str]) -> dict[str, Any]:
    return {
        field_key: {"type": "varchar", "value": ATTRIBUTION_METADATA[attribution]}
        for attribution, field_key in keys.items()
    }


def pipedrive_deal(
    *, deal_id: int = PIPEDRIVE_DEAL_ID, status: str = "won", value: Any = 1499.99, currency: str = "EUR"
) -> dict[str, Any]:
    """Deal data as webhooks v2 sends it; `value` is a JSON number (1499.99 must stay exact)."""
    return {
        "id": deal_id,
        "title": "Annual plan",
        "value": value,
        "currency": currency,
        "status": status,
        "stage_id": 5,
        "pipeline_id": 1,
        "person_id": PIPEDRIVE_PERSON_ID,
        "org_id": 2,
        "owner_id": 18487521,
        "add_time": "2025-12-20T09:00:00Z",
        "update_time": _PIPEDRIVE_TIME,
        "won_time": _PIPEDRIVE_TIME if status == "won" else None,
        "custom_fields": _pipedrive_fields(PIPEDRIVE_DEAL_FIELDS),
    }


def pipedrive_person(*, person_id: int = PIPEDRIVE_PERSON_ID) -> dict[str, Any]:
    return {
        "id": person_id,
        "name": "Jenny Rosen",
        "first_name": "Jenny",
        "last_name": "Rosen",
        "emails": [{"label": "work", "value": CUSTOMER_DETAILS["email"], "primary": True}],
        "phones": [{"label": "mobile", "value": CUSTOMER_DETAILS["phone"], "primary": True}],
        "owner_id": 18487521,
        "org_id": 2,
        "add_time": _PIPEDRIVE_TIME,
        "update_time": _PIPEDRIVE_TIME,
        "custom_fields": _pipedrive_fields(PIPEDRIVE_PERSON_FIELDS),
    }


def pipedrive_deal_won(**deal: Any) -> dict[str, Any]:
    """A change.deal notification of a deal that was open and is now won."""
    return pipedrive_notification("change", "deal", pipedrive_deal(**deal), {"status": "open", "stage_id": 4})


def signed_pipedrive_http_event(
    notification: dict[str, Any], *, credentials: str = LOCAL_PIPEDRIVE_BASIC_AUTH
) -> dict[str, Any]:
    body = _compact(notification)
    headers = {"Authorization": basic_authorization(credentials), "User-Agent": "Pipedrive Webhooks"}
    return http_api_event(ROUTES["pipedrive"], body, headers)


def sample_pipedrive_events() -> dict[str, dict[str, Any]]:
    return {
        "deal_won": signed_pipedrive_http_event(pipedrive_deal_won()),
        "deal_title_changed": signed_pipedrive_http_event(
            pipedrive_notification("change", "deal", pipedrive_deal(), {"title": "Plan"})
        ),
        "person_created": signed_pipedrive_http_event(
            pipedrive_notification("create", "person", pipedrive_person())
        ),
    }


# --- Paddle --------------------------------------------------------------------------------------


def paddle_notification(
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str = "evt_01local0transaction0completed",
    notification_id: str = "ntf_01local0transaction0completed",
    occurred_at: str = "2026-01-01T00:00:00.000000Z",
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "notification_id": notification_id,
        "data": data,
    }


def paddle_transaction(
    *, transaction_id: str | None = None, origin: str = "web", custom_data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The Paddle SDK's transaction.completed fixture (65215 USD, three items) with attribution."""
    data = fixture("transaction.completed.data.json", "paddle")
    data["origin"] = origin
    data["custom_data"] = dict(ATTRIBUTION_METADATA if custom_data is None else custom_data)
    if transaction_id:
        data["id"] = transaction_id
    return data


def signed_paddle_http_event(
    notification: dict[str, Any], *, secret: str = LOCAL_PADDLE_SECRET, timestamp: int | None = None
) -> dict[str, Any]:
    body = _compact(notification)
    headers = {"Paddle-Signature": paddle_signature(body, secret, timestamp), "User-Agent": "Paddle"}
    return http_api_event(ROUTES["paddle"], body, headers)


def sample_paddle_events() -> dict[str, dict[str, Any]]:
    subscription = fixture("subscription.created.data.json", "paddle")
    subscription.update(status="trialing", custom_data=dict(ATTRIBUTION_METADATA))
    return {
        "transaction_completed": signed_paddle_http_event(
            paddle_notification("transaction.completed", paddle_transaction()), timestamp=FIXED_TIMESTAMP
        ),
        "transaction_completed_renewal": signed_paddle_http_event(
            paddle_notification(
                "transaction.completed",
                paddle_transaction(transaction_id="txn_01local0renewal", origin="subscription_recurring"),
                event_id="evt_01local0renewal",
                notification_id="ntf_01local0renewal",
            ),
            timestamp=FIXED_TIMESTAMP,
        ),
        "subscription_created_trial": signed_paddle_http_event(
            paddle_notification(
                "subscription.created",
                subscription,
                event_id="evt_01local0trial",
                notification_id="ntf_01local0trial",
            ),
            timestamp=FIXED_TIMESTAMP,
        ),
    }


# --- Shopify -------------------------------------------------------------------------------------

SHOPIFY_SHOP_DOMAIN = "relay-local.myshopify.com"
SHOPIFY_ORDER_ID = 820982911946154508


def shopify_order(
    *,
    order_id: int = SHOPIFY_ORDER_ID,
    total_price: str = "199.99",
    currency: str = "USD",
    test: bool = False,
    note_attributes: list[dict[str, str]] | None = None,
    landing_site: str | None = "/products/pro-plan?fbclid=IwAR2xyz&ttclid=E.C.P.landing&utm_source=fb",
) -> dict[str, Any]:
    """An orders/paid payload with the fields Shopify's order webhook documents."""
    attributes = [
        {"name": key, "value": ATTRIBUTION_METADATA[key]}
        for key in ("scan_session_id", "pagent", "fbp", "quicklizard_vid", "snackvideo_click_id")
    ]
    address = CUSTOMER_DETAILS["address"]
    billing = {
        "first_name": "Jenny",
        "last_name": "Rosen",
        "name": "Jenny Rosen",
        "address1": address["line1"],
        "city": address["city"],
        "province": "California",
        "province_code": address["state"],
        "zip": address["postal_code"],
        "country": "United States",
        "country_code": address["country"],
        "phone": CUSTOMER_DETAILS["phone"],
    }
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": "#1001",
        "order_number": 1001,
        "email": CUSTOMER_DETAILS["email"],
        "contact_email": CUSTOMER_DETAILS["email"],
        "phone": None,
        "created_at": "2026-01-01T00:00:00-05:00",
        "processed_at": "2026-01-01T00:00:00-05:00",
        "updated_at": "2026-01-01T00:00:05-05:00",
        "currency": currency,
        "presentment_currency": currency,
        "financial_status": "paid",
        "test": test,
        "total_price": total_price,
        "subtotal_price": total_price,
        "total_tax": "0.00",
        "total_discounts": "0.00",
        "source_name": "web",
        "landing_site": landing_site,
        "referring_site": "https://www.facebook.com/",
        "note_attributes": attributes if note_attributes is None else note_attributes,
        "client_details": {
            "browser_ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        },
        "billing_address": billing,
        "shipping_address": billing,
        "customer": {
            "id": 115310627314723954,
            "email": CUSTOMER_DETAILS["email"],
            "first_name": "Jenny",
            "last_name": "Rosen",
            "phone": CUSTOMER_DETAILS["phone"],
            "admin_graphql_api_id": "gid://shopify/Customer/115310627314723954",
        },
        "line_items": [
            {
                "id": 866550311766439020,
                "product_id": 632910392,
                "variant_id": 808950810,
                "title": "Pro plan",
                "quantity": 1,
                "price": "149.99",
                "sku": "PRO-1Y",
            },
            {
                "id": 141249953214522974,
                "product_id": 632910393,
                "variant_id": 808950811,
                "title": "Onboarding call",
                "quantity": 2,
                "price": "25.00",
                "sku": "CALL-30",
            },
        ],
    }


def shopify_customer(*, customer_id: int = 115310627314723954) -> dict[str, Any]:
    """A customers/create payload."""
    address = CUSTOMER_DETAILS["address"]
    return {
        "id": customer_id,
        "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
        "email": CUSTOMER_DETAILS["email"],
        "first_name": "Jenny",
        "last_name": "Rosen",
        "phone": CUSTOMER_DETAILS["phone"],
        "created_at": "2026-01-01T00:00:00-05:00",
        "updated_at": "2026-01-01T00:00:00-05:00",
        "state": "enabled",
        "default_address": {
            "customer_id": customer_id,
            "city": address["city"],
            "province_code": address["state"],
            "zip": address["postal_code"],
            "country_code": address["country"],
        },
    }


def signed_shopify_http_event(
    document: dict[str, Any],
    *,
    topic: str = "orders/paid",
    webhook_id: str = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    secret: str = LOCAL_SHOPIFY_SECRET,
    shop_domain: str = SHOPIFY_SHOP_DOMAIN,
) -> dict[str, Any]:
    body = _compact(document)
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": shopify_hmac(body, secret),
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"shopify:{topic}:{document.get('id')}")),
        "X-Shopify-API-Version": "2025-07",
        "X-Shopify-Triggered-At": "2026-01-01T05:00:05.000Z",
        "User-Agent": "Shopify-Captain-Hook",
    }
    return http_api_event(ROUTES["shopify"], body, headers)


def sample_shopify_events() -> dict[str, dict[str, Any]]:
    return {
        "orders_paid": signed_shopify_http_event(shopify_order()),
        "customers_create": signed_shopify_http_event(
            shopify_customer(), topic="customers/create", webhook_id="0e2a8f0e-1d1c-4c55-9e6b-3b8a7d6c5e4f"
        ),
    }


# --- any backend (Standard Webhooks) ----------------------------------------------------------------


def backend_conversion(conversion_type: str, **data: Any) -> dict[str, Any]:
    """A canonical conversion body (relay.sources.events): {type, timestamp, data}."""
    return {"type": conversion_type, "timestamp": "2026-01-01T00:00:00Z", "data": data}


def backend_purchase(
    order_id: str = "ord_1001", amount: Any = "19.99", currency: str = "USD"
) -> dict[str, Any]:
    return backend_conversion(
        "purchase",
        order_id=order_id,
        value={"amount": amount, "currency": currency},
        items=[{"product_id": "sku-pro", "quantity": 1, "unit_amount": amount, "name": "Pro plan"}],
        identity={
            "email": CUSTOMER_DETAILS["email"],
            "phone": CUSTOMER_DETAILS["phone"],
            "first_name": "Jenny",
            "last_name": "Rosen",
            "country": "US",
            "external_id": "user_1001",
        },
        attribution={
            "scan_session_id": SCAN_SESSION_ID,
            "pagent": PAGENT_SESSION,
            "fbc": ATTRIBUTION_METADATA["fbc"],
            "fbp": ATTRIBUTION_METADATA["fbp"],
            "ttclid": ATTRIBUTION_METADATA["ttclid"],
            "quicklizard_vid": ATTRIBUTION_METADATA["quicklizard_vid"],
            "event_source_url": ATTRIBUTION_METADATA["event_source_url"],
        },
        consent="granted",
        properties={"plan": "pro"},
    )


def signed_backend_http_event(
    document: dict[str, Any],
    *,
    msg_id: str = "msg_local_purchase_1001",
    secret: str = LOCAL_EVENTS_SECRET,
    timestamp: int | None = None,
) -> dict[str, Any]:
    body = _compact(document)
    headers = {
        **standard_webhooks_signature(msg_id, body, secret, timestamp),
        "User-Agent": "Svix-Webhooks/1.0",
    }
    return http_api_event(ROUTES["events"], body, headers)


def sample_backend_events() -> dict[str, dict[str, Any]]:
    product_view = backend_conversion(
        "product_view",
        items=[
            {
                "product_id": "sku-pro",
                "unit_amount": "19.99",
                "name": "Pro plan",
                "url": "https://shop.example.com/products/pro",
            }
        ],
        value={"amount": "19.99", "currency": "USD"},
        attribution={"quicklizard_vid": ATTRIBUTION_METADATA["quicklizard_vid"]},
    )
    lead = backend_conversion(
        "lead",
        order_id="lead_2001",
        identity={"email": "new.lead@example.com", "full_name": "Alex Lead"},
        attribution={"scan_session_id": SCAN_SESSION_ID, "fbc": ATTRIBUTION_METADATA["fbc"]},
    )
    # A Salesforce Flow callout in its own shape, mapped by the rules of config/relay.local.yaml.
    salesforce = {
        "type": "opportunity.closed_won",
        "opportunity": {
            "Id": "0065g00000XyZaBAAV",
            "Amount": 1200.5,
            "CurrencyIsoCode": "EUR",
            "CloseDate": "2026-01-01",
            "Scan_Session_Id__c": SCAN_SESSION_ID,
        },
        "contact": {"Email": CUSTOMER_DETAILS["email"], "Phone": CUSTOMER_DETAILS["phone"]},
    }
    return {
        "purchase": signed_backend_http_event(backend_purchase(), timestamp=FIXED_TIMESTAMP),
        "product_view": signed_backend_http_event(
            product_view, msg_id="msg_local_view_1", timestamp=FIXED_TIMESTAMP
        ),
        "lead": signed_backend_http_event(lead, msg_id="msg_local_lead_2001", timestamp=FIXED_TIMESTAMP),
        "salesforce_opportunity_won": signed_backend_http_event(
            salesforce, msg_id="msg_local_sfdc_0065g", timestamp=FIXED_TIMESTAMP
        ),
    }


# --- re-signing saved events ----------------------------------------------------------------------


def resign_http_event(api_event: dict[str, Any], *, now: int | None = None) -> dict[str, Any]:
    """A saved HTTP API event signed again with the local secrets and a current timestamp.

    The committed samples carry 2026-01-01 timestamps, far outside the tolerance of Stripe,
    Paddle, HubSpot and Standard Webhooks; `make send` posts them through this. Pipedrive and
    Shopify sign no time, so their events come back unchanged.
    """
    ts = _now() if now is None else now
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
    return {**api_event, "headers": headers}


def sample_http_events() -> dict[str, dict[str, dict[str, Any]]]:
    """Every committed sample: events/<folder>/<stem>.json → the signed HTTP API event."""
    return {
        "stripe": {
            stem: signed_stripe_http_event(evt, timestamp=FIXED_TIMESTAMP)
            for stem, evt in sample_stripe_events().items()
        },
        "hubspot": sample_hubspot_events(),
        "pipedrive": sample_pipedrive_events(),
        "paddle": sample_paddle_events(),
        "shopify": sample_shopify_events(),
        "backend": sample_backend_events(),
    }


def write_sample_events(directory: Path = EVENTS_DIR) -> list[Path]:
    written = []
    for folder, samples in sample_http_events().items():
        (directory / folder).mkdir(parents=True, exist_ok=True)
        for stem, api_event in samples.items():
            path = directory / folder / f"{stem}.json"
            path.write_text(json.dumps(api_event, indent=2) + "\n", encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_sample_events(Path(sys.argv[1]) if len(sys.argv) > 1 else EVENTS_DIR):
        print(written_path.relative_to(REPO_ROOT) if written_path.is_relative_to(REPO_ROOT) else written_path)
