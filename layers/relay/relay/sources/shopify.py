"""Shopify: `X-Shopify-Hmac-Sha256` webhooks (orders/paid, customers/create).

Signature: base64 HMAC-SHA256 of the raw body with the app's client secret (or the secret a
store shows for webhooks made in its admin). It covers the body only: no timestamp, and none
of the X-Shopify-* headers. So a captured body stays valid, and could be re-sent under a new
X-Shopify-Webhook-Id or another X-Shopify-Topic. Hence:
- the dedup key is made of what the signature covers: the topic's object, i.e. the body's
  own id (`orders/paid:820982911946154508`), plus a digest of the body for topics that
  happen more than once per object (`orders/updated:<id>:<digest>`). A redelivery, and a
  replay of a captured body under a new webhook id, are duplicates for as long as claims
  are kept (docs/security.md, replay windows);
- the body must fit the topic: an orders/* body is an order and a customers/* body a
  customer, by its admin_graphql_api_id (gid://shopify/Order/<id>), so a paid order re-sent
  as customers/create is refused rather than made a signup keyed by the order id. Only the
  topics the source handles (its rules, built-in and configured; `configure` binds them) are
  held to this: the others are answered "ignored", whatever their body (orders/delete is
  `{"id": …}`, orders/edited `{"order_edit": …}`, the compliance topics customers/redact,
  customers/data_request and shop/redact carry no top-level id);
- conversion ids come from the body's ids, never the topic or a header, so they are the
  same whichever topic (or replay) brings an order;
- the unsigned X-Shopify-Shop-Domain is used only if it is a *.myshopify.com name, and the
  event time is the body's own (X-Shopify-Triggered-At only when the body has none).

The topic is the X-Shopify-Topic header. The dedup key comes from what the signature covers:
the topic and the body's own id (`orders/paid:<order id>`, see dedup_key; a body digest is
added for topics that repeat per object). A redelivery repeats it, and it is the key
`relay backfill` builds from the orders API (paid_order_key), which knows no webhook ids, so an
order that arrives both ways counts once.

Built-in rules:
- orders/paid → purchase, keyed by the order id: `total_price` (a major-unit decimal string)
  in `currency` (the shop currency, as are line item prices), line items with product id,
  quantity and unit price. Shopify's numeric `variant_id` is not a Scalev variant unique id
  (Scalev's analytics take those, "not the numeric IDs"), so it is not an item's variant_id.
  Test orders (`test: true`) are test mode.
- customers/create → signup, keyed by the customer id.

Attribution: parse adds, under the payload's `relay` key, `attributes` (the order's
note_attributes, i.e. cart attributes a storefront sets, as a name → value object),
`landing` (the query parameters of landing_site) and `fbc` built from a landing fbclid
(Meta's fb.1.<ms>.<fbclid> format, the order time standing in for the click time). A cart
attribute always wins over what the landing URL suggests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
)
from relay.config import ItemsSpec, Rule, Source, ValueSpec
from relay.errors import MappingError, PayloadError
from relay.ingest import signatures
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import DefaultPaths, ProviderEvent, handled_event_types, parse_time
from relay.sources.payloads import (
    ATTRIBUTION_KEYS,
    MAX_ID_CHARS,
    absolute_url,
    content_key,
    event_time,
    identifier,
    load_json,
    source_settings,
    validated,
    with_relay,
)
from relay.sources.spec import SourceSpec

# The topics' resources (the type in the body's admin_graphql_api_id), and the topics that
# happen once per object, whose dedup key is the object's id alone.
_RESOURCES = {"orders": "Order", "customers": "Customer"}
ONCE_PER_OBJECT = frozenset({"orders/create", "orders/paid", "customers/create"})
_SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\.myshopify\.com")

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


class ShopifySettings(BaseModel):
    """`sources.shopify.settings` of the relay config: where relay backfill reads orders."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shop_domain: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$",
        description="the shop's myshopify.com domain (the Admin API's host)",
    )
    api_version: str = Field(default="2025-07", pattern=r"^\d{4}-\d{2}$", description="Admin API version")
    api_base: Annotated[str | None, AfterValidator(absolute_url)] = Field(
        default=None,
        description="the Admin API instead of https://<shop_domain>/admin/api/<api_version> (local stack)",
    )

    @property
    def admin_api(self) -> str | None:
        if self.api_base:
            return self.api_base.rstrip("/")
        return f"https://{self.shop_domain}/admin/api/{self.api_version}" if self.shop_domain else None


def settings_of(source: Source) -> ShopifySettings:
    return source_settings(ShopifySettings, source, "shopify")


def builtin_rules(source: Source) -> tuple[Rule, ...]:
    settings_of(source)  # validated at cold start: a bad block fails the init
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
                quantity="quantity",
                unit_amount_major="price",
                name="title",
            ),
        ),
        Rule(event="customers/create", name="signup", order_key="id", occurred_at="created_at"),
    )


class _Resource(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: (
        StrictInt | Annotated[StrictStr, StringConstraints(pattern=r"^[0-9]{1,19}$")]
    )  # Shopify ids are integers
    admin_graphql_api_id: str | None = None  # checked against the topic after the fields the rules read


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


def _check_shape(topic: str, document: dict[str, Any], handled: Collection[str]) -> None:
    """An orders/* body of a handled topic is an order and a customers/* body a customer (its
    own GraphQL id says which), with what the built-in rules read; the shapes of other topics,
    which are ignored, are not the relay's business."""
    kind = _RESOURCES.get(topic.partition("/")[0])
    if kind is None or topic not in handled:
        return
    what = f"a Shopify {topic} webhook"
    resource = validated(_Order if kind == "Order" else _Resource, document, what)
    if resource.admin_graphql_api_id != f"gid://shopify/{kind}/{resource.id}":
        raise PayloadError(f"not {what}: admin_graphql_api_id is not gid://shopify/{kind}/<its id>")


def dedup_key(topic: str, document: dict[str, Any]) -> str:
    """The claim key, from what the signature covers: the topic and the body (never a header)."""
    key = f"{topic}:{document.get('id', '-')}"
    return key if topic in ONCE_PER_OBJECT else f"{key}:{content_key(document)}"


def _shop_domain(request: WebhookRequest) -> str | None:
    domain = (request.header("x-shopify-shop-domain") or "").strip().lower()
    return domain if _SHOP_DOMAIN.fullmatch(domain) else None


ORDERS_PAID = "orders/paid"


def paid_order_key(order_id: int | str) -> str:
    """The claim key of an order's orders/paid event: dedup_key's for that topic (a backfill,
    reading the orders API, builds it without the webhook)."""
    return f"{ORDERS_PAID}:{order_id}"


def make_parse(handled: Collection[str]) -> Callable[[WebhookRequest], list[ProviderEvent]]:
    """The parse of a source whose rules handle the topics `handled`."""
    return partial(_parse, handled=frozenset(handled))


def _parse(request: WebhookRequest, handled: frozenset[str]) -> list[ProviderEvent]:
    topic = identifier(request.header("x-shopify-topic"), "X-Shopify-Topic header")
    document = load_json(request.body)
    if not isinstance(document, dict):
        raise PayloadError(f"not a Shopify {topic} webhook: the body must be a JSON object")
    _check_shape(topic, document, handled)
    occurred_at = event_time(
        document.get("updated_at") or request.header("x-shopify-triggered-at"), f"a Shopify {topic} webhook"
    )
    object_id = document.get("id")
    return [
        ProviderEvent(
            provider="shopify",
            event_id=dedup_key(topic, document),
            event_type=topic,
            payload=with_relay(document, **derived(document, _shop_domain(request))),
            livemode=document.get("test") is not True,
            occurred_at=occurred_at,
            object_type=topic.partition("/")[0],
            object_id=None if object_id is None else str(object_id)[:MAX_ID_CHARS],
        )
    ]


def configure(source: Source, environ: Mapping[str, str] | None) -> SourceSpec:
    handled = handled_event_types(source, builtin_rules(source))
    return replace(SOURCE, parse=make_parse(handled), configure=None)


# Unconfigured (a backfill's orders/paid bodies), the topics of the built-in rules are checked.
parse = make_parse(handled_event_types(Source(), builtin_rules(Source())))

SOURCE = SourceSpec(
    name="shopify",
    verify=verify,
    parse=parse,
    builtin_rules=builtin_rules,
    defaults=DEFAULTS,
    configure=configure,
)
