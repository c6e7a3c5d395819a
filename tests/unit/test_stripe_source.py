"""relay.sources.stripe: the built-in rules on real Stripe objects (stripe-mock fixtures wrapped by
testkit.stripe), envelope parsing, and the one-order-one-id guarantee."""

from __future__ import annotations

import json
import typing
from decimal import Decimal

import pytest
from relay import pii
from relay.config import AttributionKey, Source
from relay.errors import PayloadError, SignatureError, StaleTimestampError
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import map_event
from relay.models import conversion_id
from relay.sources.stripe import DEFAULTS, SOURCE, builtin_rules

import testkit

FIXTURES = testkit.FIXTURES / "stripe"
PI = "pi_3MtwBwLkdIwHu7ix28a3tqPa"
INVOICE = "in_1MtHbELkdIwHu7ixl4OzzPMv"
SUBSCRIPTION = "sub_1MowQVLkdIwHu7ixeRlqHVzs"


def request(body: bytes, header: str | None = None) -> WebhookRequest:
    headers = {"stripe-signature": header} if header else {}
    return WebhookRequest(method="POST", path="/webhooks/stripe", headers=headers, body=body)


def convert(stripe_event: dict, source: Source | None = None) -> list:
    """The conversions the built-in rules make of one Stripe event (through the real parser)."""
    source = source or Source()
    (provider_event,) = SOURCE.parse(request(json.dumps(stripe_event).encode()))
    return [m.conversion for m in map_event(provider_event, source, builtin_rules(source), DEFAULTS)]


def checkout(**kwargs) -> dict:
    return testkit.stripe_event(
        "checkout.session.completed", testkit.checkout_session(**kwargs), event_id="evt_c"
    )


# --- checkout ---------------------------------------------------------------------------------------


def test_a_paid_checkout_is_a_purchase_keyed_by_its_payment_intent():
    (purchase,) = convert(checkout())
    assert purchase.name == "purchase"
    assert purchase.conversion_id == conversion_id("stripe", PI, "purchase")
    assert (purchase.value.amount_minor, purchase.value.currency) == (4999, "USD")
    assert purchase.occurred_at.timestamp() == testkit.FIXED_TIMESTAMP
    assert purchase.source.object_type == "checkout.session"
    assert purchase.source.livemode is False


def test_checkout_identity_is_hashed_from_customer_details():
    (purchase,) = convert(checkout())
    identity = purchase.identity
    assert identity.email == pii.hash_email("Jenny.Rosen@Example.com")
    assert identity.phone == pii.sha256_hex("16169547888")
    assert identity.first_name == pii.hash_name("Jenny")
    assert identity.last_name == pii.hash_name("Rosen")
    assert identity.city == pii.sha256_hex("menlopark")
    assert identity.state == pii.sha256_hex("ca")
    assert identity.zip == pii.sha256_hex("94025")
    assert identity.country == pii.sha256_hex("us")
    assert identity.external_id == pii.sha256_hex("cus_NffrFeUfNV2Hib")


def test_checkout_attribution_comes_from_session_metadata():
    attribution = convert(checkout())[0].attribution
    assert attribution.scan_session_id == testkit.SCAN_SESSION_ID
    assert attribution.pagent.session_id == testkit.PAGENT_SESSION["session_id"]
    assert attribution.pagent.conversion_id == testkit.PAGENT_SESSION["conversion_id"]
    assert (attribution.fbc, attribution.fbp) == (
        testkit.ATTRIBUTION_METADATA["fbc"],
        testkit.ATTRIBUTION_METADATA["fbp"],
    )
    assert attribution.ttclid == "E.C.P.ttclid123"
    assert attribution.snackvideo_click_id == "kwai_click_abc"
    assert attribution.quicklizard_vid == "DASDAS-CCCC-NA"
    assert attribution.event_source_url == "https://shop.example.com/checkout"


def test_client_reference_id_is_a_property_and_an_attribution_path_when_configured():
    event = checkout(metadata={})
    event["data"]["object"]["client_reference_id"] = testkit.SCAN_SESSION_ID
    (without,) = convert(event)
    assert without.attribution.scan_session_id is None  # not by default
    assert without.properties["client_reference_id"] == testkit.SCAN_SESSION_ID
    source = Source(
        attribution={
            "scan_session_id": "data.object.metadata.scan_session_id || data.object.client_reference_id"
        }
    )
    (configured,) = convert(event, source)
    assert configured.attribution.scan_session_id == testkit.SCAN_SESSION_ID


def test_an_unpaid_checkout_waits_for_async_payment_succeeded():
    # Given a delayed payment method: completed but unpaid → nothing yet
    assert convert(checkout(paid=False, payment_intent="pi_async")) == []
    # When the payment succeeds later → the purchase, keyed by the same payment intent
    succeeded = testkit.stripe_event(
        "checkout.session.async_payment_succeeded",
        testkit.checkout_session(payment_intent="pi_async"),
        event_id="evt_a",
    )
    (purchase,) = convert(succeeded)
    assert purchase.conversion_id == conversion_id("stripe", "pi_async", "purchase")


def test_a_setup_mode_checkout_is_no_conversion():
    assert convert(checkout(mode="setup", payment_intent=None)) == []


def test_a_trial_checkout_is_a_signup_keyed_by_the_subscription():
    event = checkout(mode="subscription", payment_intent=None)
    event["data"]["object"].update(
        payment_status="no_payment_required", subscription=SUBSCRIPTION, amount_total=0
    )
    (signup,) = convert(event)
    assert signup.name == "signup"
    assert signup.conversion_id == conversion_id("stripe", SUBSCRIPTION, "signup")
    # and the trial subscription's own event yields the very same signup
    trial = testkit.stripe_event("customer.subscription.created", testkit.subscription(), event_id="evt_s")
    assert [c.conversion_id for c in convert(trial)] == [signup.conversion_id]


def test_amounts_keep_the_currency_exponent():
    (purchase,) = convert(checkout(amount=5000, currency="jpy"))
    assert (purchase.value.amount_minor, purchase.value.currency) == (5000, "JPY")
    (purchase,) = convert(checkout(amount=12345, currency="kwd"))
    assert purchase.value.major() == Decimal("12.345")


# --- one order, one id -----------------------------------------------------------------------------


def test_a_checkout_and_its_payment_intent_yield_one_purchase_id():
    intent = testkit.stripe_event("payment_intent.succeeded", testkit.payment_intent(), event_id="evt_p")
    (from_checkout,) = convert(checkout())
    (from_intent,) = convert(intent)
    assert from_checkout.conversion_id == from_intent.conversion_id
    assert from_intent.value == from_checkout.value


def test_a_subscription_checkout_and_its_first_invoice_yield_one_purchase_id():
    event = checkout(mode="subscription", payment_intent=None)
    event["data"]["object"].update(invoice=INVOICE, subscription=SUBSCRIPTION)
    paid = testkit.stripe_event("invoice.paid", testkit.invoice(), event_id="evt_i")
    (from_checkout,) = convert(event)
    (from_invoice,) = convert(paid)
    assert (
        from_checkout.conversion_id
        == from_invoice.conversion_id
        == conversion_id("stripe", INVOICE, "purchase")
    )


def test_an_intent_that_pays_an_invoice_is_left_to_invoice_paid():
    # Stripe API versions before 2025-03-31 name the invoice on the payment intent.
    intent = testkit.payment_intent()
    intent["invoice"] = INVOICE
    assert convert(testkit.stripe_event("payment_intent.succeeded", intent, event_id="evt_p")) == []


@pytest.mark.parametrize(
    "description", ["Subscription creation", "Subscription update", "Payment for Invoice"]
)
def test_a_basil_intent_paying_a_subscription_invoice_adds_no_second_purchase(description):
    # Given the current API shape (the stripe-mock fixture has no `invoice` on payment intents)
    # and Stripe's default description of an invoice's intent
    intent = testkit.payment_intent(intent_id="pi_for_invoice")
    intent["description"] = description
    paid_invoice = testkit.stripe_event("invoice.paid", testkit.invoice(), event_id="evt_i")
    ids = {c.conversion_id for c in convert(paid_invoice)}
    ids |= {
        c.conversion_id
        for c in convert(testkit.stripe_event("payment_intent.succeeded", intent, event_id="evt_p"))
    }
    # Then the payment is counted once
    assert len(ids) == 1


# --- invoices and subscriptions ---------------------------------------------------------------------


def test_a_first_invoice_is_a_purchase_with_its_line_items():
    (purchase,) = convert(testkit.stripe_event("invoice.paid", testkit.invoice(), event_id="evt_i"))
    assert purchase.name == "purchase"
    assert purchase.value.amount_minor == 2000
    assert purchase.identity.email == pii.hash_email("jenny.rosen@example.com")
    # attribution travels on the subscription's metadata (parent.subscription_details)
    assert purchase.attribution.scan_session_id == testkit.SCAN_SESSION_ID
    assert purchase.properties["billing_reason"] == "subscription_create"


@pytest.mark.parametrize("reason", ["subscription_cycle", "subscription_update", "subscription_threshold"])
def test_a_renewal_invoice_has_the_renewal_name(reason):
    paid = testkit.stripe_event("invoice.paid", testkit.invoice(billing_reason=reason), event_id="evt_r")
    (renewal,) = convert(paid)
    assert renewal.name == "renewal"
    assert renewal.conversion_id == conversion_id("stripe", INVOICE, "renewal")


def test_the_renewal_name_is_configurable():
    paid = testkit.stripe_event(
        "invoice.paid", testkit.invoice(billing_reason="subscription_cycle"), event_id="evt_r"
    )
    (renewal,) = convert(paid, Source(renewal_name="subscription_renewal"))
    assert renewal.name == "subscription_renewal"


def test_a_zero_amount_trial_invoice_is_not_a_purchase():
    paid = testkit.stripe_event("invoice.paid", testkit.invoice(amount_paid=0), event_id="evt_0")
    assert convert(paid) == []


def test_older_api_invoices_carry_attribution_in_subscription_details():
    invoice = testkit.invoice(metadata={})
    invoice["subscription_details"] = {"metadata": {"scan_session_id": testkit.SCAN_SESSION_ID}}
    (purchase,) = convert(testkit.stripe_event("invoice.paid", invoice, event_id="evt_i"))
    assert purchase.attribution.scan_session_id == testkit.SCAN_SESSION_ID


def test_a_subscription_created_active_is_not_a_signup():
    created = testkit.stripe_event(
        "customer.subscription.created", testkit.subscription(status="active"), event_id="evt_s"
    )
    assert convert(created) == []


def test_payment_intent_attribution_and_receipt_email():
    (purchase,) = convert(
        testkit.stripe_event("payment_intent.succeeded", testkit.payment_intent(), event_id="evt_p")
    )
    assert purchase.identity.email == pii.hash_email("jenny.rosen@example.com")
    assert purchase.attribution.ttclid == "E.C.P.ttclid123"


# --- parsing the envelope ---------------------------------------------------------------------------


def test_parse_keeps_the_envelope_facts():
    (event,) = SOURCE.parse(request(json.dumps(checkout()).encode()))
    assert (event.provider, event.event_id, event.event_type) == (
        "stripe",
        "evt_c",
        "checkout.session.completed",
    )
    assert event.livemode is False
    assert event.object_id == "cs_test_a1b2c3"


def test_a_thin_v2_event_without_data_parses():
    (event,) = SOURCE.parse(
        request((FIXTURES / "v2.core.event.v1.billing.meter.error_report_triggered.json").read_bytes())
    )
    assert event.event_type == "v1.billing.meter.error_report_triggered"
    assert event.object_id is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"\xff\xfe", "body is not valid JSON"),
        (b"[1, 2]", "not a Stripe event"),
        (b'{"type": "x"}', "not a Stripe event: id: Field required"),
        (b'{"id": 5, "type": "x"}', "not a Stripe event: id"),
        (b'{"id": "evt", "type": "x", "data": {"object": [1]}}', "data.object: must be a JSON object"),
        (b'{"id": "evt", "type": "x", "data": {}}', "data.object: Field required"),
        # A snapshot event always has data.object (Stripe's Event object): parked, not relayed as nothing
        (b'{"id": "evt", "object": "event", "type": "checkout.session.completed"}', "data: Field required"),
        (b'{"id": "evt", "type": "x", "created": "yesterday", "data": {"object": {}}}', "its time"),
        (b'{"id": "evt", "type": "x", "created": 1e30, "data": {"object": {}}}', "its time"),
        (b'{"id": "' + b"e" * 256 + b'", "type": "x", "data": {"object": {}}}', "not a Stripe event: id"),
        (b'{"id": "evt", "type": "x", "type": "y", "data": {"object": {}}}', "duplicate key"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper than 64"),
    ],
)
def test_malformed_bodies_are_payload_errors(body, reason):
    with pytest.raises(PayloadError, match=reason) as error:
        SOURCE.parse(request(body))
    assert error.value.status == 400


# --- signatures: the source's policy (the algorithm is tested in test_signatures.py) ---------------------


def test_verify_uses_a_300_s_tolerance_by_default_and_0_disables_it():
    body = json.dumps(checkout()).encode()
    old = testkit.stripe_signature(body, "whsec_x", timestamp=testkit.FIXED_TIMESTAMP)
    with pytest.raises(StaleTimestampError):
        SOURCE.verify(request(body, old), ["whsec_x"], Source())
    SOURCE.verify(request(body, old), ["whsec_x"], Source(signing_tolerance_seconds=0))


def test_verify_reads_the_stripe_signature_header():
    body = b"{}"
    with pytest.raises(SignatureError):
        SOURCE.verify(request(body, None), ["whsec_x"], Source(signing_tolerance_seconds=0))


def test_the_defaults_cover_every_attribution_key_stripe_can_carry():
    # Every attribution key has a built-in metadata path (a storefront may pass its user agent too).
    assert set(DEFAULTS.attribution) == set(typing.get_args(AttributionKey))


def test_a_current_api_invoice_line_gives_its_product_and_unit_price():
    # Given an invoice line priced as API 2025-03-31+ shapes it (pricing.price_details)
    (purchase,) = convert(testkit.stripe_event("invoice.paid", testkit.invoice(), event_id="evt_i"))
    # Then the item carries the product and the unit price in minor units
    (item,) = purchase.items
    assert (item.product_id, item.quantity, item.unit_amount_minor) == ("prod_NjpI7DbZx6AlWQ", 1, 2000)


def test_a_fractional_unit_price_leaves_the_item_without_one_and_the_value_exact():
    # Given a metered line whose unit price has a fraction of a cent
    invoice = testkit.invoice()
    invoice["lines"]["data"][0]["pricing"]["unit_amount_decimal"] = "0.25"
    (purchase,) = convert(testkit.stripe_event("invoice.paid", invoice, event_id="evt_i"))
    # Then the item keeps its product, drops the inexact price, and the value is untouched
    assert purchase.items[0].unit_amount_minor is None
    assert purchase.value.amount_minor == 2000
