"""Any backend's conversions, signed as Standard Webhooks, and the committed samples."""

from __future__ import annotations

from typing import Any

from testkit.apigw import ROUTES, arrival_ms, compact_body, http_api_event
from testkit.scenario import (
    ATTRIBUTION_METADATA,
    CUSTOMER_DETAILS,
    FIXED_TIMESTAMP,
    PAGENT_SESSION,
    SCAN_SESSION_ID,
)
from testkit.secrets import LOCAL_EVENTS_SECRET
from testkit.signers import standard_webhooks_signature


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
    body = compact_body(document)
    headers = {
        **standard_webhooks_signature(msg_id, body, secret, timestamp),
        "User-Agent": "Svix-Webhooks/1.0",
    }
    return http_api_event(ROUTES["events"], body, headers, time_epoch_ms=arrival_ms(timestamp))


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
