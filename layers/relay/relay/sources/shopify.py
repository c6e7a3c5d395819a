"""Shopify: `X-Shopify-Hmac-Sha256` webhooks (orders/paid, customers/create).

Signature: base64 HMAC-SHA256 of the raw body with the app's client secret (or the secret a
store shows for webhooks made in its admin). Shopify sends no timestamp, so a captured
request stays valid; the dedup key makes a replay a no-op for as long as claims are kept.

The topic is the X-Shopify-Topic header and the dedup key is X-Shopify-Webhook-Id, which a
redelivery of the same webhook repeats.

Built-in rules:
- orders/paid → purchase, keyed by the order id: `total_price` (a major-unit decimal string)
  in `currency` (the shop currency, as are line item prices), line items with product id,
  variant id, quantity and unit price. Test orders (`test: true`) are test mode.
- customers/create → signup, keyed by the customer id.

Attribution: parse adds, under the payload's `relay` key, `attributes` (the order's
note_attributes, i.e. cart attributes a storefront sets, as a name → value object),
`landing` (the query parameters of landing_site) and `fbc` built from a landing fbclid
(Meta's fb.1.<ms>.<fbclid> format, the order time standing in for the click time). A cart
attribute always wins over what the landing URL suggests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field
from relay.config import ItemsSpec, Rule, Source, ValueSpec
from relay.errors import MappingError, PayloadError
from relay.ingest import signatures
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import DefaultPaths, ProviderEvent, parse_time
from relay.sources.payloads import (
    ATTRIBUTION_KEYS,
    MAX_ID_CHARS,
    event_time,
    identifier,
    load_json,
    validated,
    with_relay,
)
from relay.sources.spec import SourceSpec

# Other names under which a storefront or a pixel commonly stores a key (cookie names, the
# landing parameter a click id arrives in).
_ALIASES: dict[str, tuple[str, ...]] = {
    "fbc": ("relay.attributes._fbc", "relay.fbc"),
    "fbp": ("relay.attributes._fbp",),
    "ttp": ("relay.attributes._ttp",),
    "snackvideo_click_id": ("relay.landing.click_id",),
    "event_source_url": ("relay.landing_url",),
    "referrer_url": ("referring_site",),
    "client_user_agent": ("client_details.user_agent",),
}


def _attribution_path(key: str) -> str:
    found = [f"relay.attributes.{key}", f"relay.landing.{key}", *_ALIASES.get(key, ())]
    return " || ".join(found)


def _address(part: str) -> str:
    return " || ".join(
        f"{where}.{part}"
        for where in ("billing_address", "shipping_address", "default_address", "customer.default_address")
    )


DEFAULTS = DefaultPaths(
    identity={
        "email": "email || contact_email || customer.email",
        "phone": "phone || customer.phone || billing_address.phone || shipping_address.phone"
        " || default_address.phone",
        "first_name": f"{_address('first_name')} || customer.first_name || first_name",
        "last_name": f"{_address('last_name')} || customer.last_name || last_name",
        "city": _address("city"),
        "state": _address("province_code"),
        "zip": _address("zip"),
        "country": _address("country_code"),
        # An order's customer, or the customer a customers/* webhook is about.
        "external_id": "customer.id"
        " || (starts_with(admin_graphql_api_id || '', 'gid://shopify/Customer/') && id) || null",
    },
    attribution={key: _attribution_path(key) for key in ATTRIBUTION_KEYS},
    properties={
        "shopify_order_name": "name",
        "shopify_source_name": "source_name",
        "shopify_shop_domain": "relay.shop_domain",
    },
)


def builtin_rules(source: Source) -> tuple[Rule, ...]:
    return (
        Rule(
            event="orders/paid",
            name="purchase",
            order_key="id",
            occurred_at="processed_at || created_at",
            value=ValueSpec(amount_major="total_price", currency="currency"),
            items=ItemsSpec(
                path="line_items",
                product_id="product_id",
                variant_id="variant_id",
                quantity="quantity",
                unit_amount_major="price",
                name="title",
            ),
        ),
        Rule(event="customers/create", name="signup", order_key="id", occurred_at="created_at"),
    )


class _Resource(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int | str


class _LineItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    price: str | Decimal | None = None


class _Order(_Resource):
    """What the order rules rely on, by type; the amounts themselves are read (and checked) by
    the rules, with Shopify's conventions (relay.money_rules.SHOPIFY)."""

    currency: str
    total_price: str | Decimal
    line_items: list[_LineItem] = Field(default_factory=list)


def verify(request: WebhookRequest, secrets: Sequence[str], source: Source) -> None:
    signatures.verify_shopify(request.body, request.header("x-shopify-hmac-sha256"), secrets)


def _note_attributes(value: Any) -> dict[str, Any]:
    """[{"name": "fbc", "value": "…"}] (also the {name: value} form) as one object."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, list):
        return {}
    return {
        str(entry["name"]): entry.get("value")
        for entry in value
        if isinstance(entry, dict) and isinstance(entry.get("name"), str)
    }


def _fbc(fbclid: str | None, created_at: Any) -> str | None:
    if not fbclid:
        return None
    try:
        at = parse_time(created_at)
    except MappingError:
        at = None
    return f"fb.1.{int(at.timestamp() * 1000)}.{fbclid}" if isinstance(at, datetime) else None


def derived(document: dict[str, Any], shop_domain: str | None) -> dict[str, Any]:
    """What parse adds under `relay`: cart attributes, landing parameters, a derived fbc."""
    landing_site = document.get("landing_site")
    try:
        parts = urlsplit(landing_site) if isinstance(landing_site, str) else None
    except ValueError:  # e.g. an unclosed IPv6 bracket: no landing parameters, nothing else lost
        parts = None
    landing = dict(parse_qsl(parts.query)) if parts else {}
    landing_url = None
    if parts and parts.scheme in ("http", "https"):
        landing_url = landing_site
    elif parts and shop_domain and landing_site.startswith("/"):
        landing_url = f"https://{shop_domain}{landing_site}"
    return {
        "attributes": _note_attributes(document.get("note_attributes")),
        "landing": landing,
        "landing_url": landing_url,
        "fbc": _fbc(landing.get("fbclid"), document.get("created_at")),
        "shop_domain": shop_domain,
    }


def parse(request: WebhookRequest) -> list[ProviderEvent]:
    topic = identifier(request.header("x-shopify-topic"), "X-Shopify-Topic header")
    webhook_id = identifier(request.header("x-shopify-webhook-id"), "X-Shopify-Webhook-Id header")
    document = load_json(request.body)
    if not isinstance(document, dict):
        raise PayloadError(f"not a Shopify {topic} webhook: the body must be a JSON object")
    # Only what the built-in rules read is checked: another topic's shape is not the relay's business.
    if topic.startswith(("orders/", "customers/")):
        shape = _Order if topic.startswith("orders/") else _Resource
        validated(shape, document, f"a Shopify {topic} webhook")
    occurred_at = event_time(
        request.header("x-shopify-triggered-at") or document.get("updated_at"), f"a Shopify {topic} webhook"
    )
    object_id = document.get("id")
    return [
        ProviderEvent(
            provider="shopify",
            event_id=webhook_id,
            event_type=topic,
            payload=with_relay(document, **derived(document, request.header("x-shopify-shop-domain"))),
            livemode=document.get("test") is not True,
            occurred_at=occurred_at,
            object_type=topic.partition("/")[0],
            object_id=None if object_id is None else str(object_id)[:MAX_ID_CHARS],
        )
    ]


SOURCE = SourceSpec(
    name="shopify", verify=verify, parse=parse, builtin_rules=builtin_rules, defaults=DEFAULTS
)
