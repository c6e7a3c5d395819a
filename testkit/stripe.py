"""Stripe events: the real stripe-mock fixture objects wrapped in the event envelope, with the
few fields a scenario needs overridden, and the scenarios committed under events/stripe/."""

from __future__ import annotations

import copy
import json
from typing import Any

from testkit.apigw import arrival_ms, http_api_event
from testkit.scenario import ATTRIBUTION_METADATA, CUSTOMER_DETAILS, FIXED_TIMESTAMP, fixture
from testkit.secrets import LOCAL_STRIPE_SECRET
from testkit.signers import stripe_signature


def stripe_event(
    event_type: str,
    data_object: dict[str, Any],
    *,
    event_id: str,
    created: int = FIXED_TIMESTAMP,
    livemode: bool = False,
) -> dict[str, Any]:
    """The envelope of fixtures/stripe/event.plan.created.json around an object."""
    envelope = fixture("event.plan.created.json")
    envelope.update(
        id=event_id, type=event_type, created=created, livemode=livemode, api_version="2024-06-20"
    )
    envelope["data"] = {"object": data_object}
    return envelope


def checkout_session(
    *,
    session_id: str = "cs_test_a1b2c3",
    payment_intent: str | None = "pi_3MtwBwLkdIwHu7ix28a3tqPa",
    paid: bool = True,
    amount: int = 4999,
    currency: str = "usd",
    metadata: dict[str, str] | None = None,
    mode: str = "payment",
) -> dict[str, Any]:
    obj = copy.deepcopy(fixture("object.checkout.session.json"))
    obj.update(
        id=session_id,
        status="complete",
        payment_status="paid" if paid else "unpaid",
        mode=mode,
        amount_total=amount,
        amount_subtotal=amount,
        currency=currency,
        payment_intent=payment_intent,
        customer="cus_NffrFeUfNV2Hib",
        customer_details=copy.deepcopy(CUSTOMER_DETAILS),
        customer_email=None,
        metadata=dict(ATTRIBUTION_METADATA if metadata is None else metadata),
        client_reference_id=None,
    )
    return obj


def payment_intent(
    *,
    intent_id: str = "pi_3MtwBwLkdIwHu7ix28a3tqPa",
    amount: int = 4999,
    currency: str = "usd",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    obj = copy.deepcopy(fixture("object.payment_intent.json"))
    obj.update(
        id=intent_id,
        status="succeeded",
        amount=amount,
        amount_received=amount,
        currency=currency,
        customer="cus_NffrFeUfNV2Hib",
        receipt_email="jenny.rosen@example.com",
        metadata=dict(ATTRIBUTION_METADATA if metadata is None else metadata),
    )
    obj.pop("invoice", None)
    return obj


def invoice(
    *,
    invoice_id: str = "in_1MtHbELkdIwHu7ixl4OzzPMv",
    billing_reason: str = "subscription_create",
    amount_paid: int = 2000,
    currency: str = "usd",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    obj = copy.deepcopy(fixture("object.invoice.json"))
    obj.update(
        id=invoice_id,
        status="paid",
        billing_reason=billing_reason,
        amount_paid=amount_paid,
        amount_due=amount_paid,
        currency=currency,
        customer="cus_NffrFeUfNV2Hib",
        customer_email="jenny.rosen@example.com",
        customer_name="Jenny Rosen",
        subscription="sub_1MowQVLkdIwHu7ixeRlqHVzs",
        parent={
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(ATTRIBUTION_METADATA if metadata is None else metadata),
                "subscription": "sub_1MowQVLkdIwHu7ixeRlqHVzs",
            },
        },
    )
    # The fixture's line is an invoice item with no product; a subscription's first invoice
    # has one line for the plan, priced as the current API (2025-03-31+) shapes it.
    line = obj["lines"]["data"][0]
    line.update(amount=amount_paid, currency=currency, quantity=1, description="1 x Pro plan")
    line["pricing"] = {
        "type": "price_details",
        "price_details": {"price": "price_1MowQULkdIwHu7ixraBm864M", "product": "prod_NjpI7DbZx6AlWQ"},
        "unit_amount_decimal": str(amount_paid),
    }
    return obj


def subscription(
    *,
    subscription_id: str = "sub_1MowQVLkdIwHu7ixeRlqHVzs",
    status: str = "trialing",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    obj = copy.deepcopy(fixture("object.subscription.json"))
    obj.update(
        id=subscription_id,
        status=status,
        customer="cus_NffrFeUfNV2Hib",
        metadata=dict(ATTRIBUTION_METADATA if metadata is None else metadata),
    )
    return obj


def signed_stripe_http_event(
    stripe_evt: dict[str, Any],
    *,
    secret: str = LOCAL_STRIPE_SECRET,
    timestamp: int | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    body = json.dumps(stripe_evt, indent=2).encode()
    return http_api_event(
        "/webhooks/stripe",
        body,
        {"Stripe-Signature": stripe_signature(body, secret, timestamp), "User-Agent": "Stripe/1.0"},
        base64_body=base64_body,
        time_epoch_ms=arrival_ms(timestamp),
    )


def sample_stripe_events() -> dict[str, dict[str, Any]]:
    """The scenarios committed under events/stripe/ (file stem → Stripe event)."""
    return {
        "checkout_session_completed": stripe_event(
            "checkout.session.completed", checkout_session(), event_id="evt_1LocalCheckoutCompleted"
        ),
        "checkout_session_async_payment_succeeded": stripe_event(
            "checkout.session.async_payment_succeeded",
            checkout_session(session_id="cs_test_async", payment_intent="pi_3LocalAsync"),
            event_id="evt_1LocalAsyncSucceeded",
        ),
        "payment_intent_succeeded": stripe_event(
            "payment_intent.succeeded", payment_intent(), event_id="evt_1LocalIntentSucceeded"
        ),
        "invoice_paid": stripe_event("invoice.paid", invoice(), event_id="evt_1LocalInvoicePaid"),
        "invoice_paid_renewal": stripe_event(
            "invoice.paid",
            invoice(invoice_id="in_1LocalRenewal", billing_reason="subscription_cycle"),
            event_id="evt_1LocalInvoiceRenewal",
        ),
        "customer_subscription_created_trial": stripe_event(
            "customer.subscription.created", subscription(), event_id="evt_1LocalTrialStarted"
        ),
    }
