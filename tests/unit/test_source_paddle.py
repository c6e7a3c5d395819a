"""relay.sources.paddle: the Paddle SDK's signature vectors through the source's verify, the notification
envelope, and the built-in rules on the SDK's transaction.completed fixture.

Tests read Given / When / Then in their comments or names.
"""

from __future__ import annotations

import json
import time

import pytest
from relay import pii
from relay.config import Source
from relay.errors import MissingSignatureError, PayloadError, SignatureError, StaleTimestampError
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import map_event
from relay.models import conversion_id
from relay.sources.paddle import DEFAULTS, SOURCE, builtin_rules

import testkit

FIXTURES = testkit.FIXTURES / "paddle"
SDK_SECRET = "pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef+vmtjJYq4mSnHNzvc8uWoJ1I"
NO_AGE_CHECK = Source(signing_tolerance_seconds=0)  # the vectors are from 2024


def request(body: bytes, signature: str | None = None) -> WebhookRequest:
    headers = {"paddle-signature": signature} if signature else {}
    return WebhookRequest(method="POST", path="/webhooks/paddle", headers=headers, body=body)


def sdk_body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().strip()  # the SDK strips the trailing newline


def convert(notification: dict, source: Source | None = None) -> list:
    source = source or Source()
    (event,) = SOURCE.parse(request(json.dumps(notification).encode()))
    return [m.conversion for m in map_event(event, source, builtin_rules(source), DEFAULTS)]


# --- verify --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "header"),
    [
        (
            "customer.created.json",
            "ts=1710498758;h1=558bf93944dbeb4790c7a8af6cb2ea435c8ca9c8396aafc1a4e37424ac132744",
        ),
        (
            "customer.created.special-chars.json",
            "ts=1710498288;h1=38219b3ba1578184e625c29d201a27cd25bd69e2ec9c3ab87dcb90d87ff73a41",
        ),
    ],
)
def test_the_sdk_vectors_verify_and_parse(fixture: str, header: str):
    body = sdk_body(fixture)
    SOURCE.verify(request(body, header), [SDK_SECRET], NO_AGE_CHECK)
    (event,) = SOURCE.parse(request(body, header))
    assert (event.event_type, event.object_type) == ("customer.created", "customer")
    assert event.event_id.startswith("evt_01hs0t")


def test_one_of_several_h1_and_one_of_several_secrets_suffices():
    # Given the SDK's rotation vector: a dummy h1 beside the real one, and two wrong secrets
    header = "ts=1696195954;h1=dummy;h1=d96299976a6eb066f484d7fde011ac56fc32b38fc9940bc419d6e537fdc6ef02"
    secrets = ["pdl_ntf_wrong_one", "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_WvRO0eL4Bj9rgYYIBZY6wZhG4EHy9jzh"]
    SOURCE.verify(request(b"hello-world", header), secrets, NO_AGE_CHECK)
    with pytest.raises(SignatureError):
        SOURCE.verify(request(b"hello-world", header), secrets[:1], NO_AGE_CHECK)


def test_the_default_tolerance_is_five_seconds():
    body = json.dumps(testkit.paddle_notification("transaction.completed", {"id": "txn_1"})).encode()
    fresh = testkit.paddle_signature(body, "s", int(time.time()) - 2)
    stale = testkit.paddle_signature(body, "s", int(time.time()) - 30)
    SOURCE.verify(request(body, fresh), ["s"], Source())
    with pytest.raises(StaleTimestampError):
        SOURCE.verify(request(body, stale), ["s"], Source())
    SOURCE.verify(request(body, stale), ["s"], Source(signing_tolerance_seconds=60))


def test_unsigned_and_forged_notifications_are_refused():
    body = sdk_body("customer.created.json")
    with pytest.raises(MissingSignatureError):
        SOURCE.verify(request(body), [SDK_SECRET], NO_AGE_CHECK)
    with pytest.raises(SignatureError):
        SOURCE.verify(request(body, "ts=1710498758;h1=" + "0" * 64), [SDK_SECRET], NO_AGE_CHECK)


def _transaction(**changes: str) -> bytes:
    data = testkit.paddle_transaction()
    if "grand_total" in changes:
        data["details"]["totals"]["grand_total"] = changes.pop("grand_total")
    data.update(changes)
    return json.dumps(testkit.paddle_notification("transaction.completed", data)).encode()


# --- parse ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not valid JSON"),
        (b'{"event_type": "transaction.completed", "data": {}}', "event_id"),
        (b'{"event_id": "evt_1", "event_type": "x", "data": []}', "data: must be a JSON object"),
        (b'{"event_id": "evt_1", "event_type": "x", "data": {"a": NaN}}', "not valid JSON"),
        (b'{"event_id": "evt_1", "event_type": "x", "data": {}, "data": {}}', "duplicate key"),
        (b'{"event_id": "e", "event_type": "x", "occurred_at": "soon", "data": {}}', "time"),
    ],
)
def test_malformed_notifications_are_refused_with_a_reason(body: bytes, reason: str):
    with pytest.raises(PayloadError, match=reason):
        SOURCE.parse(request(body))


# --- rules ---------------------------------------------------------------------------------------


def test_a_completed_transaction_is_a_purchase_of_its_grand_total_and_items():
    (purchase,) = convert(testkit.paddle_notification("transaction.completed", testkit.paddle_transaction()))
    assert purchase.name == "purchase"
    assert purchase.conversion_id == conversion_id("paddle", "txn_01hv8wptq8987qeep44cyrewp9", "purchase")
    assert (purchase.value.amount_minor, purchase.value.currency) == (65215, "USD")
    # Then the items are the line items as charged: product, quantity, unit price before tax
    assert [(i.product_id, i.quantity, i.unit_amount_minor, i.name) for i in purchase.items] == [
        ("pro_01gsz4t5hdjse780zja8vvr7jg", 10, 3000, "AeroEdit Pro"),
        ("pro_01h1vjes1y163xfj1rh1tkfb65", 1, 10000, "Analytics addon"),
        ("pro_01gsz97mq9pa4fkyy0wqenepkz", 1, 19900, "Custom domains"),
    ]
    assert purchase.occurred_at.isoformat().startswith("2024-04-12T10:18:48")  # billed_at
    assert purchase.identity.external_id == pii.hash_external_id("ctm_01hv6y1jedq4p1n0yqn5ba3ky4")
    # Then attribution is what checkout passed in custom_data
    assert purchase.attribution.scan_session_id == testkit.SCAN_SESSION_ID
    assert purchase.attribution.pagent.user_id == testkit.PAGENT_SESSION["user_id"]
    assert purchase.attribution.ttclid == testkit.ATTRIBUTION_METADATA["ttclid"]


def test_items_are_charged_in_the_transactions_currency_after_discount_before_tax():
    # Given the SDK's transaction billed in EUR (its catalogue prices stay USD) with 10% off
    # the seats: Paddle's per-unit breakdown says what one unit was charged
    transaction = testkit.paddle_transaction()
    transaction["currency_code"] = "EUR"
    transaction["details"]["totals"]["currency_code"] = "EUR"
    seats, addon, _domains = transaction["details"]["line_items"]
    seats["unit_totals"] = {"subtotal": "2790", "discount": "279", "tax": "223", "total": "2734"}
    # and a line item that carries the price's product id only
    addon["price"] = {"product_id": addon.pop("product")["id"]}
    assert transaction["items"][0]["price"]["unit_price"] == {"amount": "3000", "currency_code": "USD"}
    # When it is mapped
    (purchase,) = convert(testkit.paddle_notification("transaction.completed", transaction))
    # Then every item is in EUR: the seat's sale price is subtotal - discount, tax left out
    assert purchase.value.currency == "EUR"
    assert [(i.product_id, i.quantity, i.unit_amount_minor, i.name) for i in purchase.items] == [
        ("pro_01gsz4t5hdjse780zja8vvr7jg", 10, 2511, "AeroEdit Pro"),
        ("pro_01h1vjes1y163xfj1rh1tkfb65", 1, 10000, None),
        ("pro_01gsz97mq9pa4fkyy0wqenepkz", 1, 19900, "Custom domains"),
    ]


def test_a_recurring_transaction_is_a_renewal_under_the_configured_name():
    recurring = testkit.paddle_transaction(origin="subscription_recurring")
    (renewal,) = convert(testkit.paddle_notification("transaction.completed", recurring))
    assert renewal.name == "renewal"
    (named,) = convert(
        testkit.paddle_notification("transaction.completed", recurring),
        Source(renewal_name="subscription_renewal"),
    )
    assert named.name == "subscription_renewal"


@pytest.mark.parametrize(
    ("origin", "name"),
    [
        ("subscription_recurring", "renewal"),  # a billing cycle
        ("subscription_update", "renewal"),  # a plan change billed now (proration)
        ("subscription_charge", "purchase"),  # a one-time charge: something new is sold
        ("web", "purchase"),  # a checkout
        ("api", "purchase"),
    ],
)
def test_the_origin_says_whether_a_transaction_is_a_renewal(origin: str, name: str):
    # Given a completed transaction created as `origin` says
    transaction = testkit.paddle_transaction(origin=origin)
    # When it is mapped
    (conversion,) = convert(testkit.paddle_notification("transaction.completed", transaction))
    # Then it is a renewal only for the subscription's recurring items
    assert conversion.name == name
    assert conversion.conversion_id == conversion_id("paddle", transaction["id"], name)


def test_a_zero_total_transaction_is_not_a_purchase():
    free = testkit.paddle_transaction()
    free["details"]["totals"]["grand_total"] = "0"
    assert convert(testkit.paddle_notification("transaction.completed", free)) == []


def test_a_trial_subscription_is_a_signup():
    subscription = json.loads((FIXTURES / "subscription.created.data.json").read_text())
    subscription["status"] = "trialing"
    (signup,) = convert(testkit.paddle_notification("subscription.created", subscription))
    assert (signup.name, signup.order_id) == ("signup", subscription["id"])
    subscription["status"] = "active"
    assert convert(testkit.paddle_notification("subscription.created", subscription)) == []


def test_without_custom_data_there_is_no_attribution_but_still_a_purchase():
    (purchase,) = convert(
        testkit.paddle_notification("transaction.completed", testkit.paddle_transaction(custom_data={}))
    )
    assert purchase.attribution.scan_session_id is None
    assert purchase.value.amount_minor == 65215
