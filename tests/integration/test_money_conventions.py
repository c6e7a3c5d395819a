"""Each provider's money, through its real handler and out to every vendor payload.

Every currency a provider lists as special (docs/money.md, with the provider's document for
each) is sent as a purchase written the way that provider writes money, and must reach every
destination of the local config as the same amount: Scanova and QuickLizard as a major-unit
float, pagent as hundredths of the major unit, Scalev (Meta, TikTok, SnackVideo) as major units.
A Stripe ISK checkout of 1,000 krónur (API amount 100000) is 1000 ISK everywhere.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from edge_harness import (
    Relays,
    assert_reaches_every_vendor,
    purchase,
    relays_fixture,  # noqa: F401 (the `relays` fixture)
    sign,
    vendor_amounts,
)

import testkit

pytestmark = pytest.mark.integration

# (provider, currency, major amount): the provider's special currencies, from docs/money.md.
CASES = [
    # Stripe, "Zero-decimal currencies" (API amount = major units; MGA is 2-decimal in ISO 4217)
    *[
        ("stripe", code, "1000")
        for code in "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF".split()  # noqa: SIM905
    ],
    # Stripe, "Special cases": ISK and UGX two-decimal in the API (always 00), HUF and TWD two-decimal
    ("stripe", "ISK", "1000"),
    ("stripe", "UGX", "5000"),
    ("stripe", "HUF", "10.45"),
    ("stripe", "TWD", "800.45"),
    # Stripe, "Three-decimal currencies"
    *[("stripe", code, "5.120") for code in ["BHD", "JOD", "KWD", "OMR", "TND"]],
    ("stripe", "USD", "49.99"),
    # Paddle: the lowest denomination; its currencies without decimals, and HUF/TWD with two
    *[("paddle", code, "1500") for code in ("JPY", "KRW", "VND", "CLP")],
    ("paddle", "HUF", "990.50"),
    ("paddle", "TWD", "300.25"),
    ("paddle", "USD", "652.15"),
    # Shopify: decimal strings in the shop currency
    ("shopify", "JPY", "1000"),
    ("shopify", "KWD", "1.234"),
    ("shopify", "ISK", "1000"),
    ("shopify", "USD", "199.99"),
    # HubSpot: the deal amount (text) in deal_currency_code
    ("hubspot", "JPY", "15000"),
    ("hubspot", "KWD", "12.345"),
    ("hubspot", "ISK", "1000"),
    ("hubspot", "USD", "1500.5"),
    # Pipedrive: the deal value (a JSON number) in its currency
    ("pipedrive", "JPY", "1000"),
    ("pipedrive", "KWD", "1.234"),
    ("pipedrive", "ISK", "1000"),
    ("pipedrive", "USD", "19.99"),
    # The backend's canonical value: ISO 4217 major units
    ("events", "JPY", "1000"),
    ("events", "KWD", "1.234"),
    ("events", "ISK", "1000"),
    ("events", "MGA", "1000.20"),
    ("events", "USD", "19.99"),
]


@pytest.mark.parametrize(("provider", "currency", "amount"), CASES, ids=lambda v: str(v))
def test_a_special_currency_reaches_every_vendor_as_the_same_amount(
    relays: Relays, provider: str, currency: str, amount: str
):
    # Given a purchase of `amount` `currency`, written as the provider writes money
    major = Decimal(amount)
    status, answer = relays.post(provider, purchase(relays, provider, major, currency))
    # Then it is accepted, every job's conversion carries exactly that amount, and every
    # destination's vendor payload says the same amount in the vendor's own unit
    assert status == 200 and answer["status"] == "accepted", answer
    assert_reaches_every_vendor(relays, provider, major, currency)


def test_stripe_isk_1000_kronur_arrive_as_api_amount_100000_and_leave_as_1000_isk(relays: Relays):
    # Given Stripe's ISK checkout of 1,000 krónur: the API writes 100000 (two decimals, always 00)
    event = purchase(relays, "stripe", Decimal(1000), "ISK")
    assert b'"amount_total": 100000' in event["body"].encode()
    status, answer = relays.post("stripe", event)
    assert status == 200, answer
    # Then every vendor sees 1000 ISK: Scanova 1000.0, pagent 100000 hundredths, Scalev 1000
    amounts = {job.destination: vendor_amounts(relays, job) for job in relays.jobs()}
    assert amounts["scanova"] == {"amount": 1000.0, "currency": "ISK"}
    assert amounts["pagent"] == {"cents": 100000}
    assert amounts["scalev_meta"] == amounts["scalev_tiktok"] == {"amount": 1000, "currency": "ISK"}
    assert amounts["quicklizard"] == {"prices": [1000.0]}


@pytest.mark.parametrize(
    ("provider", "currency", "api_amount", "code"),
    [
        ("stripe", "ISK", 4010, "fractional_minor_units"),  # 40.10 krónur: Stripe charges no fractions
        ("stripe", "UGX", 150, "fractional_minor_units"),
        ("stripe", "USD", -500, "negative_amount"),
        ("stripe", "USD", 10**30, "amount_too_large"),
        ("stripe", "USD", 100_000_000_000_000, "amount_too_large"),  # beyond Stripe's largest (14 digits)
        ("stripe", "ZZZ", 500, "unsupported_currency"),
    ],
)
def test_a_stripe_amount_that_is_no_purchase_is_parked_with_its_reason(
    relays: Relays, provider: str, currency: str, api_amount: int, code: str
):
    intent = f"pi_{code}_{currency}_{api_amount}"
    session = testkit.checkout_session(payment_intent=intent, amount=api_amount, currency=currency)
    event = testkit.stripe_event("checkout.session.completed", session, event_id=f"evt_{intent}")
    status, answer = relays.post(provider, sign(provider, json.dumps(event).encode()))
    assert (status, answer["status"], answer["reason"]) == (200, "parked", code), answer
    assert relays.jobs() == []


@pytest.mark.parametrize(
    ("provider", "amount", "currency", "code"),
    [
        ("paddle", "-100", "USD", "negative_amount"),
        ("paddle", "1000", "ISK", "unsupported_currency"),  # not one of Paddle's currencies
        ("shopify", "19.999", "USD", "fractional_minor_units"),
        ("shopify", "1", "ZZZ", "unsupported_currency"),
        ("hubspot", "1e16", "USD", "amount_too_large"),
        ("hubspot", "100.5", "JPY", "fractional_minor_units"),
        ("pipedrive", "-1", "EUR", "negative_amount"),
        ("pipedrive", "1", "BTC", "unsupported_currency"),  # a Pipedrive custom currency
        ("events", "0.001", "USD", "fractional_minor_units"),
    ],
)
def test_every_provider_parks_an_amount_that_is_no_purchase_with_its_reason(
    relays: Relays, provider: str, amount: str, currency: str, code: str
):
    status, answer = relays.post(provider, purchase(relays, provider, Decimal(amount), currency))
    assert (status, answer["status"], answer["reason"]) == (200, "parked", code), answer
    assert relays.jobs() == []


def test_a_shopify_order_is_valued_in_the_shop_currency_not_the_presentment_currency(relays: Relays):
    # Given an order paid in EUR at checkout (presentment) in a USD shop: total_price is the shop's
    order = testkit.shopify_order(order_id=4242, total_price="199.99", currency="USD")
    order["presentment_currency"] = "EUR"
    order["total_price_set"] = {
        "shop_money": {"amount": "199.99", "currency_code": "USD"},
        "presentment_money": {"amount": "185.00", "currency_code": "EUR"},
    }
    status, answer = relays.post("shopify", sign("shopify", json.dumps(order).encode()))
    # Then the conversion is the shop currency's amount: the one all of the order's prices use
    assert status == 200, answer
    assert {(j.conversion.value.currency, j.conversion.value.major()) for j in relays.jobs()} == {
        ("USD", Decimal("199.99"))
    }
