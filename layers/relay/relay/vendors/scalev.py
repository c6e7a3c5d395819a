"""Scalev Storefront API analytics (vendor-docs/scalev-storefront-analytics.txt).

POST /v3/stores/{store_id}/public/analytics/{meta|tiktok|snackvideo}/events with
`X-Scalev-Storefront-Api-Key`; 204 = accepted. User data is per request, so each request
carries one conversion. Event names are the ad platforms' own (Purchase,
CompletePayment, or configured) and Meta/TikTok event ids come from the destination's template
(`event_id_template`, by default "{order_id}-{event_name}-FORM": the deterministic order id
Scalev's doc gives the browser pixel too, so Meta and TikTok dedupe the pair and a resend).
SnackVideo has no event id and needs a click_id. Amounts are major units; whole amounts are
sent as integers, and IDR always is (whole rupiah, as Scalev asks).

Meta `user_data` carries only the keys Scalev documents (fn ln em ph ct st country
external_id location_id fbc fbp): there is no `zp`, so the hashed zip is not sent.

Scalev fills Meta's client_user_agent (and TikTok's user_agent, when the body has none) from
the request it observes: the shopper's user agent (`attribution.client_user_agent`) is that
request's User-Agent header, one conversion per request. The IP it observes is the relay's
(Lambda's); no documented field carries the shopper's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field
from relay import money
from relay.models import Conversion, Item
from relay.vendors.client import Accepted, VendorClient, VendorEvent, VendorOutcome
from relay.vendors.spec import Destination, VendorSpec

API_KEY_HEADER = "X-Scalev-Storefront-Api-Key"
ORDER_EVENT_ID = "{order_id}-{event_name}-FORM"
MAX_USER_AGENT = 512  # browsers' are ~150 characters; a longer one is not a browser's
# The providers whose server events Scalev gives the request's user agent (its doc: Meta, TikTok).
USER_AGENT_PROVIDERS = ("meta", "tiktok")
ScalevProvider = Literal["meta", "tiktok", "snackvideo"]
# Conversion name → the event name each ad platform documents (Scalev passes them through).
DEFAULT_EVENT_NAMES: dict[str, dict[str, str | None]] = {
    "meta": {
        "purchase": "Purchase",
        "renewal": "Purchase",
        "signup": "CompleteRegistration",
        "lead": "Lead",
        "product_view": "ViewContent",
    },
    "tiktok": {
        "purchase": "CompletePayment",
        "renewal": "CompletePayment",
        "signup": "CompleteRegistration",
        "lead": "SubmitForm",
        "product_view": "ViewContent",
    },
    "snackvideo": {"purchase": "purchase", "product_view": "contentView"},
}


class ScalevDestination(Destination):
    kind: Literal["scalev"] = Field(description="scalev")
    store_id: str | None = Field(default=None, description="scalev: store id")
    provider: ScalevProvider | None = Field(default=None, description="scalev: meta, tiktok or snackvideo")
    # Scalev's doc: an order submit event's id is "${order.order_id}-${eventName}-FORM", the
    # id the storefront's browser pixel sends too, so Meta and TikTok dedupe the pair.
    event_id_template: str = Field(
        default=ORDER_EVENT_ID,
        description="scalev: Meta/TikTok event id, by default the one Scalev documents for an order "
        "(the browser pixel's); fields as above; SnackVideo sends none",
    )

    required_fields: ClassVar[tuple[str, ...]] = ("store_id", "provider")
    # One conversion per request, so a batch is many requests; Scalev documents no rate limit
    # (its sandbox assumes 600 a minute per store): 8 at once, and a 429 stops the batch.
    default_concurrency: ClassVar[int] = 8

    def default_event_names(self) -> dict[str, str | None]:
        return DEFAULT_EVENT_NAMES[self.provider or "meta"]

    def dedupes(self) -> bool:
        return self.provider in ("meta", "tiktok")  # on event_id; SnackVideo has none

    def missing(self, conversion: Conversion) -> str | None:
        if self.provider == "snackvideo" and not conversion.attribution.snackvideo_click_id:
            return "missing_click_id"
        return None


class ScalevPayload(dict[str, Any]):
    """A request body, with the User-Agent header it is sent with (None: the relay's own)."""

    def __init__(self, body: dict[str, Any], user_agent: str | None = None):
        super().__init__(body)
        self.user_agent = user_agent


def header_user_agent(value: str | None) -> str | None:
    """A user agent fit for an HTTP header: printable ASCII, bounded; None when nothing is left
    (a control character or a non-Latin-1 one would fail the request, not the vendor)."""
    text = "".join(c for c in value or "" if " " <= c <= "~").strip()[:MAX_USER_AGENT]
    return text or None


# Scalev: "Use the same integer amount format that you show for IDR totals in your storefront."
WHOLE_UNIT_CURRENCIES = frozenset({"IDR"})


def amount(amount_minor: int, currency: str) -> int | float:
    """Major units; an integer when whole, and always one for IDR (rounded half to even)."""
    if currency in WHOLE_UNIT_CURRENCIES:
        return money.to_major_integer(amount_minor, currency)
    major = money.to_major(amount_minor, currency)
    return int(major) if major == major.to_integral_value() else float(major)


def build_payload(destination: ScalevDestination, conversion: Conversion) -> ScalevPayload:
    destination.require(conversion)
    name = destination.event_name(conversion.name)
    attribution, identity = conversion.attribution, conversion.identity
    items = [item for item in conversion.items if item.quantity > 0]
    payload: dict[str, Any] = {
        "event_source_url": _http_url(attribution.event_source_url),
        "referrer_url": _http_url(attribution.referrer_url),
    }
    if destination.provider == "meta":
        payload["user_data"] = _compact(
            {
                "em": identity.email,
                "ph": identity.phone,
                "fn": identity.first_name,
                "ln": identity.last_name,
                "ct": identity.city,
                "st": identity.state,
                "country": identity.country,
                "external_id": identity.external_id,
                "fbc": attribution.fbc,
                "fbp": attribution.fbp,
            }
        )
        event = {"event_id": destination.event_id(conversion), "event_name": name}
        event["parameters"] = meta_parameters(conversion, items)
    elif destination.provider == "tiktok":
        payload["user"] = _compact(
            {
                "email": identity.email,
                "phone": identity.phone,
                "external_id": identity.external_id,
                "ttclid": attribution.ttclid,
                "ttp": attribution.ttp,
                "user_agent": attribution.client_user_agent,
            }
        )
        event = {"event_id": destination.event_id(conversion), "event": name}
        event["parameters"] = tiktok_parameters(conversion, items)
    else:
        payload["click_id"] = attribution.snackvideo_click_id
        event = {"event_name": name, "properties": snackvideo_properties(conversion, items)}
    payload["events"] = [_compact(event)]
    payload["variants"] = [
        {"variant_unique_id": item.variant_id, "quantity": item.quantity} for item in items if item.variant_id
    ]
    payload["bundle_price_options"] = [
        {"bundle_price_option_unique_id": item.bundle_price_option_id, "quantity": item.quantity}
        for item in items
        if item.bundle_price_option_id and not item.variant_id
    ]
    user_agent = attribution.client_user_agent if destination.provider in USER_AGENT_PROVIDERS else None
    return ScalevPayload(_compact(payload), header_user_agent(user_agent))


def _content_id(item: Item) -> str:
    return item.variant_id or item.bundle_price_option_id or item.product_id


def _unit_price(conversion: Conversion, item: Item) -> int | float | None:
    if item.unit_amount_minor is None or conversion.value is None:
        return None  # item prices share the conversion's currency
    return amount(item.unit_amount_minor, conversion.value.currency)


def _value(conversion: Conversion) -> dict[str, Any]:
    if conversion.value is None:
        return {}
    return {
        "value": amount(conversion.value.amount_minor, conversion.value.currency),
        "currency": conversion.value.currency,
    }


def meta_parameters(conversion: Conversion, items: Sequence[Item]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    if items:
        parameters = {
            "content_ids": [_content_id(item) for item in items],
            "contents": [
                _compact(
                    {
                        "id": _content_id(item),
                        "quantity": item.quantity,
                        "item_price": _unit_price(conversion, item),
                    }
                )
                for item in items
            ],
            "content_type": "product",
            "num_items": sum(item.quantity for item in items),
        }
    return {**parameters, **_value(conversion)}


def tiktok_parameters(conversion: Conversion, items: Sequence[Item]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    if items:
        parameters = {
            "content_id": _content_id(items[0]),
            "contents": [
                _compact(
                    {
                        "content_id": _content_id(item),
                        "quantity": item.quantity,
                        "price": _unit_price(conversion, item),
                    }
                )
                for item in items
            ],
            "content_type": "product",
        }
    return {**parameters, **_value(conversion)}


def snackvideo_properties(conversion: Conversion, items: Sequence[Item]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    if items:
        properties = {"content_type": "product", "quantity": sum(item.quantity for item in items)}
    if len(items) == 1:
        properties.update(
            content_name=items[0].name,
            content_category=items[0].category,
            price=_unit_price(conversion, items[0]),
        )
    return _compact({**properties, **_value(conversion)})


def _http_url(url: str | None) -> str | None:
    """Only absolute http(s) URLs: Scalev rejects anything else, and a URL is optional."""
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _compact(mapping: dict[str, Any]) -> dict[str, Any]:
    """Absent values and empty lists are left out rather than sent as null."""
    return {key: value for key, value in mapping.items() if value is not None and value != [] and value != {}}


class ScalevClient(VendorClient):
    destination: ScalevDestination
    max_batch = 1  # user data is per request

    def prepare(self, conversion: Conversion) -> list[VendorEvent]:
        return [build_payload(self.destination, conversion)]

    def post(self, batch: Sequence[list[VendorEvent]]) -> list[VendorOutcome]:
        (payload,) = batch[0]
        store = quote(self.destination.store_id or "", safe="")
        path = f"/v3/stores/{store}/public/analytics/{self.destination.provider}/events"
        headers = {API_KEY_HEADER: self.api_key()}
        if user_agent := getattr(payload, "user_agent", None):
            headers["User-Agent"] = user_agent  # Scalev reads the shopper's from the request
        answer = self._post(path, payload, headers)
        return [Accepted(answer.status_code)]


SPEC = VendorSpec(
    kind="scalev",
    title="Scalev",
    destination=ScalevDestination,
    client=ScalevClient,
    sandbox="sandboxes.scalev:ScalevSandbox",
)
