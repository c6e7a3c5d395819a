"""Paddle Billing: `Paddle-Signature` notifications and the built-in conversion rules.

Signature: `ts=…;h1=…` (several h1 during a secret rotation), HMAC-SHA256 of "ts:body" with
the notification destination's secret key. The tolerance is Paddle's SDK default of 5 s
(`signing_tolerance_seconds` changes it).

Built-in rules:
- transaction.completed with a non-zero grand total → purchase, keyed by the transaction id:
  `details.totals.grand_total` (minor units, a string) in `currency_code`, items from
  `details.line_items[]`: product id and name, quantity, and the unit's sale price before tax
  (`unit_totals.subtotal - unit_totals.discount`, Paddle's per-unit breakdown in the
  transaction's currency, as Stripe's checkout items are counted); renewals (origin
  `subscription_recurring`, or `subscription_update`: a plan change billed now) take the
  configured renewal name (default "renewal"); a one-time charge on a subscription
  (`subscription_charge`) is a purchase.
- subscription.created in trial → signup, keyed by the subscription id.
Attribution is read from `custom_data` (what Paddle.js checkout passes through), e.g.
`custom_data.scan_session_id`; the customer id is the external id.

Amounts are strings in the lowest denomination of `currency_code` (ISO 4217 minor units),
one of the currencies Paddle documents (relay.money_rules.PADDLE), read when a rule maps them.

Deduplication: on `event_id`, which names the event; a redelivery of a notification repeats
it (the notification id differs per destination, so one event sent to two destinations
still counts once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from relay.config import ItemsSpec, Rule, Source, ValueSpec
from relay.ingest import signatures
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import DefaultPaths, ProviderEvent
from relay.sources.payloads import (
    ATTRIBUTION_KEYS,
    MAX_ID_CHARS,
    Identifier,
    absolute_url,
    event_time,
    load_json,
    source_settings,
    validated,
)
from relay.sources.spec import SourceSpec

DEFAULT_TOLERANCE_SECONDS = 5
_COMPLETED = "transaction.completed"
# A subscription's recurring items billed again (its cycle) or changed now (proration): as
# Stripe's subscription_cycle/update invoices. A one-time charge on a subscription
# (`subscription_charge`, since 2023-07-10) sells something new, so it is a purchase.
_RENEWAL = "contains(['subscription_recurring', 'subscription_update'], data.origin || '')"
_PAID = "data.details.totals.grand_total != '0' && data.details.totals.grand_total != null"
_TRANSACTION = {
    "order_key": "data.id",
    "occurred_at": "data.billed_at || occurred_at",
    "value": ValueSpec(
        amount_minor="data.details.totals.grand_total",
        currency="data.currency_code || data.details.totals.currency_code",
    ),
    # What was charged per unit, in the transaction's currency: `details.line_items`, not `items`
    # (catalogue prices, possibly in another currency, before discounts, named by price label).
    "items": ItemsSpec(
        path="data.details.line_items",
        product_id="product.id || price.product_id",
        quantity="quantity",
        unit_amount_minor="unit_totals.subtotal",
        unit_discount_minor="unit_totals.discount",
        name="product.name",
    ),
}

DEFAULTS = DefaultPaths(
    identity={
        # Transactions carry only the customer id; a checkout may pass more in custom_data.
        "email": "data.custom_data.email",
        "phone": "data.custom_data.phone",
        "external_id": "data.customer_id",
    },
    attribution={key: f"data.custom_data.{key}" for key in ATTRIBUTION_KEYS},
    properties={
        "paddle_origin": "data.origin",
        "paddle_subscription_id": "data.subscription_id",
        "paddle_invoice_number": "data.invoice_number",
    },
)


class PaddleSettings(BaseModel):
    """`sources.paddle.settings` of the relay config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_base: Annotated[str, AfterValidator(absolute_url)] = Field(
        default="https://api.paddle.com",
        description="the Paddle API relay backfill reads (a sandbox account: https://sandbox-api.paddle.com)",
    )
    notification_setting_id: str | None = Field(
        default=None,
        pattern=r"^ntfset_[a-z0-9]+$",
        description="the relay's notification destination: reconcile lists only its failed notifications",
    )


def settings_of(source: Source) -> PaddleSettings:
    return source_settings(PaddleSettings, source, "paddle")


def builtin_rules(source: Source) -> tuple[Rule, ...]:
    settings_of(source)  # validated at cold start: a bad block fails the init
    return (
        Rule(event=_COMPLETED, name="purchase", when=f"{_PAID} && !({_RENEWAL})", **_TRANSACTION),
        Rule(event=_COMPLETED, name=source.renewal_name, when=f"{_PAID} && {_RENEWAL}", **_TRANSACTION),
        Rule(
            event="subscription.created",
            name="signup",
            when="data.status == 'trialing'",
            order_key="data.id",
            occurred_at="data.created_at || occurred_at",
        ),
    )


def verify(request: WebhookRequest, secrets: Sequence[str], source: Source) -> None:
    signatures.verify_paddle(
        request.body,
        request.header("paddle-signature"),
        secrets,
        tolerance=source.signing_tolerance(DEFAULT_TOLERANCE_SECONDS),
        now=request.received_at,
    )


class _Envelope(BaseModel):
    """The notification's frame; what its `data` holds is read (and checked) by the rules."""

    model_config = ConfigDict(extra="allow")

    event_id: Identifier
    event_type: Identifier
    occurred_at: str | None = None
    notification_id: str | None = None
    data: dict


def parse(request: WebhookRequest) -> list[ProviderEvent]:
    document = load_json(request.body)
    envelope = validated(_Envelope, document, "a Paddle notification")
    object_id = envelope.data.get("id")
    return [
        ProviderEvent(
            provider="paddle",
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            payload=document,
            occurred_at=event_time(envelope.occurred_at, "a Paddle notification"),
            object_type=envelope.event_type.partition(".")[0],
            object_id=None if object_id is None else str(object_id)[:MAX_ID_CHARS],
        )
    ]


SOURCE = SourceSpec(
    name="paddle",
    verify=verify,
    parse=parse,
    builtin_rules=builtin_rules,
    defaults=DEFAULTS,
    event_log_days=90,  # GET /events and /notifications reach back 90 days
)
