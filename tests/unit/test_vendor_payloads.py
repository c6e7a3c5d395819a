"""Vendor payload builders (relay.vendors.*): every field as the vendor documents it, no network."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from relay.config import parse_destination
from relay.errors import MissingRequirementError
from relay.models import Attribution, Consent, Conversion, Identity, Item, Money, PagentSession, SourceRef
from relay.vendors import pagent, quicklizard, scalev, scanova
from relay.vendors.stripe_line_items import StripeLineItems, _item
from relay.vendors.wire import json_bytes

HASH = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"
GOAL = "3f9a3c1e-8d2b-4a57-9c1e-2b7d5e4f6a10"
CID = uuid.UUID("0b5e7a4e-2f7b-5a55-8f38-6f0a1c1d2e3f")


def conversion(**changes: Any) -> Conversion:
    fields: dict[str, Any] = {
        "conversion_id": CID,
        "name": "purchase",
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
        "order_id": "pi_123",
        "value": Money(amount_minor=4999, currency="USD"),
        "items": (Item(product_id="prod_a", quantity=2, unit_amount_minor=2000, variant_id="var_a"),),
        "identity": Identity(email=HASH, phone=HASH, zip=HASH, external_id=HASH),
        "attribution": Attribution(
            scan_session_id="7ad26d4f-3181-4ef8-b6ca-b8f59499dd43",
            pagent=PagentSession(session_id="sess", user_id="user", visit_id="visit"),
            fbp="fb.1.1.2",
            ttclid="tt",
            snackvideo_click_id="kw",
            quicklizard_vid="vid",
            event_source_url="https://shop.example.com/p",
        ),
        "consent": Consent.GRANTED,
        "properties": {"plan": "pro"},
        "source": SourceRef(provider="stripe", event_id="evt_1", event_type="payment_intent.succeeded"),
    }
    return Conversion(**{**fields, **changes})


def destination(kind: str, **fields: Any) -> Any:
    base = {"kind": kind, "base_url": "https://vendor.example.com", "api_key_secret": "conversion-relay/key"}
    return parse_destination({**base, **fields})


SCANOVA = destination("scanova", site_id="site_1")


# --------------------------------------------------------------------------- Scanova


def test_scanova_event_carries_the_documented_fields() -> None:
    # Given a purchase with value, hashed identity, consent and properties; When built for Scanova
    event = scanova.build_event(SCANOVA, conversion())
    # Then: the conversion id is the (UUID) event id, value in major units, identifiers hashed only
    assert event == {
        "site_id": "site_1",
        "event_name": "purchase",
        "event_id": str(CID),
        "scan_session_id": "7ad26d4f-3181-4ef8-b6ca-b8f59499dd43",
        "event_time": "2026-01-01T00:00:00+00:00",
        "conversion_value": {"amount": 49.99, "currency": "USD"},
        "user_identifiers": {"email_hash": HASH, "phone_hash": HASH, "external_id": HASH},
        "properties": {"plan": "pro", "order_id": "pi_123"},
        "consent": "granted",
    }


@pytest.mark.parametrize(
    ("amount_minor", "currency", "major"), [(1999, "USD", 19.99), (500, "JPY", 500.0), (1234, "KWD", 1.234)]
)
def test_scanova_amounts_use_the_currency_exponent(amount_minor: int, currency: str, major: float) -> None:
    # Given amounts in minor units of currencies with 2, 0 and 3 decimals, Then majors follow ISO 4217.
    event = scanova.build_event(
        SCANOVA, conversion(value=Money(amount_minor=amount_minor, currency=currency))
    )
    assert event["conversion_value"] == {"amount": major, "currency": currency}


def test_scanova_properties_fit_in_10_kb_without_raw_pii() -> None:
    # Given properties larger than 10 KB and an email hidden in free text
    big = {"notes": "x" * 11_000, "plan": "pro", "memo": "write to jenny@example.com"}
    # When built
    properties = scanova.build_event(SCANOVA, conversion(properties=big))["properties"]
    # Then the largest property is dropped until it fits, and the email is masked
    assert "notes" not in properties and properties["plan"] == "pro"
    assert "@" not in json.dumps(properties)
    assert len(on_the_wire(properties)) <= 10_000


def on_the_wire(body: Any) -> bytes:
    """The bytes requests sends for `json=body`, as a vendor receives them."""
    return requests.Request("POST", "https://s.example.com/server-events", json=body).prepare().body


@pytest.mark.parametrize(
    ("big", "dropped"),
    [
        # ASCII: 9,811 bytes compact, 10,006 with the spaces after ":" and ","
        ({f"k{i:02}": "x" * 92 for i in range(97)} | {"plan": "pro"}, 1),
        # non-ASCII: 6,000 bytes as compact UTF-8, 18,000 / 12,000 escaped as \\uXXXX on the wire
        ({"note": "é" * 3000, "plan": "pro"}, 1),
        ({"city": "東京" * 1000, "plan": "pro"}, 1),
    ],
)
def test_scanova_properties_fit_10000_bytes_as_serialised_on_the_wire(
    big: dict[str, str], dropped: int
) -> None:
    # Given properties under 10 KB as compact UTF-8 JSON but over 10,000 bytes as sent
    assert len(json.dumps(big, separators=(",", ":"), ensure_ascii=False).encode()) <= 10_000
    assert len(on_the_wire(big)) > 10_000
    # When built
    event = scanova.build_event(SCANOVA, conversion(properties=big))
    # Then what requests sends for them is at most 10,000 bytes, only as much dropped as needed
    # (the order id joins them), and the relay sends exactly requests' bytes
    properties = event["properties"]
    assert len(on_the_wire(properties)) <= 10_000
    assert {"plan", "order_id"} <= properties.keys() and len(big) - (len(properties) - 1) == dropped
    assert json_bytes(event) == on_the_wire(event)


def test_scanova_without_a_scan_session_is_a_skip_not_an_error() -> None:
    with pytest.raises(MissingRequirementError) as raised:
        scanova.build_event(SCANOVA, conversion(attribution=Attribution()))
    assert raised.value.reason == "missing_scan_session_id"


# --------------------------------------------------------------------------- pagent


def test_pagent_v1_event_has_top_level_identifiers_cents_and_ms() -> None:
    # Given a v1 destination whose goals give the purchase goal UUID
    v1 = destination("pagent", api_version="v1", goals={"purchase": GOAL})
    # When built, Then identifiers are top-level, revenue is integer cents and time is epoch ms
    assert pagent.build_event(v1, conversion()) == {
        "session_id": "sess",
        "user_id": "user",
        "conversion_id": GOAL,
        "label": "purchase",
        "time": 1767225600000,
        "revenue": 4999,
        "properties": {"plan": "pro", "order_id": "pi_123"},
    }


def test_pagent_v2_event_nests_session_data_and_the_configured_goal_wins_over_the_sessions() -> None:
    # Given a v2 destination with a purchase goal, and a session that carries the goal it was
    # captured for (from _pgnt.variables(), e.g. on another page's label)
    v2 = destination("pagent", api_version="v2", goals={"purchase": GOAL})
    session = PagentSession(session_id="s", user_id="u", conversion_id="goal-from-browser")
    # When built for a JPY order, Then revenue is hundredths of a yen (to_cents), in session_data,
    # and the goal is the one configured for the label sent (purchase), not the session's
    event = pagent.build_event(
        v2, conversion(attribution=Attribution(pagent=session), value=Money(amount_minor=500, currency="JPY"))
    )
    assert event["session_data"] == {"session_id": "s", "user_id": "u", "conversion_id": GOAL}
    assert event["label"] == "purchase"
    assert event["revenue"] == 50000


def test_pagent_uses_the_sessions_goal_for_a_name_without_a_configured_one() -> None:
    # Given goals for purchase only, and a signup whose session captured its own goal
    v1 = destination("pagent", api_version="v1", goals={"purchase": GOAL})
    session = PagentSession(session_id="s", user_id="u", conversion_id="goal-from-browser")
    # When built, Then the session's goal is the fallback
    event = pagent.build_event(v1, conversion(name="signup", attribution=Attribution(pagent=session)))
    assert (event["label"], event["conversion_id"]) == ("signup", "goal-from-browser")


def test_pagent_without_a_goal_is_skipped() -> None:
    with pytest.raises(MissingRequirementError) as raised:
        pagent.build_event(destination("pagent"), conversion())
    assert raised.value.reason == "missing_pagent_goal"


# --------------------------------------------------------------------------- Scalev


def test_scalev_meta_user_data_holds_only_documented_keys() -> None:
    # Given an identity with a hashed zip (Meta takes zp, but Scalev documents no zp key)
    meta = destination(
        "scalev", provider="meta", store_id="s", event_id_template="{order_id}-{event_name}-FORM"
    )
    payload = scalev.build_payload(meta, conversion())
    # Then user_data has the documented keys only, and the event id is the pixel's
    assert payload["user_data"] == {"em": HASH, "ph": HASH, "external_id": HASH, "fbp": "fb.1.1.2"}
    assert payload["events"][0]["event_id"] == "pi_123-Purchase-FORM"
    assert payload["variants"] == [{"variant_unique_id": "var_a", "quantity": 2}]
    assert "bundle_price_options" not in payload and "referrer_url" not in payload


@pytest.mark.parametrize(
    ("amount_minor", "currency", "expected"),
    [
        (15_000_000, "IDR", 150000),
        (15_000_050, "IDR", 150000),  # Scalev: IDR as the storefront shows it, whole rupiah
        (15_000_150, "IDR", 150002),
        (4999, "USD", 49.99),
        (5000, "USD", 50),
        (500, "JPY", 500),
    ],
)
def test_scalev_amounts_are_major_units_and_whole_ones_integers(
    amount_minor: int, currency: str, expected: float
) -> None:
    # Given amounts in minor units, Then Scalev gets major units; whole amounts as JSON integers
    value = scalev.amount(amount_minor, currency)
    assert value == expected and isinstance(value, type(expected))


def test_scalev_snackvideo_needs_a_click_id() -> None:
    snack = destination("scalev", provider="snackvideo", store_id="s")
    with pytest.raises(MissingRequirementError) as raised:
        scalev.build_payload(snack, conversion(attribution=Attribution()))
    assert raised.value.reason == "missing_click_id"


def test_scalev_drops_urls_it_would_refuse() -> None:
    # Given attribution URLs that are not absolute http(s) URLs, Then they are left out
    tiktok = destination("scalev", provider="tiktok", store_id="s")
    odd = Attribution(event_source_url="/checkout", referrer_url="android-app://com.tiktok")
    payload = scalev.build_payload(tiktok, conversion(attribution=odd))
    assert "event_source_url" not in payload and "referrer_url" not in payload
    assert payload["user"] == {"email": HASH, "phone": HASH, "external_id": HASH}


# --------------------------------------------------------------------------- QuickLizard


def test_quicklizard_one_event_per_priced_line() -> None:
    # Given two lines, one without a price, When built, Then only the priced one becomes an event
    items = (Item(product_id="a", quantity=3, unit_amount_minor=1234), Item(product_id="b"))
    events = quicklizard.build_events(conversion(), items, "USD", name="conversion", client_key="ck")
    assert events == [
        {"client_key": "ck", "price": 12.34, "product_id": "a", "event": "conversion", "vid": "vid"}
    ]


def test_quicklizard_views_need_a_permalink_from_the_item_or_the_page() -> None:
    # Given a product view with one item URL and one item without, and no page URL
    items = (
        Item(product_id="a", unit_amount_minor=100, url="https://shop.example.com/a"),
        Item(product_id="b"),
    )
    bare = conversion(name="product_view", attribution=Attribution())
    events = quicklizard.build_events(bare, items, "USD", name="view", client_key="ck")
    # Then the view carries the item URL; without any URL there is nothing to send
    assert events == [
        {
            "client_key": "ck",
            "price": 1.0,
            "product_id": "a",
            "event": "view",
            "permalink": "https://shop.example.com/a",
        }
    ]
    with pytest.raises(MissingRequirementError) as raised:
        quicklizard.build_events(
            bare,
            (Item(product_id="c", unit_amount_minor=5),),
            "USD",
            name="view",
            client_key="ck",
        )
    assert raised.value.reason == "missing_permalink"


@pytest.mark.parametrize(
    ("items", "currency", "reason"),
    [
        ((), "USD", "no_line_items"),
        ((Item(product_id="a"),), "USD", "no_item_prices"),
        ((Item(product_id="a", unit_amount_minor=1),), None, "no_currency"),
    ],
)
def test_quicklizard_without_sendable_lines_is_a_skip(items, currency, reason) -> None:
    with pytest.raises(MissingRequirementError) as raised:
        quicklizard.build_events(conversion(), items, currency, name="conversion", client_key="ck")
    assert raised.value.reason == reason


def test_a_stripe_line_item_becomes_an_item_at_its_sale_price() -> None:
    # Given a Stripe line item of 3 units at 10.00 with a 1.50 discount, and an expanded product
    line = {
        "id": "li_1",
        "amount_subtotal": 3000,
        "amount_discount": 150,
        "currency": "eur",
        "description": "Socks",
        "quantity": 3,
        "price": {"product": {"id": "prod_socks"}, "unit_amount": 1000},
    }
    # Then the unit sale price is (30.00 - 1.50) / 3 = 9.50, after discounts, before tax
    assert _item(line) == Item(product_id="prod_socks", quantity=3, unit_amount_minor=950, name="Socks")
    assert _item({"price": {}}) is None  # no product: not a product line


class RecordingTransport:
    """A Transport that records the URLs it is asked for and answers no sessions."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def request(self, method: str, url: str, **_: Any) -> Any:
        self.urls.append(url)
        raise AssertionError(f"no Stripe call expected, got {url}")


@pytest.mark.parametrize(
    "object_id", ["cs_1/../../v1/customers", "pi_1?expand[]=customer", "../v1/balance", "", "cs_"]
)
def test_a_stripe_object_id_of_another_shape_is_never_put_in_a_stripe_url(object_id: str) -> None:
    # Given a conversion whose Stripe object id is not shaped like one (cs_…, pi_…)
    transport = RecordingTransport()
    reader = StripeLineItems(transport, "https://api.stripe.com", lambda: "rk_1", destination="ql", timeout=1)
    source = SourceRef(
        provider="stripe",
        event_id="evt_1",
        event_type="checkout.session.completed",
        object_type="checkout.session",
        object_id=object_id,
    )
    # Then no line items are read, and no request is made with the key
    assert reader.for_conversion(conversion(source=source)) == ([], None)
    assert transport.urls == []


# --------------------------------------------------------------------------- decided at ingest


@pytest.mark.parametrize(
    ("stripe_key", "source", "items", "skip"),
    [
        (None, ("stripe", "checkout.session", "cs_1"), (), "no_line_items"),  # nothing to read lines with
        ("conversion-relay/stripe-api-key", ("paddle", "transaction", "txn_1"), (), "no_line_items"),
        ("conversion-relay/stripe-api-key", ("stripe", "checkout.session", "cs_1"), (), None),  # read later
        ("conversion-relay/stripe-api-key", ("stripe", "payment_intent", "pi_1"), (), None),
        (None, ("stripe", "invoice", "in_1"), (Item(product_id="a"),), "no_item_prices"),
        (None, ("stripe", "invoice", "in_1"), (Item(product_id="a", unit_amount_minor=5),), None),
    ],
    ids=["no-key", "not-stripe", "checkout", "payment-intent", "unpriced-lines", "priced-lines"],
)
def test_quicklizard_decides_at_ingest_what_the_conversion_alone_tells(stripe_key, source, items, skip):
    """Given a QuickLizard destination (with or without a Stripe key) and a conversion, When its
    skip reason is asked at ingest, Then lines that cannot exist or cannot be sent skip it there,
    and a Stripe Checkout without lines waits for delivery, where they are read."""
    provider, object_type, object_id = source
    ql = destination("quicklizard", stripe_api_key_secret=stripe_key)
    ref = SourceRef(
        provider=provider, event_id="evt_1", event_type="x", object_type=object_type, object_id=object_id
    )

    assert ql.skip_reason(conversion(items=items, source=ref)) == skip


@pytest.mark.parametrize("goal", ["YOUR-PURCHASE-GOAL-UUID", "purchase", ""])
def test_a_pagent_goal_that_is_not_a_uuid_fails_the_config(goal):
    with pytest.raises(ValueError, match="not a UUID"):
        destination("pagent", goals={"purchase": goal})


@pytest.mark.parametrize(
    "written",
    [
        "3f9a3c1e-8d2b-4a57-9c1e-2b7d5e4f6a10",
        "3F9A3C1E-8D2B-4A57-9C1E-2B7D5E4F6A10",
        "3f9a3c1e8d2b4a579c1e2b7d5e4f6a10",
        "{3f9a3c1e-8d2b-4a57-9c1e-2b7d5e4f6a10}",
        "urn:uuid:3f9a3c1e-8d2b-4a57-9c1e-2b7d5e4f6a10",
    ],
)
def test_a_pagent_goal_uuid_passes_in_its_canonical_form(written: str) -> None:
    # Given a goal UUID written in any form Python reads, When the config is validated,
    # Then it is kept (and sent) lowercase and hyphenated
    goal = "3f9a3c1e-8d2b-4a57-9c1e-2b7d5e4f6a10"
    assert destination("pagent", goals={"purchase": written}).goals == {"purchase": goal}
