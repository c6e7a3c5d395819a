"""relay.sources.shopify: the HMAC check (with the derived vector of SOURCES.md), headers as topic and
dedup key, the order shape, attribution from cart attributes and the landing URL, exact amounts.

Tests read Given / When / Then in their comments or names.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from relay import pii
from relay.config import Source, parse_destination
from relay.errors import MissingSignatureError, PayloadError, SignatureError
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import handled_event_types, ignore_reason, map_event
from relay.models import DeliveryJob, conversion_id
from relay.sources.shopify import DEFAULTS, SOURCE, builtin_rules, derived, paid_order_key
from relay.vendors import scalev

import testkit

FIXTURES = testkit.FIXTURES
WEBHOOK_ID = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


def request(body: Any, topic: str | None = "orders/paid", **headers: str) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"x-shopify-webhook-id": WEBHOOK_ID, "x-shopify-shop-domain": testkit.SHOPIFY_SHOP_DOMAIN}
    if topic:
        sent["x-shopify-topic"] = topic
    sent.update({k.replace("_", "-").lower(): v for k, v in headers.items()})
    return WebhookRequest(method="POST", path="/webhooks/shopify", headers=sent, body=raw)


def convert(document: dict[str, Any], topic: str = "orders/paid") -> list:
    source = Source()
    (event,) = SOURCE.parse(request(document, topic))
    return [m.conversion for m in map_event(event, source, builtin_rules(source), DEFAULTS)]


# --- verify --------------------------------------------------------------------------------------


def test_the_derived_vector_verifies():
    # Given SOURCES.md's Shopify-style check value: key "hush" over a fixture's exact bytes
    body = (FIXTURES / "stripe" / "setup_intent.created.json").read_bytes()
    signed = request(body, x_shopify_hmac_sha256="Es3iPXmTAF4M2vaQJH040+IAEyR2DhAlafSwIqt4Ir4=")
    SOURCE.verify(signed, ["hush"], Source())
    with pytest.raises(SignatureError):
        SOURCE.verify(signed, ["not-hush"], Source())


def test_either_secret_of_a_rotation_verifies_and_unsigned_is_refused():
    body = json.dumps(testkit.shopify_order()).encode()
    signed = request(body, x_shopify_hmac_sha256=testkit.shopify_hmac(body, "new"))
    SOURCE.verify(signed, ["old", "new"], Source())
    with pytest.raises(MissingSignatureError):
        SOURCE.verify(request(body), ["old", "new"], Source())


# --- parse ---------------------------------------------------------------------------------------


def test_the_topic_names_the_event_and_the_order_keys_a_paid_order():
    # The orders API knows no webhook ids: keyed by the order, a backfilled order is the same claim.
    (event,) = SOURCE.parse(request(testkit.shopify_order(), x_shopify_triggered_at="2030-01-01T00:00:00Z"))
    assert (event.event_type, event.object_type) == ("orders/paid", "orders")
    assert (
        event.event_id
        == f"orders/paid:{testkit.SHOPIFY_ORDER_ID}"
        == paid_order_key(testkit.SHOPIFY_ORDER_ID)
    )
    assert event.object_id == str(testkit.SHOPIFY_ORDER_ID)
    # And the time is the body's updated_at, not the unsigned X-Shopify-Triggered-At
    assert event.occurred_at == datetime(2026, 1, 1, 5, 0, 5, tzinfo=UTC)
    assert event.livemode is True


def test_a_test_order_is_test_mode():
    (event,) = SOURCE.parse(request(testkit.shopify_order(test=True)))
    assert event.livemode is False


@pytest.mark.parametrize(
    ("req", "reason"),
    [
        (request(b"{}", topic=None), "X-Shopify-Topic"),
        (request(b"{"), "not valid JSON"),
        (request(b"[]"), "must be a JSON object"),
        (request({"id": 1, "total_price": "1.00"}), "currency"),
        (request((FIXTURES / "stripe" / "setup_intent.created.json").read_bytes()), "id"),
        (request({"email": "x"}, topic="customers/create"), "id"),
        (
            request(
                {
                    "id": 1,
                    "admin_graphql_api_id": "gid://shopify/Order/1",
                    "total_price": ["1"],
                    "currency": "USD",
                }
            ),
            "total_price",
        ),
        (
            request(
                {"id": 1, "admin_graphql_api_id": "gid://shopify/Customer/1"},
                x_shopify_triggered_at="last tuesday",
                topic="customers/create",
            ),
            "time",
        ),
    ],
)
def test_malformed_webhooks_are_refused_with_a_reason(req: WebhookRequest, reason: str):
    with pytest.raises(PayloadError, match=reason):
        SOURCE.parse(req)


def test_cart_attributes_and_landing_parameters_are_added_under_relay():
    extra = derived(testkit.shopify_order(), testkit.SHOPIFY_SHOP_DOMAIN)
    assert extra["attributes"]["scan_session_id"] == testkit.SCAN_SESSION_ID
    assert extra["landing"] == {"fbclid": "IwAR2xyz", "ttclid": "E.C.P.landing", "utm_source": "fb"}
    assert extra["landing_url"] == (
        "https://relay-local.myshopify.com/products/pro-plan?fbclid=IwAR2xyz&ttclid=E.C.P.landing&utm_source=fb"
    )
    # Then fbc is Meta's fb.1.<ms>.<fbclid>, the order time standing in for the click time
    assert extra["fbc"] == "fb.1.1767243600000.IwAR2xyz"


def test_attributes_also_come_as_an_object_and_odd_landing_sites_are_harmless():
    order = testkit.shopify_order(note_attributes=[], landing_site="https://shop.example.com/?click_id=k1")
    order["note_attributes"] = {"fbc": "fb.1.1.x"}
    extra = derived(order, None)
    assert extra["attributes"] == {"fbc": "fb.1.1.x"}
    assert extra["landing_url"] == "https://shop.example.com/?click_id=k1"
    assert derived({"landing_site": None, "note_attributes": "junk"}, "s")["landing"] == {}


# --- rules ---------------------------------------------------------------------------------------


def test_a_paid_order_is_a_purchase_with_exact_amounts_and_its_line_items():
    # Given a paid order whose line items carry Shopify's numeric variant ids
    (purchase,) = convert(testkit.shopify_order())
    # Then the items have product ids, quantities and prices, and no variant id: Scalev's
    # analytics take its own variant unique ids, "not the numeric IDs" (scalev doc)
    assert purchase.conversion_id == conversion_id("shopify", str(testkit.SHOPIFY_ORDER_ID), "purchase")
    assert (purchase.value.amount_minor, purchase.value.currency) == (19999, "USD")
    assert [(i.product_id, i.variant_id, i.quantity, i.unit_amount_minor) for i in purchase.items] == [
        ("632910392", None, 1, 14999),
        ("632910393", None, 2, 2500),
    ]
    assert purchase.occurred_at.isoformat() == "2026-01-01T05:00:00+00:00"
    assert purchase.properties["shopify_order_name"] == "#1001"


def test_a_shopify_order_sends_scalev_no_numeric_variant_ids():
    # Given a paid Shopify order (numeric variant ids 808950810, 808950811)
    (purchase,) = convert(testkit.shopify_order())
    meta = parse_destination(
        {
            "kind": "scalev",
            "provider": "meta",
            "store_id": "s",
            "base_url": "https://api.scalev.example",
            "api_key_secret": "conversion-relay/scalev/key",
        }
    )
    # When built for Scalev Meta
    payload = scalev.build_payload(meta, purchase)
    # Then no variant_unique_id is a Shopify number; Meta's content ids are the product ids
    assert "variants" not in payload
    assert payload["events"][0]["parameters"]["content_ids"] == ["632910392", "632910393"]


@pytest.mark.parametrize(
    ("total", "currency", "minor"), [("0.30", "USD", 30), ("1000", "JPY", 1000), ("2.345", "BHD", 2345)]
)
def test_totals_convert_by_the_currency_exponent(total: str, currency: str, minor: int):
    order = testkit.shopify_order(total_price=total, currency=currency)
    order["line_items"] = []
    (purchase,) = convert(order)
    assert (purchase.value.amount_minor, purchase.value.currency) == (minor, currency)


def test_identity_is_hashed_from_the_order_and_its_billing_address():
    identity = convert(testkit.shopify_order())[0].identity
    assert identity.email == pii.hash_email(testkit.CUSTOMER_DETAILS["email"])
    assert identity.phone == pii.sha256_hex("16169547888")
    assert (identity.first_name, identity.last_name) == (pii.hash_name("Jenny"), pii.hash_name("Rosen"))
    assert identity.city == pii.sha256_hex("menlopark")
    assert identity.state == pii.sha256_hex("ca")
    assert identity.zip == pii.sha256_hex("94025")
    assert identity.country == pii.sha256_hex("us")
    assert identity.external_id == pii.hash_external_id("115310627314723954")


def test_attribution_prefers_cart_attributes_over_the_landing_url():
    (purchase,) = convert(testkit.shopify_order())
    attribution = purchase.attribution
    assert attribution.scan_session_id == testkit.SCAN_SESSION_ID
    assert attribution.pagent.visit_id == testkit.PAGENT_SESSION["visit_id"]
    assert attribution.fbc == "fb.1.1767243600000.IwAR2xyz"  # derived: no fbc attribute
    assert attribution.ttclid == "E.C.P.landing"
    assert attribution.snackvideo_click_id == testkit.ATTRIBUTION_METADATA["snackvideo_click_id"]
    assert attribution.referrer_url == "https://www.facebook.com/"
    assert attribution.client_user_agent.startswith("Mozilla/5.0")
    # Given the storefront also stored the _fbc cookie, Then that wins over the derived value
    cookie = [
        *testkit.shopify_order()["note_attributes"],
        {"name": "_fbc", "value": "fb.1.1700000000000.cookie"},
    ]
    assert (
        convert(testkit.shopify_order(note_attributes=cookie))[0].attribution.fbc
        == "fb.1.1700000000000.cookie"
    )


def test_a_new_customer_is_a_signup_keyed_by_the_customer():
    (signup,) = convert(testkit.shopify_customer(), topic="customers/create")
    assert signup.conversion_id == conversion_id("shopify", "115310627314723954", "signup")
    assert signup.identity.external_id == pii.hash_external_id("115310627314723954")
    assert signup.identity.email == pii.hash_email(testkit.CUSTOMER_DETAILS["email"])
    assert signup.identity.zip == pii.sha256_hex("94025")


def test_topics_without_rules_are_not_held_to_a_shape():
    (event,) = SOURCE.parse(
        request({"admin_graphql_api_id": "gid://shopify/BulkOperation/1"}, "bulk_operations/finish")
    )
    assert (event.event_type, event.object_id) == ("bulk_operations/finish", None)


# Shopify's documented bodies of topics the relay has no rule for: orders/delete, orders/edited,
# and the mandatory compliance topics (shopify.dev, "Privacy law compliance").
UNHANDLED = {
    "orders/delete": {"id": 450789469},
    "orders/edited": {
        "order_edit": {
            "id": 78912328,
            "app_id": None,
            "created_at": "2026-01-01T12:00:00-05:00",
            "notify_customer": False,
            "order_id": 450789469,
            "staff_note": "",
            "user_id": None,
            "line_items": {"additions": [{"id": 466157049, "delta": 1}], "removals": []},
        }
    },
    "customers/data_request": {
        "shop_id": 954889,
        "shop_domain": "{shop}.myshopify.com",
        "orders_requested": [299938, 280263, 220458],
        "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
        "data_request": {"id": 9999},
    },
    "customers/redact": {
        "shop_id": 954889,
        "shop_domain": "{shop}.myshopify.com",
        "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
        "orders_to_redact": [299938, 280263, 220458],
    },
    "shop/redact": {"shop_id": 954889, "shop_domain": "{shop}.myshopify.com"},
}


@pytest.mark.parametrize("topic", sorted(UNHANDLED))
def test_topics_without_a_rule_are_ignored_whatever_their_body(topic: str):
    # Given the source as its function configures it (the built-in rules only)
    source = Source()
    spec = SOURCE.configure(source, None)
    # When Shopify's own body of a topic the relay does not handle arrives
    (event,) = spec.parse(request(UNHANDLED[topic], topic))
    # Then it is read, not parked, and answered "ignored"
    assert event.event_type == topic
    handled = handled_event_types(source, builtin_rules(source))
    assert ignore_reason(event, source, handled) == "unsupported_event_type"


def test_a_topic_the_config_handles_is_still_held_to_its_shape():
    # Given a config with a rule for orders/delete (an order topic)
    source = Source(rules=[{"event": "orders/delete", "name": "refund", "order_key": "id"}])
    spec = SOURCE.configure(source, None)
    # When orders/delete brings a body that is not an order
    # Then it is refused (and so parked): a handled topic's body must be what its rules read
    with pytest.raises(PayloadError, match=r"admin_graphql_api_id|currency"):
        spec.parse(request(UNHANDLED["orders/delete"], "orders/delete"))
    # And a real order under that topic is read
    (event,) = spec.parse(request(testkit.shopify_order(), "orders/delete"))
    assert event.object_id == str(testkit.SHOPIFY_ORDER_ID)


# --- raw contact data in the landing URL (issue 14, item 10) ---------------------------------------


def test_an_email_in_the_landing_site_never_leaves_ingest_but_the_click_ids_do():
    # Given a paid order whose landing_site carries the buyer's email next to the click ids
    order = testkit.shopify_order(landing_site="/?email=jane@example.com&fbclid=IwAR2xyz&utm_source=fb")
    # When it is mapped and queued
    (purchase,) = convert(order)
    body = DeliveryJob(destination="scalev_meta", conversion=purchase).model_dump_json()
    # Then the page URL keeps the click id and the campaign tag, and the email is gone
    assert (
        purchase.attribution.event_source_url
        == "https://relay-local.myshopify.com/?fbclid=IwAR2xyz&utm_source=fb"
    )
    assert "jane@example.com" not in body
    assert purchase.attribution.fbc == "fb.1.1767243600000.IwAR2xyz"


# --- replays of captured bodies (issue 14, item 11) --------------------------------------------------


def test_a_captured_body_under_a_new_webhook_id_is_the_same_claim():
    # Given a paid order, and the same signed body re-sent with another X-Shopify-Webhook-Id
    order = testkit.shopify_order()
    (first,) = SOURCE.parse(request(order))
    (replayed,) = SOURCE.parse(request(order, x_shopify_webhook_id="00000000-0000-4000-8000-000000000000"))
    # Then both claim the same key: the second is answered as a duplicate
    assert first.event_id == replayed.event_id == f"orders/paid:{testkit.SHOPIFY_ORDER_ID}"


def test_a_paid_order_re_sent_as_a_customer_topic_is_refused():
    # Given a captured orders/paid body re-sent as customers/create (the HMAC does not cover the topic)
    with pytest.raises(PayloadError, match="admin_graphql_api_id is not gid://shopify/Customer/"):
        SOURCE.parse(request(testkit.shopify_order(), topic="customers/create"))
    # And a customer body re-sent as an order topic is refused too
    with pytest.raises(PayloadError):
        SOURCE.parse(request(testkit.shopify_customer(), topic="orders/paid"))


@pytest.mark.parametrize(
    "gid", [None, "gid://shopify/Order/1", "gid://shopify/DraftOrder/820982911946154508", 820982911946154508]
)
def test_an_order_body_must_name_itself_as_this_order(gid):
    order = testkit.shopify_order()
    order["admin_graphql_api_id"] = gid
    with pytest.raises(PayloadError, match="admin_graphql_api_id"):
        SOURCE.parse(request(order))


def test_conversion_ids_come_from_the_body_whichever_topic_brings_the_order():
    # Given a config that also counts orders/create as the purchase
    source = Source(rules=[{"event": "orders/create", "name": "purchase", "order_key": "id"}])
    order = testkit.shopify_order()
    found = {}
    for topic in ("orders/paid", "orders/create"):
        (event,) = SOURCE.parse(request(order, topic))
        found[topic] = (event.event_id, map_event(event, source, builtin_rules(source), DEFAULTS))
    # Then each topic has its own claim, and both make the one purchase (the ledger sends it once)
    assert found["orders/paid"][0] != found["orders/create"][0]
    ids = {mapped.conversion.conversion_id for _, conversions in found.values() for mapped in conversions}
    assert ids == {conversion_id("shopify", str(testkit.SHOPIFY_ORDER_ID), "purchase")}


def test_topics_that_recur_for_an_object_are_keyed_by_the_body_too():
    order = testkit.shopify_order()
    later = {**order, "updated_at": "2026-01-02T00:00:00-05:00"}
    keys = [SOURCE.parse(request(body, "orders/updated"))[0].event_id for body in (order, order, later)]
    assert keys[0] == keys[1] != keys[2]
    assert keys[0].startswith(f"orders/updated:{testkit.SHOPIFY_ORDER_ID}:")


@pytest.mark.parametrize("domain", ["evil.example.com", "x.myshopify.com.evil.com", "a/b.myshopify.com", ""])
def test_an_unsigned_shop_domain_that_is_not_a_myshopify_name_is_not_used(domain: str):
    # Given an order whose landing site is a path, and a shop domain header that is not *.myshopify.com
    (event,) = SOURCE.parse(request(testkit.shopify_order(), x_shopify_shop_domain=domain))
    # Then no page URL is made from it
    assert event.payload["relay"]["landing_url"] is None
    assert event.payload["relay"]["shop_domain"] is None
