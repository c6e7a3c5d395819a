"""Any backend (POST /events): Standard Webhooks signatures; canonical conversions or any JSON.

Signature: `webhook-id`, `webhook-timestamp`, `webhook-signature` (`v1,<base64>` entries) with a
`whsec_…` secret, 5 minutes of tolerance; every Standard Webhooks library signs this way. The
dedup key is `webhook-id`, which a sender repeats when it retries a message.

The event type is read at `settings.type_path` (default `type`). A type among
`settings.conversions` (purchase, signup, lead, product_view, …) is a canonical conversion:

    {"type": "purchase", "timestamp": "2026-01-01T12:00:00Z",
     "data": {"order_id": "ord_1001",
              "value": {"amount": "19.99", "currency": "USD"},
              "items": [{"product_id": "sku-1", "quantity": 1, "unit_amount": "19.99"}],
              "identity": {"email": "jenny@example.com", "phone": "+16169547888"},
              "attribution": {"scan_session_id": "…", "fbc": "…"},
              "consent": "granted", "properties": {"plan": "pro"}}}

validated here (a typo or bad amount parks the event with a reason that says where; an amount
refused by relay.money_rules.EVENTS keeps its code, e.g. negative_amount), with raw identity
hashed at ingest (or sent pre-hashed as SHA-256 hex), amounts in ISO 4217 major units
(`amount`, decimal string or number, parsed exactly) or minor units (`amount_minor`). Its
conversion name is the type and its id derives from `order_id` (default: the webhook-id, e.g.
for product views). Any other type is mapped by the config's rules, as for any provider;
parse puts the webhook id under `relay.webhook_id` for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator
from relay.config import IdentityKey, ItemsSpec, JMESPath, Rule, Source, ValueSpec
from relay.errors import MappingError, PayloadError
from relay.ingest import signatures
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import DefaultPaths, ProviderEvent, parse_time, search
from relay.models import Money
from relay.money_rules import EVENTS
from relay.sources.payloads import (
    ATTRIBUTION_KEYS,
    event_time,
    identifier,
    load_json,
    source_settings,
    validated,
    with_relay,
)
from relay.sources.spec import SourceSpec

DEFAULT_TOLERANCE_SECONDS = 300
CONVERSIONS = (
    "purchase",
    "renewal",
    "signup",
    "lead",
    "product_view",
    "add_to_cart",
    "initiate_checkout",
    "start_trial",
    "subscribe",
)


class EventsSettings(BaseModel):
    """`sources.events.settings` of the relay config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type_path: JMESPath = Field(default="type", description="where the event type is in the body")
    conversions: list[str] = Field(
        default_factory=lambda: list(CONVERSIONS),
        description="event types that are canonical conversions (the type is the conversion name)",
    )


def settings_of(source: Source) -> EventsSettings:
    return source_settings(EventsSettings, source, "events")


def canonical_types(source: Source) -> frozenset[str]:
    """The types read as canonical conversions: the configured ones the config does not remap."""
    if not source.builtin_rules:
        return frozenset()
    return frozenset(settings_of(source).conversions) - set(source.replace_builtin_events)


# --- the canonical conversion ------------------------------------------------------------------


class _Canonical(BaseModel):
    # Unknown keys are refused: a misspelt "attribuiton" would otherwise lose data silently.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, str_strip_whitespace=True)


class _Value(_Canonical):
    amount: Decimal | None = Field(default=None, description="major units, e.g. '19.99'")
    amount_minor: int | Decimal | None = Field(default=None, description="minor units, e.g. 1999")
    currency: str

    @model_validator(mode="after")
    def _one_amount(self) -> _Value:
        if (self.amount is None) == (self.amount_minor is None):
            raise ValueError("give exactly one of amount, amount_minor")
        self.money()  # InvalidMoneyError is a ValueError: "19.999" USD is refused here, with its code
        return self

    def money(self) -> Money:
        if self.amount is None:
            return EVENTS.read(self.amount_minor, self.currency, "minor")
        return EVENTS.read(self.amount, self.currency, "major")


class _Item(_Canonical):
    product_id: str = Field(min_length=1)
    quantity: int = Field(default=1, ge=0)
    unit_amount: Decimal | None = None
    unit_amount_minor: int | None = None
    name: str | None = None
    category: str | None = None
    variant_id: str | None = None
    bundle_price_option_id: str | None = None
    url: str | None = None


class _Identity(_Canonical):
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    external_id: str | None = None


class _Pagent(_Canonical):
    session_id: str | None = None
    user_id: str | None = None
    visit_id: str | None = None
    conversion_id: str | None = None


class _Attribution(_Canonical):
    scan_session_id: str | None = None
    pagent: _Pagent | None = None
    fbc: str | None = None
    fbp: str | None = None
    ttclid: str | None = None
    ttp: str | None = None
    snackvideo_click_id: str | None = None
    quicklizard_vid: str | None = None
    event_source_url: str | None = None
    referrer_url: str | None = None
    client_user_agent: str | None = None


class _Data(_Canonical):
    order_id: str | None = Field(default=None, min_length=1, max_length=200)
    occurred_at: datetime | None = None
    value: _Value | None = None
    items: list[_Item] = Field(default_factory=list, max_length=500)
    identity: _Identity = Field(default_factory=_Identity)
    attribution: _Attribution = Field(default_factory=_Attribution)
    consent: Literal["granted", "denied", "pending"] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _item_prices(self) -> _Data:
        for index, item in enumerate(self.items):
            if item.unit_amount is not None and item.unit_amount_minor is not None:
                raise ValueError(f"items.{index}: give at most one of unit_amount, unit_amount_minor")
            if item.unit_amount is not None and self.value is None:
                raise ValueError(f"items.{index}: unit_amount needs data.value.currency")
            if item.unit_amount is not None and self.value is not None:
                EVENTS.read(item.unit_amount, self.value.currency, "major")
        return self


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow")

    timestamp: datetime | None = None
    livemode: bool = True
    data: _Data = Field(default_factory=_Data)


def _normalized(event: _Event, webhook_id: str, sent_at: datetime | None) -> dict[str, Any]:
    """The canonical body as the built-in rules read it: minor units, ISO times, no Nones."""
    data = event.data
    value = data.value.money() if data.value else None
    currency = value.currency if value else None
    items = []
    for item in data.items:
        line = item.model_dump(exclude_none=True, exclude={"unit_amount"})
        if item.unit_amount is not None and currency is not None:
            line["unit_amount_minor"] = EVENTS.read(item.unit_amount, currency, "major").amount_minor
        items.append(line)
    occurred_at = data.occurred_at or event.timestamp or sent_at
    return {
        "order_id": data.order_id or webhook_id,
        "occurred_at": occurred_at.isoformat() if occurred_at else None,
        "value": {"amount_minor": value.amount_minor, "currency": value.currency} if value else None,
        "items": items,
        "identity": data.identity.model_dump(exclude_none=True),
        "attribution": data.attribution.model_dump(exclude_none=True),
        "consent": data.consent,
        "properties": data.properties,
    }


# --- verify and parse ---------------------------------------------------------------------------


def verify(request: WebhookRequest, secrets: Sequence[str], source: Source) -> None:
    signatures.verify_standard_webhooks(
        request.body,
        msg_id=request.header("webhook-id"),
        timestamp=request.header("webhook-timestamp"),
        signature_header=request.header("webhook-signature"),
        secrets=secrets,
        tolerance=source.signing_tolerance(DEFAULT_TOLERANCE_SECONDS),
        now=request.received_at,
    )


def _sent_at(request: WebhookRequest) -> datetime | None:
    timestamp = (request.header("webhook-timestamp") or "").strip()
    if not (timestamp.isascii() and timestamp.isdigit()):
        return None
    return event_time(int(timestamp), "a signed event")


def make_parse(type_path: str, canonical: frozenset[str]) -> Callable[[WebhookRequest], list[ProviderEvent]]:
    def parse(request: WebhookRequest) -> list[ProviderEvent]:
        webhook_id = identifier(request.header("webhook-id"), "webhook-id header")
        document = load_json(request.body)
        if not isinstance(document, dict):
            raise PayloadError("body must be a JSON object")
        try:
            found = search(type_path, document)
        except MappingError as exc:
            raise PayloadError(str(exc)) from exc
        event_type = identifier(found, f"event type at {type_path!r}")
        sent_at = _sent_at(request)
        if event_type in canonical:
            event = validated(_Event, document, f"a canonical {event_type} conversion")
            canonical_body = _normalized(event, webhook_id, sent_at)
            return [
                ProviderEvent(
                    provider="events",
                    event_id=webhook_id,
                    event_type=event_type,
                    payload=with_relay(document, webhook_id=webhook_id, canonical=canonical_body),
                    livemode=event.livemode,
                    occurred_at=parse_time(canonical_body["occurred_at"]),
                    object_type="conversion",
                    object_id=canonical_body["order_id"],
                )
            ]
        return [
            ProviderEvent(
                provider="events",
                event_id=webhook_id,
                event_type=event_type,
                payload=with_relay(document, webhook_id=webhook_id),
                livemode=document.get("livemode") is not False,
                occurred_at=sent_at,
            )
        ]

    return parse


# --- rules and default paths ----------------------------------------------------------------------

_CANONICAL = "relay.canonical"


def _canonical_rule(name: str) -> Rule:
    return Rule(
        event=name,
        name=name,
        order_key=f"{_CANONICAL}.order_id",
        occurred_at=f"{_CANONICAL}.occurred_at",
        value=ValueSpec(
            amount_minor=f"{_CANONICAL}.value.amount_minor", currency=f"{_CANONICAL}.value.currency"
        ),
        items=ItemsSpec(
            path=f"{_CANONICAL}.items",
            product_id="product_id",
            quantity="quantity",
            unit_amount_minor="unit_amount_minor",
            name="name",
            category="category",
            variant_id="variant_id",
            bundle_price_option_id="bundle_price_option_id",
            url="url",
        ),
        consent=f"{_CANONICAL}.consent",
    )


def builtin_rules(source: Source) -> tuple[Rule, ...]:
    return tuple(_canonical_rule(name) for name in settings_of(source).conversions)


DEFAULTS = DefaultPaths(
    identity={key: f"{_CANONICAL}.identity.{key}" for key in get_args(IdentityKey)},
    # `pagent` is the whole session object; mapping reads its fields.
    attribution={key: f"{_CANONICAL}.attribution.{key}" for key in ATTRIBUTION_KEYS},
    properties={},
)


def configure(source: Source, environ: Mapping[str, str] | None) -> SourceSpec:
    settings = settings_of(source)
    return replace(SOURCE, parse=make_parse(settings.type_path, canonical_types(source)), configure=None)


SOURCE = SourceSpec(
    name="events",
    verify=verify,
    parse=make_parse("type", frozenset(CONVERSIONS)),
    builtin_rules=builtin_rules,
    defaults=DEFAULTS,
    configure=configure,
)
