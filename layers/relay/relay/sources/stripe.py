"""Stripe: `Stripe-Signature` webhooks and the built-in conversion rules.

Built-in rules (a config may add, replace or disable them):
- checkout.session.completed, paid → purchase; no payment required (a trial) → signup;
  an unpaid session (delayed methods) waits for checkout.session.async_payment_succeeded.
- payment_intent.succeeded → purchase, unless the intent pays an invoice (invoice.paid
  reports those; since API 2025-03-31 an intent no longer names its invoice, so Stripe's
  default invoice descriptions are used to tell; with custom invoice descriptions, replace
  this rule: `replace_builtin_events: [payment_intent.succeeded]`).
- invoice.paid with an amount → purchase for a first invoice, the configured renewal name
  (default "renewal") for subscription_cycle/update/threshold invoices. $0 trial invoices
  are not purchases.
- customer.subscription.created in trial → signup (a trial start is not a purchase).

One order, one id: a checkout's purchase is keyed by its payment intent (or invoice),
which is what payment_intent.succeeded and invoice.paid key theirs by, so the pair
yields one conversion id and the delivery ledger lets it through once per destination.

Amounts are Stripe's integer minor units in Stripe's own exponents (relay.money_rules.STRIPE:
ISK 1,000 krónur arrive as 100000). A snapshot event (`"object": "event"`) always carries
`data.object` (Stripe's Event object, API reference); one without it is parked. A thin event
(`"object": "v2.core.event"`, event destinations) carries only `related_object`: no built-in
rule uses one, so it is ignored unless the config has a rule for its type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from relay.config import ItemsSpec, Rule, Source, ValueSpec
from relay.errors import PayloadError
from relay.ingest import signatures
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import DefaultPaths, ProviderEvent
from relay.sources.payloads import (
    ATTRIBUTION_KEYS,
    Identifier,
    absolute_url,
    event_time,
    load_json,
    source_settings,
    validated,
)
from relay.sources.spec import SourceSpec

DEFAULT_TOLERANCE_SECONDS = 300
_RENEWAL = (
    "contains(['subscription_cycle', 'subscription_update', 'subscription_threshold'],"
    " data.object.billing_reason || '')"
)
_PAID = "data.object.amount_paid > `0`"
# invoice.paid reports invoice payments. Before API 2025-03-31 (basil) an intent names its
# invoice; since then it does not, and Stripe's default descriptions of invoice intents
# ("Subscription creation", "Subscription update", "Payment for Invoice") are the sign left.
_NOT_AN_INVOICE_PAYMENT = (
    "!(data.object.invoice) && !starts_with(data.object.description || '', 'Subscription ')"
    " && !starts_with(data.object.description || '', 'Payment for Invoice')"
)

_ORDER_OF_CHECKOUT = (
    "data.object.payment_intent.id || data.object.payment_intent"
    " || data.object.invoice.id || data.object.invoice || data.object.id"
)
_CHECKOUT_VALUE = ValueSpec(amount_minor="data.object.amount_total", currency="data.object.currency")
_INVOICE_ITEMS = ItemsSpec(
    path="data.object.lines.data",
    product_id="pricing.price_details.product || price.product || plan.product",
    quantity="quantity",
    unit_amount_minor="pricing.unit_amount_decimal || price.unit_amount || plan.amount",
    name="description",
)


def _metadata_path(key: str) -> str:
    # Session or payment-intent metadata, then subscription metadata as invoices carry it
    # (older API versions: subscription_details; newer: parent.subscription_details).
    return " || ".join(
        f"data.object.{prefix}metadata.{key}"
        for prefix in ("", "subscription_details.", "parent.subscription_details.")
    )


def _address_path(part: str) -> str:
    return (
        f"data.object.customer_details.address.{part} || data.object.customer_address.{part}"
        f" || data.object.shipping.address.{part} || data.object.billing_details.address.{part}"
    )


DEFAULTS = DefaultPaths(
    identity={
        "email": "data.object.customer_details.email || data.object.customer_email"
        " || data.object.receipt_email || data.object.billing_details.email",
        "phone": "data.object.customer_details.phone || data.object.customer_phone"
        " || data.object.shipping.phone || data.object.billing_details.phone",
        "full_name": "data.object.customer_details.name || data.object.customer_name"
        " || data.object.shipping.name || data.object.billing_details.name",
        "city": _address_path("city"),
        "state": _address_path("state"),
        "zip": _address_path("postal_code"),
        "country": _address_path("country"),
        "external_id": "data.object.customer.id || data.object.customer",
    },
    attribution={key: _metadata_path(key) for key in ATTRIBUTION_KEYS},
    properties={
        "stripe_object_id": "data.object.id",
        "checkout_mode": "data.object.mode",
        "billing_reason": "data.object.billing_reason",
        "client_reference_id": "data.object.client_reference_id",
    },
)


class StripeSettings(BaseModel):
    """`sources.stripe.settings` of the relay config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_base: Annotated[str, AfterValidator(absolute_url)] = Field(
        default="https://api.stripe.com",
        description="where relay backfill and ReconcileFunction list events (the local stack: its sandbox)",
    )


def settings_of(source: Source) -> StripeSettings:
    return source_settings(StripeSettings, source, "stripe")


def builtin_rules(source: Source) -> tuple[Rule, ...]:
    settings_of(source)  # validated at cold start: a bad block fails the init
    paid_checkout = {
        "name": "purchase",
        "order_key": _ORDER_OF_CHECKOUT,
        "occurred_at": "created",
        "value": _CHECKOUT_VALUE,
    }
    return (
        Rule(
            event="checkout.session.completed",
            when="data.object.payment_status == 'paid' && data.object.mode != 'setup'",
            **paid_checkout,
        ),
        Rule(
            event="checkout.session.completed",
            name="signup",
            when="data.object.payment_status == 'no_payment_required' && data.object.mode == 'subscription'",
            order_key="data.object.subscription.id || data.object.subscription",
            occurred_at="created",
        ),
        Rule(
            event="checkout.session.async_payment_succeeded",
            when="data.object.mode != 'setup'",
            **paid_checkout,
        ),
        Rule(
            event="payment_intent.succeeded",
            name="purchase",
            when=_NOT_AN_INVOICE_PAYMENT,
            order_key="data.object.id",
            occurred_at="created",
            value=ValueSpec(
                amount_minor="data.object.amount_received || data.object.amount",
                currency="data.object.currency",
            ),
        ),
        Rule(
            event="invoice.paid",
            name="purchase",
            when=f"{_PAID} && !{_RENEWAL}",
            order_key="data.object.id",
            occurred_at="created",
            value=ValueSpec(amount_minor="data.object.amount_paid", currency="data.object.currency"),
            items=_INVOICE_ITEMS,
        ),
        Rule(
            event="invoice.paid",
            name=source.renewal_name,
            when=f"{_PAID} && {_RENEWAL}",
            order_key="data.object.id",
            occurred_at="created",
            value=ValueSpec(amount_minor="data.object.amount_paid", currency="data.object.currency"),
            items=_INVOICE_ITEMS,
        ),
        Rule(
            event="customer.subscription.created",
            name="signup",
            when="data.object.status == 'trialing'",
            order_key="data.object.id",
            occurred_at="created",
        ),
    )


THIN_EVENT = "v2.core.event"


class _Envelope(BaseModel):
    """The fields every Stripe event has."""

    model_config = ConfigDict(extra="allow")

    id: Identifier
    type: Identifier
    object: str = "event"
    created: int | str | None = None
    livemode: bool = True


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: dict[str, Any]


class _Snapshot(_Envelope):
    data: _Data


class _Thin(_Envelope):
    related_object: dict[str, Any] | None = None


def verify(request: WebhookRequest, secrets: Sequence[str], source: Source) -> None:
    signatures.verify_stripe(
        request.body,
        request.header("stripe-signature"),
        secrets,
        tolerance=source.signing_tolerance(DEFAULT_TOLERANCE_SECONDS),
        now=request.received_at,
    )


def parse(request: WebhookRequest) -> list[ProviderEvent]:
    document = load_json(request.body)
    if not isinstance(document, dict):
        raise PayloadError("not a Stripe event: the body must be a JSON object")
    envelope: _Envelope
    if document.get("object") == THIN_EVENT:
        envelope = thin = validated(_Thin, document, "a Stripe thin event")
        described = thin.related_object or {}
    else:
        envelope = snapshot = validated(_Snapshot, document, "a Stripe event")
        described = snapshot.data.object
    object_type, object_id = described.get("object") or described.get("type"), described.get("id")
    return [
        ProviderEvent(
            provider="stripe",
            event_id=envelope.id,
            event_type=envelope.type,
            payload=document,
            livemode=envelope.livemode,
            occurred_at=event_time(envelope.created, "a Stripe event"),
            object_type=object_type if isinstance(object_type, str) else None,
            object_id=object_id if isinstance(object_id, str) else None,
        )
    ]


SOURCE = SourceSpec(name="stripe", verify=verify, parse=parse, builtin_rules=builtin_rules, defaults=DEFAULTS)
