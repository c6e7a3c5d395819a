"""relay.sources.events: Standard Webhooks signatures made by the official `standardwebhooks` library,
the canonical conversion (validation with reasons, exact amounts, normalization), custom event
shapes mapped by config rules, and a configurable type path.

Tests read Given / When / Then in their comments or names.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks
from relay import pii
from relay.config import Rule, Source
from relay.errors import (
    ConfigError,
    MissingSignatureError,
    PayloadError,
    SignatureError,
    StaleTimestampError,
)
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import map_event
from relay.models import Consent, conversion_id
from relay.sources.events import SOURCE, builtin_rules, canonical_types

import testkit

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks test secret


def signed(
    body: Any, msg_id: str = "msg_1", secret: str = SECRET, at: datetime | None = None
) -> WebhookRequest:
    """A request signed by the official library, as a sender's backend would sign it."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    at = at or datetime.now(UTC)
    signature = standardwebhooks.Webhook(secret).sign(msg_id, at, raw.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
    return WebhookRequest(method="POST", path="/events", headers=headers, body=raw)


def convert(body: Any, source: Source | None = None, msg_id: str = "msg_1") -> list:
    source = source or Source()
    spec = SOURCE.configure(source, None)
    (event,) = spec.parse(signed(body, msg_id))
    return [m.conversion for m in map_event(event, source, builtin_rules(source), spec.defaults)]


# --- verify --------------------------------------------------------------------------------------


def test_the_official_library_signs_what_the_relay_accepts():
    SOURCE.verify(signed(testkit.backend_purchase()), [SECRET], Source())


def test_the_official_test_vector_verifies():
    # Given the library's own test vector (2021: the age check is off)
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    vector = WebhookRequest(method="POST", path="/events", headers=headers, body=b'{"test": 2432232314}')
    SOURCE.verify(vector, [SECRET], Source(signing_tolerance_seconds=0))
    with pytest.raises(StaleTimestampError):
        SOURCE.verify(vector, [SECRET], Source())


def test_forged_and_unsigned_messages_are_refused():
    forged = signed(testkit.backend_purchase(), secret="whsec_" + "A" * 32)
    with pytest.raises(SignatureError):
        SOURCE.verify(forged, [SECRET], Source())
    unsigned = WebhookRequest(method="POST", path="/events", headers={}, body=b"{}")
    with pytest.raises(MissingSignatureError):
        SOURCE.verify(unsigned, [SECRET], Source())


def test_the_local_signer_matches_the_official_library():
    body = b'{"type":"lead"}'
    ours = testkit.standard_webhooks_signature("msg_x", body, testkit.LOCAL_EVENTS_SECRET, 1767225600)
    theirs = standardwebhooks.Webhook(testkit.LOCAL_EVENTS_SECRET).sign(
        "msg_x", datetime.fromtimestamp(1767225600, UTC), body.decode()
    )
    assert ours["webhook-signature"] == theirs


# --- canonical conversions -------------------------------------------------------------------------


def test_a_canonical_purchase_becomes_the_same_conversion():
    (purchase,) = convert(testkit.backend_purchase())
    assert purchase.name == "purchase"
    assert purchase.conversion_id == conversion_id("events", "ord_1001", "purchase")
    assert (purchase.value.amount_minor, purchase.value.currency) == (1999, "USD")
    assert [(i.product_id, i.quantity, i.unit_amount_minor, i.name) for i in purchase.items] == [
        ("sku-pro", 1, 1999, "Pro plan")
    ]
    assert purchase.occurred_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert purchase.consent is Consent.GRANTED
    # Then raw identity was hashed at ingest
    assert purchase.identity.email == pii.hash_email(testkit.CUSTOMER_DETAILS["email"])
    assert purchase.identity.external_id == pii.hash_external_id("user_1001")
    assert "jenny" not in purchase.model_dump_json().lower()
    assert purchase.attribution.pagent.conversion_id == testkit.PAGENT_SESSION["conversion_id"]
    assert purchase.attribution.quicklizard_vid == testkit.ATTRIBUTION_METADATA["quicklizard_vid"]


@pytest.mark.parametrize(
    ("value", "minor"),
    [
        ({"amount": "19.99", "currency": "USD"}, 1999),
        ({"amount": 0.29, "currency": "USD"}, 29),  # a JSON number: exact, not 28
        ({"amount": 1500, "currency": "JPY"}, 1500),
        ({"amount": "1.234", "currency": "kwd"}, 1234),
        ({"amount_minor": 4999, "currency": "EUR"}, 4999),
    ],
)
def test_amounts_are_exact_in_major_or_minor_units(value: dict, minor: int):
    (purchase,) = convert(testkit.backend_conversion("purchase", order_id="o1", value=value))
    assert purchase.value.amount_minor == minor


def test_pre_hashed_identity_passes_through():
    digest = pii.hash_email("someone@example.com")
    (lead,) = convert(testkit.backend_conversion("lead", order_id="l1", identity={"email": digest.upper()}))
    assert lead.identity.email == digest


def test_a_product_view_without_an_order_is_keyed_by_the_message():
    view = testkit.backend_conversion(
        "product_view", items=[{"product_id": "sku-1", "url": "https://s.example/p"}]
    )
    (first,) = convert(view, msg_id="msg_view_1")
    (again,) = convert(view, msg_id="msg_view_1")
    (other,) = convert(view, msg_id="msg_view_2")
    assert first.conversion_id == again.conversion_id != other.conversion_id
    assert first.items[0].url == "https://s.example/p"


def test_the_occurrence_time_falls_back_to_the_signature_time():
    body = {"type": "signup", "data": {"order_id": "u1"}}
    (signup,) = convert(body)
    assert abs(signup.occurred_at.timestamp() - time.time()) < 60


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"value": {"amount": "19.999", "currency": "USD"}}, "more decimals than USD"),
        ({"value": {"amount": "ten", "currency": "USD"}}, "data.value.amount"),
        ({"value": {"amount": "1", "currency": "dollars"}}, "data.value: currency 'dollars' is not"),
        ({"value": {"amount": "1", "amount_minor": 100, "currency": "USD"}}, "exactly one of"),
        ({"value": {"amount_minor": 9.5, "currency": "USD"}}, "data.value: a minor-unit amount has a"),
        ({"attribuiton": {}}, "data.attribuiton: Extra inputs are not permitted"),
        ({"identity": {"mail": "x@example.com"}}, "data.identity.mail"),
        ({"items": [{"quantity": 1}]}, "data.items.0.product_id"),
        ({"items": [{"product_id": "a", "unit_amount": "1"}]}, "needs data.value.currency"),
        (
            {
                "value": {"amount": "1", "currency": "JPY"},
                "items": [{"product_id": "a", "unit_amount": "0.5"}],
            },
            "more decimals than JPY",
        ),
        ({"consent": "maybe"}, "data.consent"),
        ({"occurred_at": "yesterday"}, "data.occurred_at"),
    ],
)
def test_a_malformed_canonical_conversion_is_refused_saying_where(data: dict, reason: str):
    with pytest.raises(PayloadError, match=reason) as caught:
        SOURCE.parse(signed({"type": "purchase", "data": data}))
    assert "x@example.com" not in str(caught.value)  # the reason never echoes a value


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ({"amount": "-1.00", "currency": "USD"}, "negative_amount"),
        ({"amount_minor": -100, "currency": "USD"}, "negative_amount"),
        ({"amount": "1e16", "currency": "USD"}, "amount_too_large"),
        ({"amount_minor": 10**15, "currency": "USD"}, "amount_too_large"),
        ({"amount": "0.001", "currency": "USD"}, "fractional_minor_units"),
        ({"amount": "1", "currency": "XXY"}, "unsupported_currency"),
    ],
)
def test_a_canonical_amount_that_is_not_money_is_refused_with_its_code(value: dict, code: str):
    # Given a canonical purchase whose value no purchase has, When parsed, Then the PayloadError's
    # code (the reason it is parked under) says why
    with pytest.raises(PayloadError) as caught:
        SOURCE.parse(signed({"type": "purchase", "data": {"value": value}}))
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not valid JSON"),
        (b"[1]", "JSON object"),
        (b'{"data": {}}', "no event type"),
        (b'{"type": 7}', "no event type"),
        (b'{"type": "' + b"x" * 256 + b'"}', "no event type"),
    ],
)
def test_bodies_without_a_type_are_refused(body: bytes, reason: str):
    with pytest.raises(PayloadError, match=reason):
        SOURCE.parse(signed(body))


def test_a_missing_webhook_id_is_refused_at_parse():
    with pytest.raises(PayloadError, match="webhook-id"):
        SOURCE.parse(WebhookRequest(method="POST", path="/events", headers={}, body=b'{"type": "lead"}'))


def test_test_mode_is_the_livemode_flag():
    (event,) = SOURCE.parse(signed({**testkit.backend_purchase(), "livemode": False}))
    assert event.livemode is False


# --- other shapes, settings ---------------------------------------------------------------------


SALESFORCE = {
    "event": {"kind": "opportunity.closed_won"},
    "opportunity": {"Id": "0065g00000XyZaB", "Amount": 1200.5, "CurrencyIsoCode": "EUR"},
    "contact": {"Email": "Jenny.Rosen@Example.com"},
}
OPPORTUNITY_RULE = Rule(
    event="opportunity.closed_won",
    name="purchase",
    order_key="opportunity.Id",
    value={"amount_major": "opportunity.Amount", "currency": "opportunity.CurrencyIsoCode"},
    identity={"email": "contact.Email"},
)


def test_any_shape_is_mapped_by_config_rules_at_a_configured_type_path():
    source = Source(settings={"type_path": "event.kind"}, rules=[OPPORTUNITY_RULE])
    (purchase,) = convert(SALESFORCE, source)
    assert purchase.conversion_id == conversion_id("events", "0065g00000XyZaB", "purchase")
    assert (purchase.value.amount_minor, purchase.value.currency) == (120050, "EUR")
    assert purchase.identity.email == pii.hash_email("jenny.rosen@example.com")


def test_the_webhook_id_is_available_to_config_rules():
    rule = Rule(event="newsletter.confirmed", name="signup", order_key="relay.webhook_id")
    (signup,) = convert({"type": "newsletter.confirmed"}, Source(rules=[rule]), msg_id="msg_n1")
    assert signup.order_id == "msg_n1"


def test_a_replaced_canonical_type_is_not_validated_as_canonical():
    # Given the config maps its own "purchase" shape instead of the built-in one
    rule = Rule(event="purchase", name="purchase", order_key="order.number")
    source = Source(rules=[rule], replace_builtin_events=["purchase"])
    assert "purchase" not in canonical_types(source)
    (purchase,) = convert({"type": "purchase", "order": {"number": "A-1"}, "data": "free-form"}, source)
    assert purchase.order_id == "A-1"


def test_the_canonical_types_are_configurable():
    source = Source(settings={"conversions": ["purchase", "demo_booked"]})
    assert canonical_types(source) == {"purchase", "demo_booked"}
    (demo,) = convert(testkit.backend_conversion("demo_booked", order_id="d1"), source)
    assert demo.name == "demo_booked"
    assert canonical_types(Source(builtin_rules=False)) == frozenset()


def test_bad_settings_fail_the_cold_start():
    with pytest.raises(ConfigError) as caught:
        builtin_rules(Source(settings={"type_path": "[["}))
    assert caught.value.problems[0][0] == "sources.events.settings.type_path"


def test_canonical_properties_are_forwarded_when_the_config_names_them():
    # Given the config forwards `plan`, When a purchase carries plan and an email-valued property
    source = Source(properties={"plan": "relay.canonical.properties.plan"})
    body = testkit.backend_conversion("purchase", order_id="o1", properties={"plan": "pro", "ref": "x"})
    (purchase,) = convert(body, source)
    # Then only the named property travels
    assert purchase.properties == {"plan": "pro"}
