"""Stripe API stub: the two Checkout reads the QuickLizard delivery makes for line items.

Routes, authenticated with `Authorization: Bearer sk_…` (Stripe accepts its secret key as a
bearer token):
- `GET /v1/checkout/sessions/{id}/line_items?limit=&starting_after=`: a Stripe list of
  `item` objects (`has_more` pagination);
- `GET /v1/checkout/sessions?payment_intent=pi_…`: the sessions of a payment intent.

Sessions are seeded with `seed_session(...)`; by default the sessions of the sample events in
testkit/stripe.py are there. Errors use Stripe's shape, `{"error": {"type", "message"}}`: 401
for a missing or unknown key, 404 for an unknown session, 400 for a bad `limit`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .api import ApiError, Request, Response, Route
from .base import Sandbox

# The local stack stores this key under the config's stripe_api_key_secret (local/stack/secrets.py).
DEFAULT_API_KEYS = frozenset({"sk_test_local_conversion_relay"})
MAX_LIMIT = 100


def line_item(
    product: str,
    unit_amount: int,
    *,
    quantity: int = 1,
    currency: str = "usd",
    description: str | None = None,
    discount: int = 0,
    item_id: str | None = None,
) -> dict[str, Any]:
    """A Checkout Session line item as Stripe returns it (the fields the relay reads and more)."""
    subtotal = unit_amount * quantity
    return {
        "id": item_id or f"li_{product}_{unit_amount}_{quantity}",
        "object": "item",
        "amount_discount": discount,
        "amount_subtotal": subtotal,
        "amount_tax": 0,
        "amount_total": subtotal - discount,
        "currency": currency,
        "description": description or product,
        "price": {
            "id": f"price_{product}",
            "object": "price",
            "active": True,
            "currency": currency,
            "product": product,
            "type": "one_time",
            "unit_amount": unit_amount,
        },
        "quantity": quantity,
    }


# The sessions of testkit/stripe.py's sample Stripe events, so `make send` reaches QuickLizard.
DEFAULT_SESSIONS: dict[str, tuple[str | None, list[dict[str, Any]]]] = {
    "cs_test_a1b2c3": (
        "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        [
            line_item("prod_tshirt", 2000, quantity=2, description="T-shirt"),
            line_item("prod_mug", 999, description="Mug"),
        ],
    ),
    "cs_test_async": ("pi_3LocalAsync", [line_item("prod_poster", 4999, description="Poster")]),
}


class StripeApiSandbox(Sandbox):
    """`api_keys`: accepted secret keys; `sessions`: session id → (payment intent, line items)."""

    name = "stripe"  # the key of the local stack's provider-API sandboxes (local/stack/sandboxes.py)

    def __init__(
        self,
        api_keys: Iterable[str] | None = None,
        sessions: dict[str, tuple[str | None, list[dict[str, Any]]]] | None = None,
        **options: Any,
    ) -> None:
        self.api_keys = frozenset(DEFAULT_API_KEYS if api_keys is None else api_keys)
        self._sessions_lock = threading.Lock()
        self._sessions: dict[str, tuple[str | None, list[dict[str, Any]]]] = {}
        self._query = threading.local()  # the base Request carries no query string
        super().__init__(**options)
        for session_id, (intent, items) in (DEFAULT_SESSIONS if sessions is None else sessions).items():
            self.seed_session(session_id, items, payment_intent=intent)

    def seed_session(
        self, session_id: str, line_items: Sequence[dict[str, Any]], *, payment_intent: str | None = None
    ) -> None:
        with self._sessions_lock:
            self._sessions[session_id] = (payment_intent, list(line_items))

    def routes(self) -> Sequence[Route]:
        return (
            Route("GET", r"/v1/checkout/sessions/(?P<session_id>[^/]+)/line_items", self._line_items),
            Route("GET", r"/v1/checkout/sessions", self._sessions_of_intent),
        )

    def error_body(self, error: ApiError) -> Any:
        kind = "invalid_request_error" if error.status != 401 else "authentication_error"
        return {"error": {"type": kind, "message": error.message}}

    def serve_http(self, http: Any) -> None:
        self._query.params = {k: v[-1] for k, v in parse_qs(urlsplit(http.path).query).items()}
        super().serve_http(http)

    # ---- routes

    def _line_items(self, request: Request) -> Response:
        self._authenticate(request)
        session_id = request.params["session_id"]
        with self._sessions_lock:
            found = self._sessions.get(session_id)
        if found is None:
            raise ApiError(404, f"No such checkout.session: '{session_id}'")
        items = found[1]
        limit = self._limit()
        after = self._query.params.get("starting_after")
        start = next((i + 1 for i, item in enumerate(items) if item["id"] == after), 0) if after else 0
        page = items[start : start + limit]
        url = f"/v1/checkout/sessions/{session_id}/line_items"
        return Response(200, _list(page, url, has_more=start + limit < len(items)))

    def _sessions_of_intent(self, request: Request) -> Response:
        self._authenticate(request)
        intent = self._query.params.get("payment_intent")
        with self._sessions_lock:
            matches = [
                {"id": session_id, "object": "checkout.session", "payment_intent": pi}
                for session_id, (pi, _) in self._sessions.items()
                if intent is None or pi == intent
            ]
        limit = self._limit()
        return Response(200, _list(matches[:limit], "/v1/checkout/sessions", has_more=len(matches) > limit))

    def _limit(self) -> int:
        raw = self._query.params.get("limit", "10")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise ApiError(400, f"Invalid integer: {raw} (limit must be between 1 and {MAX_LIMIT})")
        return int(raw)

    def _authenticate(self, request: Request) -> None:
        scheme, _, key = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise ApiError(401, "You did not provide an API key.")
        if key not in self.api_keys:
            raise ApiError(401, f"Invalid API Key provided: {key[:8]}****")


def _list(data: list[dict[str, Any]], url: str, *, has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


__all__ = ["DEFAULT_API_KEYS", "DEFAULT_SESSIONS", "StripeApiSandbox", "line_item"]
