"""Shopify's orders (the Admin REST API): the orders/paid webhook rebuilt from the order.

Shopify keeps orders, not webhook deliveries. The orders/paid body is the REST order JSON, so
the reader lists `GET /orders.json?status=any&financial_status=paid&processed_at_min=…&
processed_at_max=…&limit=250` (250 a page; the next page is the `Link: <…page_info=…>;
rel="next"` header, whose URL must be used as it is) and gives each order to the Shopify
source's parse with the orders/paid topic: the claim key is the order's (`orders/paid:<id>`),
the one its webhook is claimed under. Shopify says nothing about failed deliveries, so a
reconcile lists the window's paid orders (one call for up to 250).

Key: an Admin API access token with **read_orders** (the last 60 days of orders; older
need read_all_orders), in `X-Shopify-Access-Token`. Limit: a leaky bucket of 40 requests
that drains 2 a second: the reader paces itself to 2 a second and waits out a 429's
`Retry-After`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from relay.backfill.api import ProviderApi
from relay.backfill.history import Found, HistoryPage, WebhookShape, Window, rfc3339
from relay.config import Source
from relay.errors import BackfillError
from relay.sources import shopify as source
from requests.utils import parse_header_links

PAGE_SIZE = 250
MIN_INTERVAL = 0.5
PAID = "paid"
WAS_PAID = frozenset({"paid", "partially_refunded", "refunded"})
PERMISSION = "an Admin API access token with read_orders (read_all_orders beyond 60 days)"


class ShopifyHistory:
    provider = "shopify"

    def __init__(self, api: ProviderApi, shop_domain: str | None):
        self.api = api
        self._shape = WebhookShape(
            source.SOURCE, {"x-shopify-topic": source.ORDERS_PAID, "x-shopify-shop-domain": shop_domain or ""}
        )

    def pages(self, window: Window, *, failed_only: bool, cursor: str | None = None) -> Iterator[HistoryPage]:
        params: dict[str, Any] = {
            "status": "any",
            "financial_status": PAID,
            "processed_at_min": rfc3339(window.since),
            "processed_at_max": rfc3339(window.until),
            "limit": PAGE_SIZE,
        }
        page_info = cursor
        while True:
            # With page_info Shopify accepts no other filter than limit: the cursor holds them.
            query = {"limit": PAGE_SIZE, "page_info": page_info} if page_info else params
            reply = self.api.get("/orders.json", query)
            assert reply is not None
            orders = (reply.body or {}).get("orders") or []
            page_info = _next_page_info(reply.headers.get("Link"))
            yield HistoryPage([self._event(order) for order in orders], page_info, len(orders))
            if page_info is None:
                return

    def event(self, event_id: str, *, occurred_at: datetime | None = None) -> Found | None:
        prefix = f"{source.ORDERS_PAID}:"
        if not event_id.startswith(prefix) or not event_id[len(prefix) :].isdigit():
            return None  # another topic's webhook id: Shopify keeps no webhook history
        reply = self.api.get(f"/orders/{event_id[len(prefix) :]}.json", missing_ok=True)
        order = (reply.body or {}).get("order") if reply else None
        if not order or order.get("financial_status") not in WAS_PAID:
            return None
        return self._event(order)

    def _event(self, order: dict[str, Any]) -> Found:
        order_id = order.get("id")
        return self._shape.parse(
            order,
            event_id=source.paid_order_key(order_id),
            event_type=source.ORDERS_PAID,
            # The webhook's own id is unknowable; the claim key is the order's anyway.
            x_shopify_webhook_id=f"backfill:{order_id}",
            x_shopify_triggered_at=str(order.get("processed_at") or order.get("updated_at") or ""),
        )


def _next_page_info(link: str | None) -> str | None:
    for entry in parse_header_links(link or ""):
        if entry.get("rel") == "next":
            values = parse_qs(urlsplit(entry.get("url", "")).query).get("page_info")
            return values[0] if values else None
    return None


def build(
    source_config: Source, key: Callable[[], str], event_types: frozenset[str], **api: Any
) -> ShopifyHistory:
    settings = source.settings_of(source_config)
    if settings.admin_api is None:
        raise BackfillError("sources.shopify.settings.shop_domain is not set: the reader needs the shop")
    http = ProviderApi(
        "shopify",
        settings.admin_api,
        lambda: {"X-Shopify-Access-Token": key()},
        permission=PERMISSION,
        **{"min_interval": MIN_INTERVAL, **api},
    )
    return ShopifyHistory(http, settings.shop_domain)
