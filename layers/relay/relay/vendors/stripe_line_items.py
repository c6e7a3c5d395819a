"""Line items of a Stripe Checkout purchase, for vendors that count products (QuickLizard).

checkout.session.completed carries no line items, and payment_intent.succeeded not even its
session, so they are read from the Stripe API with the destination's `stripe_api_key_secret`:
- a checkout session: GET /v1/checkout/sessions/{id}/line_items (paginated);
- a payment intent from Checkout: GET /v1/checkout/sessions?payment_intent=pi_… first.
Invoice lines are mapped into the conversion's items at ingest and need no call.

These are reads: a timeout is only a transient failure. 404 means no items; 401/403 (a bad
key) are permanent. Prices are Stripe's minor units, read with Stripe's conventions
(relay.money_rules.STRIPE: ISK 1,000 krónur is `100000`) into ISO 4217 minor units.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from relay.errors import (
    InvalidMoneyError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnansweredDeliveryError,
)
from relay.models import Conversion, Item
from relay.money_rules import STRIPE

if TYPE_CHECKING:  # requests is imported only by functions that send
    from relay.vendors.http import Transport

PAGE_SIZE = 100
MAX_PAGES = 10  # 1,000 lines: far beyond any real checkout
# A Stripe object id: its type's prefix, an underscore, then letters, digits and underscores
# (cs_test_a1…, pi_3Mt…). Anything else is not read (and every id is encoded in a path anyway).
_STRIPE_ID = re.compile(r"[a-z]{1,16}_[A-Za-z0-9_]{1,255}")


# The Stripe objects whose Checkout line items can be read (a payment intent via its session).
FETCHABLE_OBJECTS = frozenset({"checkout.session", "payment_intent"})


def fetchable(conversion: Conversion) -> bool:
    """True when the conversion's Stripe object may have Checkout line items to read."""
    source = conversion.source
    return source.provider == "stripe" and bool(source.object_id) and source.object_type in FETCHABLE_OBJECTS


class StripeLineItems:
    def __init__(
        self,
        transport: Transport,
        base_url: str,
        api_key: Callable[[], str],
        *,
        destination: str,
        timeout: float,
    ):
        self._transport = transport
        self._base = base_url.rstrip("/")
        self._api_key = api_key  # read at each call: a rotated key is picked up
        self._destination = destination
        self._timeout = timeout

    def for_conversion(self, conversion: Conversion) -> tuple[list[Item], str | None]:
        """(items, their ISO currency); no items when the source object is not from Checkout."""
        source = conversion.source
        if not fetchable(conversion) or not is_stripe_id(source.object_id):
            return [], None
        if source.object_type == "checkout.session":
            session_id: str | None = source.object_id
        elif source.object_type == "payment_intent":
            session_id = self._session_of(source.object_id)
        else:
            return [], None
        return self._line_items(session_id) if session_id else ([], None)

    def _session_of(self, payment_intent: str) -> str | None:
        page = self._get("/v1/checkout/sessions", {"payment_intent": payment_intent, "limit": "1"})
        sessions = (page.get("data") or []) if page else []
        session_id = sessions[0].get("id") if sessions else None
        return session_id if is_stripe_id(session_id) else None

    def _line_items(self, session_id: str) -> tuple[list[Item], str | None]:
        items: list[Item] = []
        currency = None
        params = {"limit": str(PAGE_SIZE)}
        for _ in range(MAX_PAGES):
            page = self._get(f"/v1/checkout/sessions/{quote(session_id, safe='')}/line_items", params)
            if not page:
                break
            for line in page.get("data") or []:
                item = _item(line)
                if item is not None:
                    items.append(item)
                    currency = currency or (line.get("currency") or "").upper() or None
            if not page.get("has_more") or not page.get("data"):
                break
            params = {"limit": str(PAGE_SIZE), "starting_after": page["data"][-1]["id"]}
        return items, currency

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any] | None:
        try:
            answer = self._transport.request(
                "GET",
                f"{self._base}{path}",
                destination=self._destination,
                timeout=self._timeout,
                params=params,
                headers={"Authorization": f"Bearer {self._api_key()}"},
            )
        except UnansweredDeliveryError as exc:
            raise TransientDeliveryError(f"Stripe API: {exc.reason}") from exc
        except PermanentDeliveryError as exc:
            if exc.status == 404:
                return None
            raise PermanentDeliveryError(
                f"Stripe API refused ({exc.status})", status=exc.status, vendor_message=exc.vendor_message
            ) from exc
        body = answer.json()
        return body if isinstance(body, dict) else None


def is_stripe_id(value: object) -> bool:
    return isinstance(value, str) and _STRIPE_ID.fullmatch(value) is not None


def _item(line: dict[str, Any]) -> Item | None:
    price = line.get("price") or {}
    product = price.get("product")
    product_id = product.get("id") if isinstance(product, dict) else product
    if not product_id:
        return None
    quantity = int(line.get("quantity") or 0)
    subtotal = line.get("amount_subtotal")
    currency = line.get("currency") or price.get("currency")
    if quantity and subtotal is not None:
        # The sale price of one unit: after discounts, before tax, rounded in ISO minor units.
        net = _iso_minor(Decimal(subtotal) - Decimal(line.get("amount_discount") or 0), currency)
        unit = None if net is None else int((Decimal(net) / quantity).to_integral_value(ROUND_HALF_EVEN))
    else:
        unit = _iso_minor(price.get("unit_amount"), currency)
    return Item(
        product_id=str(product_id),
        quantity=quantity or 1,
        unit_amount_minor=unit,
        name=line.get("description"),
    )


def _iso_minor(stripe_amount: Any, currency: Any) -> int | None:
    """A Stripe unit price as ISO 4217 minor units; None (no price) when it is not exact money."""
    if stripe_amount is None or currency is None:
        return None
    try:
        return STRIPE.read(stripe_amount, currency, "minor").amount_minor
    except InvalidMoneyError:
        return None
