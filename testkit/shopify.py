"""Shopify order and customer webhooks with the fields Shopify documents, and the committed samples."""

from __future__ import annotations

import uuid
from typing import Any

from testkit.apigw import ROUTES, arrival_ms, compact_body, http_api_event
from testkit.scenario import ATTRIBUTION_METADATA, CUSTOMER_DETAILS, FIXED_TIMESTAMP
from testkit.secrets import LOCAL_SHOPIFY_SECRET
from testkit.signers import shopify_hmac

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
    arrival: int | None = None,
) -> dict[str, Any]:
    body = compact_body(document)
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
    return http_api_event(ROUTES["shopify"], body, headers, time_epoch_ms=arrival_ms(arrival))


def sample_shopify_events() -> dict[str, dict[str, Any]]:
    return {
        "orders_paid": signed_shopify_http_event(shopify_order(), arrival=FIXED_TIMESTAMP),
        "customers_create": signed_shopify_http_event(
            shopify_customer(),
            topic="customers/create",
            webhook_id="0e2a8f0e-1d1c-4c55-9e6b-3b8a7d6c5e4f",
            arrival=FIXED_TIMESTAMP,
        ),
    }
