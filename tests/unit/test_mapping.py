"""relay.ingest.mapping: a source's rules (JMESPath over the payload) → canonical conversions, PII hashed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from relay import pii
from relay.config import ItemsSpec, Rule, Source, ValueSpec
from relay.errors import InvalidMoneyError, MappingError
from relay.ingest.mapping import (
    DefaultPaths,
    ProviderEvent,
    apply_rule,
    handled_event_types,
    map_event,
    parse_time,
    rules_for,
)
from relay.models import Consent, conversion_id

SCAN = "7ad26d4f-3181-4ef8-b6ca-b8f59499dd43"
PAYLOAD = {
    "id": "ord_1",
    "created_at": "2026-01-01T10:00:00Z",
    "total": "19.99",
    "currency": "eur",
    "lines": [
        {"sku": "tee", "qty": 2, "price": "5.00", "title": "Tee"},
        {"sku": None, "qty": 1, "price": "1.00"},  # no product id: left out
        {"sku": "mug", "price": "9.99"},
    ],
    "customer": {
        "email": " Jenny.Rosen@Example.com ",
        "phone": "06 12 34 56 78",
        "name": "Jenny Rosen",
        "country": "FR",
    },
    "consent": "yes",
    "meta": {"scan": SCAN, "pagent": json.dumps({"session_id": "s1", "user_id": "u1"}), "pagent_visit": "v9"},
    "note": "call +33 6 12 34 56 78 or jenny@example.com",
}
RULE = Rule(
    event="order.paid",
    name="purchase",
    order_key="id",
    occurred_at="created_at",
    value=ValueSpec(amount_major="total", currency="currency"),
    items=ItemsSpec(path="lines", product_id="sku", quantity="qty", unit_amount_major="price", name="title"),
    identity={
        "email": "customer.email",
        "phone": "customer.phone",
        "full_name": "customer.name",
        "country": "customer.country",
    },
    attribution={
        "scan_session_id": "meta.scan",
        "pagent": "meta.pagent",
        "pagent_visit_id": "meta.pagent_visit",
    },
    consent="consent",
    properties={"note": "note", "order": "id"},
)


def event(payload=PAYLOAD, **overrides) -> ProviderEvent:
    fields = {
        "provider": "shop",
        "event_id": "evt_9",
        "event_type": "order.paid",
        "payload": payload,
        **overrides,
    }
    return ProviderEvent(**fields)


def test_a_rule_maps_a_payload_to_a_conversion():
    # Given an order payload and a rule saying where everything is
    conversion = apply_rule(RULE, Source(), event())
    # Then: id from provider + order key + name; value in exact minor units; items; time
    assert conversion.conversion_id == conversion_id("shop", "ord_1", "purchase")
    assert conversion.order_id == "ord_1"
    assert (conversion.value.amount_minor, conversion.value.currency) == (1999, "EUR")
    assert [(i.product_id, i.quantity, i.unit_amount_minor, i.name) for i in conversion.items] == [
        ("tee", 2, 500, "Tee"),
        ("mug", 1, 999, None),
    ]
    assert conversion.occurred_at == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert conversion.consent is Consent.GRANTED
    assert conversion.source.event_id == "evt_9"


def test_a_unit_discount_is_taken_off_the_unit_price():
    # Given a rule whose lines carry a unit price and a unit discount in minor units
    discounted = RULE.model_copy(
        update={
            "items": ItemsSpec(
                path="lines", product_id="sku", unit_amount_minor="unit.price", unit_discount_minor="unit.off"
            )
        }
    )
    lines = [
        {"sku": "tee", "unit": {"price": "500", "off": "50"}},
        {"sku": "mug", "unit": {"price": "999"}},  # no discount: the price as it is
        {"sku": "gift", "unit": {"price": "100", "off": "150"}},  # more off than the price: no price
    ]
    # When it is mapped
    conversion = apply_rule(discounted, Source(), event(payload={**PAYLOAD, "lines": lines}))
    # Then each unit price is the price less its discount
    assert [(i.product_id, i.unit_amount_minor) for i in conversion.items] == [
        ("tee", 450),
        ("mug", 999),
        ("gift", None),
    ]


def test_identity_is_normalized_and_hashed_here():
    identity = apply_rule(RULE, Source(), event()).identity
    assert identity.email == pii.sha256_hex("jenny.rosen@example.com")
    # a national number resolves with the customer's country
    assert identity.phone == pii.sha256_hex("33612345678")
    assert identity.first_name == pii.sha256_hex("jenny")
    assert identity.last_name == pii.sha256_hex("rosen")
    assert identity.country == pii.sha256_hex("fr")


def test_the_source_phone_region_wins_over_the_customer_country():
    identity = apply_rule(
        RULE,
        Source(phone_region="US"),
        event(payload={**PAYLOAD, "customer": {"phone": "(616) 954-7888", "country": "FR"}}),
    ).identity
    assert identity.phone == pii.sha256_hex("16169547888")


def test_no_raw_pii_survives_in_the_conversion():
    dumped = apply_rule(RULE, Source(), event()).model_dump_json()
    for raw in ("jenny", "Jenny", "Rosen", "12 34 56 78", "612345678", "@example.com"):
        assert raw not in dumped


def test_properties_are_scrubbed():
    conversion = apply_rule(RULE, Source(), event())
    assert conversion.properties == {"note": "call [phone removed] or [email removed]", "order": "ord_1"}


def test_attribution_reads_pagent_json_text_and_single_fields_win():
    attribution = apply_rule(RULE, Source(), event()).attribution
    assert attribution.scan_session_id == SCAN
    assert (attribution.pagent.session_id, attribution.pagent.user_id, attribution.pagent.visit_id) == (
        "s1",
        "u1",
        "v9",
    )


@pytest.mark.parametrize("scan", ["not-a-uuid", "", "1234"])
def test_a_scan_session_that_is_not_a_uuid_counts_as_absent(scan):
    # Scanova refuses non-UUID sessions with 422: the destination is skipped at ingest instead.
    payload = {**PAYLOAD, "meta": {"scan": scan}}
    assert apply_rule(RULE, Source(), event(payload=payload)).attribution.scan_session_id is None


def test_denied_consent_drops_the_identity():
    conversion = apply_rule(RULE, Source(), event(payload={**PAYLOAD, "consent": "opt_out"}))
    assert conversion.consent is Consent.DENIED
    assert conversion.identity.is_empty()


@pytest.mark.parametrize(
    ("raw", "consent"),
    [
        (True, Consent.GRANTED),
        (False, Consent.DENIED),
        ("granted", Consent.GRANTED),
        ("NO", Consent.DENIED),
        ("pending", Consent.PENDING),
        ("maybe", None),
        (None, None),
    ],
)
def test_consent_values(raw, consent):
    assert apply_rule(RULE, Source(), event(payload={**PAYLOAD, "consent": raw})).consent is consent


def test_paths_precedence_rule_then_source_then_built_in():
    # Given the same key configured at all three levels, Then the rule's path wins, then the source's.
    payload = {"id": "o", "a": "a@example.com", "b": "b@example.com", "c": "c@example.com"}
    defaults = DefaultPaths(identity={"email": "c"}, attribution={}, properties={})
    bare = Rule(event="e", name="n", order_key="id")
    assert apply_rule(bare, Source(), event(payload=payload), defaults).identity.email == pii.hash_email(
        "c@example.com"
    )
    source = Source(identity={"email": "b"})
    assert apply_rule(bare, source, event(payload=payload), defaults).identity.email == pii.hash_email(
        "b@example.com"
    )
    own = Rule(event="e", name="n", order_key="id", identity={"email": "a"})
    assert apply_rule(own, source, event(payload=payload), defaults).identity.email == pii.hash_email(
        "a@example.com"
    )


def test_when_false_yields_nothing():
    rule = Rule(event="order.paid", name="purchase", order_key="id", when="status == 'paid'")
    assert apply_rule(rule, Source(), event(payload={"id": "o", "status": "open"})) is None
    assert apply_rule(rule, Source(), event(payload={"id": "o", "status": "paid"})) is not None


def test_a_missing_order_key_is_a_mapping_error():
    with pytest.raises(MappingError, match="found no order key"):
        apply_rule(RULE, Source(), event(payload={"total": "1.00", "currency": "usd"}))


def test_an_absent_amount_or_currency_means_no_value():
    assert apply_rule(RULE, Source(), event(payload={"id": "o", "currency": "usd"})).value is None


@pytest.mark.parametrize(("total", "currency"), [("19.999", "usd"), ("1.5", "jpy"), ("1.00", "XXY")])
def test_invalid_money_is_refused(total, currency):
    with pytest.raises(InvalidMoneyError):
        apply_rule(RULE, Source(), event(payload={"id": "o", "total": total, "currency": currency}))


@pytest.mark.parametrize(("amount", "minor"), [(1999, 1999), ("1999", 1999), (" 0 ", 0)])
def test_minor_amounts_are_integers_or_integer_text(amount, minor):
    rule = Rule(event="e", name="n", order_key="id", value=ValueSpec(amount_minor="amount", currency="cur"))
    assert (
        apply_rule(
            rule, Source(), event(payload={"id": "o", "amount": amount, "cur": "usd"})
        ).value.amount_minor
        == minor
    )


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("-50", "negative_amount"),
        (-1, "negative_amount"),
        (10**20, "amount_too_large"),
        ("1e40", "amount_too_large"),
        ("19.5", "fractional_minor_units"),
        ("NaN", "invalid_money"),
        ({"amount": 1}, "invalid_money"),
    ],
)
def test_a_conversion_value_that_is_not_money_names_why(amount, code):
    # Given an amount no purchase has, When mapped, Then the error's code says why (the park reason)
    rule = Rule(event="e", name="n", order_key="id", value=ValueSpec(amount_minor="amount", currency="cur"))
    with pytest.raises(InvalidMoneyError) as error:
        apply_rule(rule, Source(), event(payload={"id": "o", "amount": amount, "cur": "usd"}))
    assert error.value.code == code


@pytest.mark.parametrize("amount", [19.99, "19.99", True])
def test_minor_amounts_refuse_fractions_and_booleans(amount):
    rule = Rule(event="e", name="n", order_key="id", value=ValueSpec(amount_minor="amount", currency="cur"))
    with pytest.raises(InvalidMoneyError):
        apply_rule(rule, Source(), event(payload={"id": "o", "amount": amount, "cur": "usd"}))


def test_occurred_at_falls_back_to_the_event_time():
    when = datetime(2025, 5, 5, tzinfo=UTC)
    rule = Rule(event="e", name="n", order_key="id")
    assert apply_rule(rule, Source(), event(payload={"id": "o"}, occurred_at=when)).occurred_at == when


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (1_767_225_600, datetime(2026, 1, 1, tzinfo=UTC)),
        (1_767_225_600_000, datetime(2026, 1, 1, tzinfo=UTC)),  # milliseconds
        ("1767225600", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T01:00:00+01:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00", datetime(2026, 1, 1, tzinfo=UTC)),  # naive text is taken as UTC
        (None, None),
        ("", None),
    ],
)
def test_parse_time(raw, parsed):
    assert parse_time(raw) == parsed


@pytest.mark.parametrize("raw", ["yesterday", float("nan"), 10**30, "9" * 30])
def test_parse_time_refuses_what_is_not_a_time(raw):
    with pytest.raises(MappingError):
        parse_time(raw)


# --- which rules apply ---------------------------------------------------------------------------

BUILTIN = (
    Rule(event="a", name="purchase", order_key="id"),
    Rule(event="b", name="signup", order_key="id"),
)


def test_own_rules_add_to_the_built_ins():
    source = Source(
        rules=[Rule(event="a", name="lead", order_key="id"), Rule(event="c", name="x", order_key="id")]
    )
    assert [r.name for r in rules_for("a", source, BUILTIN)] == ["purchase", "lead"]
    assert handled_event_types(source, BUILTIN) == {"a", "b", "c"}


def test_replace_builtin_events_drops_only_those_built_ins():
    source = Source(replace_builtin_events=["a"], rules=[Rule(event="a", name="lead", order_key="id")])
    assert [r.name for r in rules_for("a", source, BUILTIN)] == ["lead"]
    assert [r.name for r in rules_for("b", source, BUILTIN)] == ["signup"]


def test_builtin_rules_off_leaves_only_your_own():
    source = Source(builtin_rules=False, rules=[Rule(event="c", name="x", order_key="id")])
    assert rules_for("a", source, BUILTIN) == []
    assert handled_event_types(source, BUILTIN) == {"c"}


def test_two_rules_yielding_the_same_id_give_one_conversion_the_first_rules():
    # Given two rules for one event that name the same conversion of the same order
    source = Source(rules=[Rule(event="a", name="purchase", order_key="id", destinations=["x"])])
    mapped = map_event(event(event_type="a", payload={"id": "o"}), source, BUILTIN)
    # Then one conversion, routed as the first (built-in) rule says
    assert len(mapped) == 1
    assert mapped[0].destinations is None


def test_amounts_are_read_with_the_providers_conventions_unless_the_rule_says_iso_4217():
    # Given a Stripe checkout of 1,000 krónur (Stripe's API writes ISK with two decimals: 100000)
    # and a merchant's own metadata field holding the same amount in plain ISO units
    payload = {"id": "cs_1", "amount_total": 100000, "currency": "isk", "metadata": {"total": "1000"}}
    stripe = event(payload=payload, provider="stripe")
    total = ValueSpec(amount_minor="amount_total", currency="currency")
    by_stripe = Rule(event="order.paid", name="n", order_key="id", value=total)
    by_merchant = Rule(
        event="order.paid",
        name="n",
        order_key="id",
        value=ValueSpec(amount_minor="metadata.total", currency="currency", convention="iso4217"),
    )
    # Then both are 1000 ISK: the provider's units by default, ISO 4217's where the rule says
    assert apply_rule(by_stripe, Source(), stripe).value.amount_minor == 1000
    assert apply_rule(by_merchant, Source(), stripe).value.amount_minor == 1000


def test_an_expression_that_does_not_fit_the_payload_is_a_mapping_error():
    # Given a rule whose function needs text, and a payload with a number there
    rule = Rule(event="order.paid", name="n", order_key="id", when="starts_with(description, 'Sub')")
    with pytest.raises(MappingError, match="does not fit this payload"):
        apply_rule(rule, Source(), event(payload={"id": "o", "description": 5}))


@pytest.mark.parametrize("quantity", ["two", -1, 1.5, True, 10**12, {"n": 1}])
def test_a_line_whose_quantity_is_no_quantity_is_left_out(quantity):
    payload = {**PAYLOAD, "lines": [{"sku": "a", "qty": quantity, "price": "1.00"}, {"sku": "b", "qty": 2}]}
    conversion = apply_rule(RULE, Source(), event(payload=json.loads(json.dumps(payload))))
    assert [item.product_id for item in conversion.items] == ["b"]
