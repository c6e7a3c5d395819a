"""Shopify Admin REST API sandbox: the orders `relay backfill` lists.

Routes (any API version), authenticated with `X-Shopify-Access-Token`:
- `GET /admin/api/{version}/orders.json?status=any|open|closed|cancelled&financial_status=
  &processed_at_min=&processed_at_max=&updated_at_min=&updated_at_max=&limit=` (≤ 250,
  default 50), newest first; the next page is the `Link: <…?limit=…&page_info=…>; rel="next"`
  header, and with `page_info` Shopify accepts no filter but `limit` (400 otherwise);
- `GET /admin/api/{version}/orders/{id}.json`.
`status` defaults to open, as Shopify's does (a closed or archived order needs status=any).

Orders are what the relay's Shopify route was sent as orders/paid (the local stack reports
each attempt) plus seeded history: orders paid 3 and 12 days ago. Limit: a leaky bucket of
40 requests draining 2 a second (here: 40 per 20 s), 429 with `Retry-After: 2.0`; every answer
carries `X-Shopify-Shop-Api-Call-Limit`. Errors: `{"errors": …}`.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from testkit.secrets import LOCAL_READ_KEYS
from testkit.shopify import shopify_order

from .api import ApiError, Request, Response, Route
from .provider_api import ProviderApiSandbox, iso, json_body, lower, moment

ACCESS_TOKENS = frozenset({LOCAL_READ_KEYS["shopify"]})
BUCKET = 40
MAX_LIMIT = 250
SEED_ORDERS = ((3 * 24 * 60, 820982911946150003), (12 * 24 * 60, 820982911946150012))  # (minutes ago, id)
_FILTERS = ("processed_at", "updated_at", "created_at")
_ORDERS = r"/admin/api/(?P<version>[0-9]{4}-[0-9]{2})/orders"


class ShopifyApiSandbox(ProviderApiSandbox):
    name = "shopify_api"
    provider = "shopify"
    default_limit = (BUCKET, 20.0)

    def __init__(self, access_tokens: frozenset[str] = ACCESS_TOKENS, **options: Any):
        self.access_tokens = access_tokens
        self._orders: dict[int, dict[str, Any]] = {}
        super().__init__(**options)

    # ---- history

    def forget_history(self) -> None:
        self._orders = {}

    def seed_history(self) -> None:
        for minutes, order_id in SEED_ORDERS:
            at = iso(self.now() - timedelta(minutes=minutes))
            order = shopify_order(order_id=order_id)
            order.update(created_at=at, processed_at=at, updated_at=at, name=f"#S{order_id % 100}")
            self.seed_order(order)

    def seed_order(self, order: dict[str, Any]) -> None:
        with self._history_lock:
            self._orders[int(order["id"])] = copy.deepcopy(order)

    def observe_webhook(self, headers: Mapping[str, str], body: bytes, status: int) -> None:
        order = json_body(body)
        topic = lower(headers).get("x-shopify-topic", "")
        if topic.startswith("orders/") and isinstance(order, dict) and str(order.get("id", "")).isdigit():
            self.seed_order(order)  # the shop holds the order whatever the relay answered

    # ---- routes

    def routes(self) -> Sequence[Route]:
        return (
            Route("GET", _ORDERS + r"\.json", self._list_orders),
            Route("GET", _ORDERS + r"/(?P<order_id>[0-9]+)\.json", self._order),
        )

    def error_body(self, error: ApiError) -> Any:
        return {"errors": error.message}

    def _list_orders(self, request: Request) -> Response:
        token = self._authenticate(request)
        limit = self._limit()
        page_info = self.param("page_info")
        if page_info:
            others = set(self.params_all()) - {"limit", "page_info", "fields"}
            if others:
                raise ApiError(400, f"page_info cannot be combined with: {', '.join(sorted(others))}")
            filters, offset = _decode(page_info)
        else:
            filters = {k: v[-1] for k, v in self.params_all().items() if k not in ("limit", "fields")}
            offset = 0
        orders = self._matching(filters)
        page = orders[offset : offset + limit]
        headers = self._call_limit(token)
        if offset + limit < len(orders):
            cursor = _encode(filters, offset + limit)
            url = f"{self.url}{request.path}?{urlencode({'limit': limit, 'page_info': cursor})}"
            headers["Link"] = f'<{url}>; rel="next"'
        return Response(200, {"orders": page}, headers)

    def _order(self, request: Request) -> Response:
        token = self._authenticate(request)
        with self._history_lock:
            order = copy.deepcopy(self._orders.get(int(request.params["order_id"])))
        if order is None:
            raise ApiError(404, "Not Found")
        return Response(200, {"order": order}, self._call_limit(token))

    def _matching(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        status = filters.get("status", "open")
        financial = filters.get("financial_status", "any")
        bounds = {
            (field, side): moment(filters.get(f"{field}_{side}"))
            for field in _FILTERS
            for side in ("min", "max")
        }
        with self._history_lock:
            orders = [copy.deepcopy(o) for o in self._orders.values()]
        kept = []
        for order in orders:
            closed = bool(order.get("closed_at") or order.get("cancelled_at"))
            if (status == "open" and closed) or (status in ("closed", "cancelled") and not closed):
                continue
            if financial != "any" and order.get("financial_status") != financial:
                continue
            if all(
                _within(moment(order.get(field)), bounds[(field, "min")], bounds[(field, "max")])
                for field in _FILTERS
            ):
                kept.append(order)
        return sorted(
            kept, key=lambda o: (moment(o.get("created_at")) or datetime.min, o["id"]), reverse=True
        )

    def _authenticate(self, request: Request) -> str:
        token = request.headers.get("X-Shopify-Access-Token") or ""
        if token not in self.access_tokens:
            raise ApiError(
                401, "[API] Invalid API key or access token (unrecognized login or wrong password)"
            )
        self.limited(token, {"Retry-After": "2.0"})
        return token

    def _call_limit(self, token: str) -> dict[str, str]:
        used = min(BUCKET, self._api_limiter.used(token))
        return {"X-Shopify-Shop-Api-Call-Limit": f"{used}/{BUCKET}"}

    def _limit(self) -> int:
        raw = self.param("limit", "50") or "50"
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}")
        return int(raw)


def _within(at: datetime | None, low: datetime | None, high: datetime | None) -> bool:
    if low is None and high is None:
        return True
    return at is not None and (low is None or at >= low) and (high is None or at <= high)


def _encode(filters: dict[str, str], offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"f": filters, "o": offset}).encode()).decode().rstrip("=")


def _decode(page_info: str) -> tuple[dict[str, str], int]:
    try:
        state = json.loads(base64.urlsafe_b64decode(page_info + "=" * (-len(page_info) % 4)))
        return dict(state["f"]), int(state["o"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, "Invalid page_info") from exc


__all__ = ["ACCESS_TOKENS", "ShopifyApiSandbox"]
