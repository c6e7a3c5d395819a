"""Stripe API stub: the Checkout reads QuickLizard's delivery makes, and Stripe's event log.

Routes, authenticated with `Authorization: Bearer sk_…` (or the read key `rk_…`; Stripe
accepts its keys as bearer tokens):
- `GET /v1/checkout/sessions/{id}/line_items?limit=&starting_after=`: a Stripe list of
  `item` objects (`has_more` pagination);
- `GET /v1/checkout/sessions?payment_intent=pi_…`: the sessions of a payment intent;
- `GET /v1/events?limit=&starting_after=&ending_before=&types[]=&type=&created[gte|gt|lte|lt]=
  &delivery_success=`: the events of the last 30 days, newest first (`relay backfill`);
- `GET /v1/events/{id}`.

Sessions are seeded with `seed_session(...)`; by default the sessions of the sample events in
testkit/stripe.py are there. Events are what the relay's Stripe route was sent (the local
stack reports each attempt: `observe_webhook`), whether it answered 2xx or not
(`delivery_success`), plus seeded history: checkouts delivered 30 and 90 minutes and 3 days
ago (to a relay that is not this one: it never saw them), and one of 20 minutes ago whose
webhook failed. Limits: 25 reads a second per
key (test mode). Errors use Stripe's shape, `{"error": {"type", "message"}}`: 401 for a
missing or unknown key, 404 for an unknown session or event, 400 for a bad `limit`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from testkit.scenario import ATTRIBUTION_METADATA
from testkit.secrets import LOCAL_READ_KEYS
from testkit.stripe import checkout_session, stripe_event

from .api import ApiError, Request, Response, Route
from .provider_api import ProviderApiSandbox, json_body

# The local stack stores this key under the config's stripe_api_key_secret (local/stack/secrets.py).
DEFAULT_API_KEYS = frozenset({"sk_test_local_conversion_relay"})
READ_KEY = LOCAL_READ_KEYS["stripe"]  # a restricted key with Events: Read
MAX_LIMIT = 100
RETENTION = timedelta(days=30)  # Stripe lists the events of the last 30 days
# (minutes ago, id, delivered) of the seeded history: checkouts Stripe delivered to a relay not
# this one, and one it could not deliver (its webhook failed: ReconcileFunction recovers it).
SEED_EVENTS = (
    (20, "evt_seed_undelivered", False),
    (30, "evt_seed_recent", True),
    (90, "evt_seed_earlier", True),
    (3 * 24 * 60, "evt_seed_3d", True),
)


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


class StripeApiSandbox(ProviderApiSandbox):
    """`api_keys`: accepted secret keys; `sessions`: session id → (payment intent, line items)."""

    name = "stripe"  # the key of the local stack's provider-API sandboxes (local/stack/sandboxes.py)
    provider = "stripe"
    default_limit = (25, 1.0)

    def __init__(
        self,
        api_keys: Iterable[str] | None = None,
        sessions: dict[str, tuple[str | None, list[dict[str, Any]]]] | None = None,
        **options: Any,
    ) -> None:
        self.api_keys = frozenset(DEFAULT_API_KEYS if api_keys is None else api_keys) | {READ_KEY}
        self._sessions_lock = threading.Lock()
        self._sessions: dict[str, tuple[str | None, list[dict[str, Any]]]] = {}
        self._events: dict[str, dict[str, Any]] = {}  # id → {"event", "delivered", "attempts"}
        super().__init__(**options)
        for session_id, (intent, items) in (DEFAULT_SESSIONS if sessions is None else sessions).items():
            self.seed_session(session_id, items, payment_intent=intent)

    def seed_session(
        self, session_id: str, line_items: Sequence[dict[str, Any]], *, payment_intent: str | None = None
    ) -> None:
        with self._sessions_lock:
            self._sessions[session_id] = (payment_intent, list(line_items))

    # ---- the event log

    def forget_history(self) -> None:
        self._events = {}

    def seed_history(self) -> None:
        now = int(self._clock())
        for minutes, event_id, delivered in SEED_EVENTS:
            tag = event_id.removeprefix("evt_seed_")
            session = checkout_session(
                session_id=f"cs_seed_{tag}",
                payment_intent=f"pi_seed_{tag}",
                metadata={**ATTRIBUTION_METADATA, "quicklizard_vid": f"vid_seed_{tag}"},
            )
            created = now - minutes * 60
            event = stripe_event("checkout.session.completed", session, event_id=event_id, created=created)
            self.seed_event(event, delivered=delivered)

    def seed_event(self, event: dict[str, Any], *, delivered: bool = True) -> None:
        """Hold an event as Stripe does (`delivered`: whether its webhook was delivered)."""
        with self._history_lock:
            self._events[str(event["id"])] = {"event": event, "delivered": delivered, "attempts": 1}

    def observe_webhook(self, headers: Mapping[str, str], body: bytes, status: int) -> None:
        event = json_body(body)
        if not isinstance(event, dict) or event.get("object") != "event" or not event.get("id"):
            return
        del headers  # Stripe's log does not depend on the signature
        with self._history_lock:
            held = self._events.setdefault(
                str(event["id"]), {"event": event, "delivered": False, "attempts": 0}
            )
            held["attempts"] += 1
            held["delivered"] = held["delivered"] or 200 <= status < 300

    def events(self) -> list[dict[str, Any]]:
        """The held events, newest first (tests)."""
        return [held["event"] for held in self._sorted()]

    def _sorted(self) -> list[dict[str, Any]]:
        oldest = int(self._clock() - RETENTION.total_seconds())
        with self._history_lock:
            held = [h for h in self._events.values() if int(h["event"].get("created") or 0) >= oldest]
        return sorted(
            held, key=lambda h: (int(h["event"].get("created") or 0), h["event"]["id"]), reverse=True
        )

    def routes(self) -> Sequence[Route]:
        return (
            Route("GET", r"/v1/checkout/sessions/(?P<session_id>[^/]+)/line_items", self._line_items),
            Route("GET", r"/v1/checkout/sessions", self._sessions_of_intent),
            Route("GET", r"/v1/events/(?P<event_id>[^/]+)", self._event),
            Route("GET", r"/v1/events", self._list_events),
        )

    def error_body(self, error: ApiError) -> Any:
        kind = "invalid_request_error" if error.status != 401 else "authentication_error"
        return {"error": {"type": kind, "message": error.message}}

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
        after = self.param("starting_after")
        start = next((i + 1 for i, item in enumerate(items) if item["id"] == after), 0) if after else 0
        page = items[start : start + limit]
        url = f"/v1/checkout/sessions/{session_id}/line_items"
        return Response(200, _list(page, url, has_more=start + limit < len(items)))

    def _sessions_of_intent(self, request: Request) -> Response:
        self._authenticate(request)
        intent = self.param("payment_intent")
        with self._sessions_lock:
            matches = [
                {"id": session_id, "object": "checkout.session", "payment_intent": pi}
                for session_id, (pi, _) in self._sessions.items()
                if intent is None or pi == intent
            ]
        limit = self._limit()
        return Response(200, _list(matches[:limit], "/v1/checkout/sessions", has_more=len(matches) > limit))

    def _limit(self) -> int:
        raw = self.param("limit", "10") or "10"
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise ApiError(400, f"Invalid integer: {raw} (limit must be between 1 and {MAX_LIMIT})")
        return int(raw)

    def _list_events(self, request: Request) -> Response:
        key = self._authenticate(request)
        self.limited(key)
        limit = self._limit()
        wanted = set(self.params("types[]"))
        prefix = (self.param("type") or "").removesuffix("*")
        success = self.param("delivery_success")
        bounds = {op: self.param(f"created[{op}]") for op in ("gte", "gt", "lte", "lt")}
        held = [
            h
            for h in self._sorted()
            if (not wanted or h["event"]["type"] in wanted)
            and h["event"]["type"].startswith(prefix)
            and (success is None or h["delivered"] == (success == "true"))
            and _created_within(int(h["event"].get("created") or 0), bounds)
        ]
        ids = [h["event"]["id"] for h in held]
        start, end = 0, len(held)
        if after := self.param("starting_after"):
            start = ids.index(after) + 1 if after in ids else len(ids)
            end = start + limit
        elif before := self.param("ending_before"):
            end = ids.index(before) if before in ids else 0
            start = max(0, end - limit)
        else:
            end = limit
        page = [h["event"] for h in held[start:end]]
        return Response(200, _list(page, "/v1/events", has_more=end < len(held)))

    def _event(self, request: Request) -> Response:
        key = self._authenticate(request)
        self.limited(key)
        event_id = request.params["event_id"]
        found = next((h["event"] for h in self._sorted() if h["event"]["id"] == event_id), None)
        if found is None:
            raise ApiError(404, f"No such event: '{event_id}'")
        return Response(200, found)

    def _authenticate(self, request: Request) -> str:
        key = self.bearer(request.headers)
        if key is None:
            raise ApiError(401, "You did not provide an API key.")
        if key not in self.api_keys:
            raise ApiError(401, f"Invalid API Key provided: {key[:8]}****")
        return key


def _list(data: list[dict[str, Any]], url: str, *, has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _created_within(created: int, bounds: dict[str, str | None]) -> bool:
    checks = {
        "gte": lambda b: created >= b,
        "gt": lambda b: created > b,
        "lte": lambda b: created <= b,
        "lt": lambda b: created < b,
    }
    for op, raw in bounds.items():
        if raw is None:
            continue
        if not raw.lstrip("-").isdigit():
            raise ApiError(400, f"Invalid integer: {raw} (created[{op}])")
        if not checks[op](int(raw)):
            return False
    return True


__all__ = ["DEFAULT_API_KEYS", "DEFAULT_SESSIONS", "READ_KEY", "StripeApiSandbox", "line_item"]
