"""Stripe webhooks through the whole local stack, over HTTP only: API → ingest → SQS → deliver → sandboxes."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from pathlib import Path

import pytest

import testkit

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "stripe"
EMAIL_HASH = hashlib.sha256(b"jenny.rosen@example.com").hexdigest()
DESTINATIONS = ("scanova", "pagent", "scalev_meta", "scalev_tiktok", "scalev_snackvideo", "quicklizard")


# sample → (order, Scanova and pagent event name, Meta's, TikTok's, value in major units)
EXPECTED = {
    "checkout_session_completed": (
        "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "purchase",
        "Purchase",
        "CompletePayment",
        49.99,
    ),
    "checkout_session_async_payment_succeeded": (
        "pi_3LocalAsync",
        "purchase",
        "Purchase",
        "CompletePayment",
        49.99,
    ),
    "invoice_paid": ("in_1MtHbELkdIwHu7ixl4OzzPMv", "purchase", "Purchase", "CompletePayment", 20.0),
    "invoice_paid_renewal": ("in_1LocalRenewal", "renewal", "Purchase", "CompletePayment", 20.0),
    "customer_subscription_created_trial": (
        "sub_1MowQVLkdIwHu7ixeRlqHVzs",
        "signup",
        "CompleteRegistration",
        "CompleteRegistration",
        None,
    ),
}


def sample(stem: str) -> dict:
    return json.loads((SAMPLES / f"{stem}.json").read_text(encoding="utf-8"))


def unique_checkout(*, event_type: str = "checkout.session.completed") -> tuple[dict, dict]:
    """A checkout of its own (ids, click id and visitor id unique to the test) and its payment intent."""
    tag = uuid.uuid4().hex[:12]
    metadata = {
        **testkit.ATTRIBUTION_METADATA,
        "snackvideo_click_id": f"kwai_{tag}",
        "quicklizard_vid": f"vid_{tag}",
    }
    intent_id = f"pi_e2e_{tag}"
    checkout = testkit.stripe_event(
        event_type,
        testkit.checkout_session(session_id=f"cs_e2e_{tag}", payment_intent=intent_id, metadata=metadata),
        event_id=f"evt_e2e_cs_{tag}",
    )
    intent = testkit.stripe_event(
        "payment_intent.succeeded",
        testkit.payment_intent(intent_id=intent_id, metadata=metadata),
        event_id=f"evt_e2e_pi_{tag}",
    )
    return checkout, intent


def http_event(stripe_event: dict) -> dict:
    return testkit.signed_stripe_http_event(stripe_event)


def deliveries_of(stack, checkout: dict, conversion_id: str) -> dict[str, int]:
    """How many events each destination's sandbox accepted for this checkout's conversion."""
    obj = checkout["data"]["object"]
    order, metadata = obj["payment_intent"], obj["metadata"]
    scalev = stack.accepted("scalev")
    return {
        "scanova": sum(e["event_id"] == conversion_id for e in stack.accepted("scanova")),
        "pagent": sum(e["properties"].get("order_id") == order for e in stack.accepted("pagent")),
        "scalev_meta": sum(e.get("event_id") == f"{order}-Purchase-FORM" for e in scalev),
        "scalev_tiktok": sum(e.get("event_id") == f"{order}-CompletePayment-FORM" for e in scalev),
        "scalev_snackvideo": sum(e.get("click_id") == metadata["snackvideo_click_id"] for e in scalev),
        "quicklizard": sum(
            e.get("vid") == metadata["quicklizard_vid"] for e in stack.accepted("quicklizard")
        ),
    }


# A checkout of its own has no line items at the Stripe API stub: QuickLizard skips it.
EACH_ONCE = {**dict.fromkeys(DESTINATIONS, 1), "quicklizard": 0}


def destination_row(status: dict, name: str) -> dict:
    return next(row for row in status["destinations"] if row["destination"] == name)


def test_every_sample_stripe_event_reaches_the_right_sandboxes(stack, poll):
    """Given the committed events/stripe samples,
    When each is sent the `make send` way (re-signed now with the local secret),
    Then every conversion reaches each vendor sandbox once, with the vendor's event name, ids,
    value and attribution; checkout.session.completed and payment_intent.succeeded are one order."""
    answers = {path.stem: stack.send(sample(path.stem)) for path in sorted(SAMPLES.glob("*.json"))}

    assert {stem: a.status_code for stem, a in answers.items()} == dict.fromkeys(answers, 200)
    cid = {stem: a.json()["conversions"][0] for stem, a in answers.items()}
    assert cid["payment_intent_succeeded"] == cid["checkout_session_completed"]
    assert answers["customer_subscription_created_trial"].json()["skipped"] == {
        "quicklizard:event_not_mapped": 1
    }
    assert answers["invoice_paid_renewal"].json()["skipped"] == {"quicklizard:event_not_mapped": 1}
    expected = [(cid[stem], *facts) for stem, facts in EXPECTED.items()]

    poll(
        lambda: len(stack.accepted("scanova")) == len(expected) and stack.idle(),
        "the samples to be delivered",
    )

    scanova = {e["event_id"]: e for e in stack.accepted("scanova")}
    assert set(scanova) == {row[0] for row in expected}
    for conversion_id, _, name, _, _, value in expected:
        event = scanova[conversion_id]
        assert event["event_name"] == name
        assert event["site_id"] == "site_local"
        assert event["scan_session_id"] == testkit.SCAN_SESSION_ID
        if name != "signup":  # a subscription names its customer by id only
            assert event["user_identifiers"]["email_hash"] == EMAIL_HASH
        assert event.get("conversion_value") == (value and {"amount": value, "currency": "USD"})

    pagent = {e["properties"]["order_id"]: e for e in stack.accepted("pagent")}
    assert {order: (e["label"], e["session_data"]["session_id"]) for order, e in pagent.items()} == {
        order: (name, testkit.PAGENT_SESSION["session_id"]) for _, order, name, _, _, _ in expected
    }

    scalev = stack.accepted("scalev")
    by_provider = {p: [e for e in scalev if e["_provider"] == p] for p in ("meta", "tiktok", "snackvideo")}
    assert {e["event_id"]: e["event_name"] for e in by_provider["meta"]} == {
        f"{order}-{meta}-FORM": meta for _, order, _, meta, _, _ in expected
    }
    assert {e["event_id"]: e["event"] for e in by_provider["tiktok"]} == {
        f"{order}-{tiktok}-FORM": tiktok for _, order, _, _, tiktok, _ in expected
    }
    assert all(e["user_data"]["fbc"] == testkit.ATTRIBUTION_METADATA["fbc"] for e in by_provider["meta"])
    assert all(e["user"]["ttclid"] == testkit.ATTRIBUTION_METADATA["ttclid"] for e in by_provider["tiktok"])
    assert Counter(
        (e["event_name"], (e.get("properties") or {}).get("value")) for e in by_provider["snackvideo"]
    ) == (Counter((name, value) for _, _, name, _, _, value in expected))

    # QuickLizard counts products: the two checkouts' line items (the Stripe API stub's) and the
    # first invoice's plan line, not renewals or signups.
    quicklizard = stack.accepted("quicklizard")
    assert sorted((e["product_id"], e["price"], e["vid"]) for e in quicklizard) == [
        ("prod_NjpI7DbZx6AlWQ", 20.0, "DASDAS-CCCC-NA"),
        ("prod_mug", 9.99, "DASDAS-CCCC-NA"),
        ("prod_poster", 49.99, "DASDAS-CCCC-NA"),
        ("prod_tshirt", 20.0, "DASDAS-CCCC-NA"),
    ]
    # …and `make status` counts the renewal and the signup it skipped (the stack's counts are
    # cumulative over the e2e session, so at least these).
    status = stack.status()
    assert destination_row(status, "quicklizard")["skipped"].get("event_not_mapped", 0) >= 2
    assert destination_row(status, "quicklizard")["skipped"].get("event_not_mapped", 0) >= 2


def test_a_duplicate_webhook_is_delivered_once(stack, poll):
    """Given a checkout webhook, When Stripe sends it twice, Then the second answer repeats the first,
    marked `"duplicate": true`, and each vendor gets the conversion once."""
    checkout, _ = unique_checkout()

    first, second = stack.send(http_event(checkout)), stack.send(http_event(checkout))
    conversion_id = first.json()["conversions"][0]
    poll(
        lambda: deliveries_of(stack, checkout, conversion_id) == EACH_ONCE and stack.idle(), "the deliveries"
    )

    assert first.status_code == second.status_code == 200
    assert second.json() == {**first.json(), "duplicate": True}
    assert first.json()["jobs"] == len(DESTINATIONS)
    assert deliveries_of(stack, checkout, conversion_id) == EACH_ONCE


def test_a_checkout_and_its_payment_intent_are_one_conversion(stack, poll):
    """Given checkout.session.completed and payment_intent.succeeded for the same payment,
    When both arrive, Then they name one conversion and each vendor gets it once."""
    checkout, intent = unique_checkout()

    answers = [stack.send(http_event(checkout)), stack.send(http_event(intent))]
    conversion_id = answers[0].json()["conversions"][0]
    poll(
        lambda: deliveries_of(stack, checkout, conversion_id) == EACH_ONCE and stack.idle(), "the deliveries"
    )

    assert [a.status_code for a in answers] == [200, 200]
    assert answers[1].json()["conversions"] == [conversion_id]
    assert answers[0].json()["event_id"] != answers[1].json()["event_id"]
    assert deliveries_of(stack, checkout, conversion_id) == EACH_ONCE
    delivered = {
        i["destination"]
        for i in stack.ledger()
        if i["conversion_id"] == conversion_id and i.get("status") == "delivered"
    }
    assert delivered == {name for name, count in EACH_ONCE.items() if count}


def test_a_forged_signature_is_refused_and_nothing_moves(stack, poll):
    """Given a webhook signed with the wrong secret,
    When it is posted, Then the answer is 401, no job is queued, no vendor is called, and the event id
    stays unclaimed (the genuine webhook is then processed as new)."""
    checkout, _ = unique_checkout()
    body = json.dumps(checkout).encode()
    ledger_before, calls_before = (
        len(stack.ledger()),
        sum(len(stack.vendor_requests(s)) for s in stack.sandboxes),
    )

    forged = stack.post(
        "/webhooks/stripe",
        body,
        {
            "Content-Type": "application/json",
            "Stripe-Signature": testkit.stripe_signature(body, "whsec_forged"),
        },
    )

    assert forged.status_code == 401
    assert forged.json()["error"] == "invalid_signature"
    assert stack.idle()
    assert len(stack.ledger()) == ledger_before
    assert sum(len(stack.vendor_requests(s)) for s in stack.sandboxes) == calls_before
    genuine = stack.send(http_event(checkout))
    assert genuine.status_code == 200 and genuine.json()["jobs"] == len(DESTINATIONS)
    poll(stack.idle, "the genuine webhook's deliveries")


def test_failing_vendors_park_their_jobs_in_the_dlq_with_the_reason(stack, poll):
    """Given Scanova answering 422 (a permanent rejection) and pagent answering 503 to every call,
    When a conversion is relayed,
    Then Scanova's job is dead-lettered at once as `rejected`, pagent's after its retries as
    `retries_exhausted`, and the other vendors get theirs."""
    before = {row["destination"]: row["dead_letters"] for row in stack.status()["destinations"]}
    stack.set_faults("scanova", error_status=422, fail_next=1000)
    stack.set_faults("pagent", error_status=503, fail_next=1000)
    checkout, _ = unique_checkout()

    answer = stack.send(http_event(checkout))

    def parked() -> dict | None:
        rows = {row["destination"]: row["dead_letters"] for row in stack.status()["destinations"]}
        grew = {
            name: {
                r: n - before[name].get(r, 0) for r, n in rows[name].items() if n != before[name].get(r, 0)
            }
            for name in rows
        }
        return grew if grew["scanova"] and grew["pagent"] else None

    grew = poll(parked, "the failing vendors' jobs in their dead-letter queues")
    assert answer.status_code == 200
    assert grew["scanova"] == {"rejected": 1}
    assert grew["pagent"] == {"retries_exhausted": 1}
    assert not any(grew[name] for name in ("scalev_meta", "scalev_tiktok", "scalev_snackvideo"))
    poll(stack.idle, "the queues to drain")
    conversion_id = answer.json()["conversions"][0]
    assert deliveries_of(stack, checkout, conversion_id) == {**EACH_ONCE, "scanova": 0, "pagent": 0}
    ledger = {i["destination"]: i for i in stack.ledger() if i["conversion_id"] == conversion_id}
    assert (ledger["scanova"]["status"], ledger["scanova"]["vendor_status"]) == ("rejected", 422)
