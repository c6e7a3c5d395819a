"""The providers' history readers (relay.backfill.<provider>) against their API sandboxes, over
loopback HTTP: paging, filters, the keys their webhooks are claimed under, rate limits, errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from relay.backfill.history import HistoryReader, Unreadable, Window
from relay.backfill.readers import READERS
from relay.config import Source
from relay.errors import ProviderApiError
from relay.ingest.mapping import ProviderEvent

import testkit
from sandboxes import FaultPlan
from sandboxes.hubspot_api import HubSpotApiSandbox
from sandboxes.paddle_api import PaddleApiSandbox
from sandboxes.pipedrive_api import PipedriveApiSandbox
from sandboxes.shopify_api import ShopifyApiSandbox
from sandboxes.stripe_api import StripeApiSandbox

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
LAST_DAY = Window(NOW - timedelta(days=1), NOW + timedelta(minutes=1))
STRIPE_TYPES = frozenset({"checkout.session.completed", "payment_intent.succeeded", "invoice.paid"})


class Sleeps:
    """Records the waits a reader asks for, and waits them (the sandboxes' limits are real time)."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        time.sleep(seconds)


def reader(provider: str, sandbox: Any, sleeps: Sleeps | None = None, **settings: Any) -> HistoryReader:
    source = Source(settings={"api_base": sandbox.url, **settings})
    key = testkit.LOCAL_READ_KEYS[provider]
    options: dict[str, Any] = {"min_interval": 0}
    if sleeps is not None:
        options["sleep"] = sleeps
    types = STRIPE_TYPES if provider == "stripe" else frozenset({"transaction.completed"})
    return READERS[provider].build(source, lambda: key, types, **options)


def events(pages: Iterator[Any]) -> list[ProviderEvent | Unreadable]:
    return [event for page in pages for event in page.events]


def checkout_event(minutes_ago: float, *, event_type: str = "checkout.session.completed") -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    created = int((NOW - timedelta(minutes=minutes_ago)).timestamp())
    session = testkit.checkout_session(session_id=f"cs_{tag}", payment_intent=f"pi_{tag}")
    return testkit.stripe_event(event_type, session, event_id=f"evt_{tag}", created=created)


# --- Stripe --------------------------------------------------------------------------------------


@pytest.fixture
def stripe() -> Iterator[StripeApiSandbox]:
    with StripeApiSandbox(seed=False).start() as sandbox:
        yield sandbox


def test_stripe_pages_through_a_window_100_at_a_time_newest_first(stripe: StripeApiSandbox) -> None:
    # Given 250 checkouts in the last day and one older
    held = [checkout_event(minutes_ago=i) for i in range(250)]
    for event in [*held, checkout_event(minutes_ago=3 * 24 * 60)]:
        stripe.seed_event(event)
    history = reader("stripe", stripe)
    # When the last day is read
    found = events(history.pages(LAST_DAY, failed_only=False))
    # Then every one of the day's, once, newest first, in 3 calls of up to 100
    assert [e.event_id for e in found] == [e["id"] for e in held]
    assert history.api.calls == 3
    calls = [r for r in stripe.requests() if r["path"] == "/v1/events"]
    assert len(calls) == 3


def test_stripe_lists_only_handled_types_and_undelivered_events_when_reconciling(
    stripe: StripeApiSandbox,
) -> None:
    delivered, failed = checkout_event(5), checkout_event(6)
    other = checkout_event(7, event_type="customer.created")
    stripe.seed_event(delivered)
    stripe.seed_event(other, delivered=False)
    stripe.observe_webhook({}, json_bytes(failed), 503)  # the relay was down
    history = reader("stripe", stripe)
    assert [e.event_id for e in events(history.pages(LAST_DAY, failed_only=False))] == [
        delivered["id"],
        failed["id"],
    ]
    assert [e.event_id for e in events(history.pages(LAST_DAY, failed_only=True))] == [failed["id"]]
    assert history.api.calls == 2  # nothing missing costs one call a run


def test_stripe_resumes_at_a_cursor_and_fetches_one_event(stripe: StripeApiSandbox) -> None:
    held = [checkout_event(minutes_ago=i) for i in range(150)]
    for event in held:
        stripe.seed_event(event)
    history = reader("stripe", stripe)
    first = next(iter(history.pages(LAST_DAY, failed_only=False)))
    rest = events(history.pages(LAST_DAY, failed_only=False, cursor=first.next_cursor))
    assert [e.event_id for e in rest] == [e["id"] for e in held[100:]]
    (one,) = [history.event(held[3]["id"])]
    assert isinstance(one, ProviderEvent) and one.event_id == held[3]["id"]
    assert one.payload == held[3]  # the webhook's own body: the rules read the same shape
    assert history.event("evt_unknown") is None
    assert history.event("body:ab12") is None  # a parked body without an id asks nothing


def test_stripe_waits_out_its_rate_limit_and_retries_5xx(stripe: StripeApiSandbox) -> None:
    stripe.seed_event(checkout_event(1))
    sleeps = Sleeps()
    with StripeApiSandbox(seed=False, limit=(1, 1.0)).start() as limited:
        limited.seed_event(checkout_event(1))
        history = reader("stripe", limited, sleeps)
        assert len(events(history.pages(LAST_DAY, failed_only=False))) == 1
        assert len(events(history.pages(LAST_DAY, failed_only=False))) == 1  # the second call hits 429
        assert sleeps.asked and sleeps.asked[0] >= 1  # Retry-After, in whole seconds
    stripe.set_faults(FaultPlan(fail_next=2))
    sleeps.asked.clear()
    history = reader("stripe", stripe, sleeps)
    assert len(events(history.pages(LAST_DAY, failed_only=False))) == 1
    assert history.api.calls == 3 and len(sleeps.asked) == 2


def test_a_refused_key_names_the_permission_it_needs(stripe: StripeApiSandbox) -> None:
    history = READERS["stripe"].build(
        Source(settings={"api_base": stripe.url}), lambda: "rk_wrong", STRIPE_TYPES, min_interval=0
    )
    with pytest.raises(ProviderApiError, match="Events: Read") as refused:
        events(history.pages(LAST_DAY, failed_only=False))
    assert refused.value.status == 401


# --- Paddle --------------------------------------------------------------------------------------


def paddle_body(minutes_ago: float, tag: str | None = None) -> dict[str, Any]:
    tag = tag or uuid.uuid4().hex[:12]
    at = (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return testkit.paddle_notification(
        "transaction.completed",
        testkit.paddle_transaction(transaction_id=f"txn_{tag}"),
        event_id=f"evt_{tag}",
        notification_id=f"ntf_{tag}",
        occurred_at=at,
    )


def test_paddle_reads_the_event_stream_back_to_the_window_and_failed_notifications() -> None:
    with PaddleApiSandbox(seed=False).start() as paddle:
        recent = [paddle_body(i) for i in range(250)]
        for body in [*recent, paddle_body(3 * 24 * 60)]:
            paddle.observe_webhook({}, json_bytes(body), 200)
        failing = paddle_body(2)
        for _ in range(3):  # Paddle gives up after its attempts
            paddle.observe_webhook({}, json_bytes(failing), 503)
        history = reader("paddle", paddle)
        found = events(history.pages(LAST_DAY, failed_only=False))
        # Newest first, and the stream stops at the first event older than the window: 2 calls
        assert {e.event_id for e in found} == {b["event_id"] for b in [*recent, failing]}
        assert history.api.calls == 2
        undelivered = events(history.pages(LAST_DAY, failed_only=True))
        assert [e.event_id for e in undelivered] == [failing["event_id"]]
        # One event by its id, around the time a parked record names
        one = history.event(recent[7]["event_id"], occurred_at=NOW - timedelta(minutes=7))
        assert isinstance(one, ProviderEvent) and one.event_id == recent[7]["event_id"]
        assert history.event("evt_gone", occurred_at=NOW) is None


# --- Shopify -------------------------------------------------------------------------------------


def test_shopify_pages_paid_orders_by_link_header_and_keys_them_by_order() -> None:
    with ShopifyApiSandbox(seed=False).start() as shopify:
        paid = []
        for n in range(300):
            at = (NOW - timedelta(minutes=n)).isoformat()
            order = testkit.shopify_order(order_id=10_000 + n)
            order.update(created_at=at, processed_at=at, updated_at=at)
            shopify.seed_order(order)
            paid.append(order["id"])
        unpaid = testkit.shopify_order(order_id=99)
        unpaid.update(financial_status="pending", processed_at=NOW.isoformat(), created_at=NOW.isoformat())
        shopify.seed_order(unpaid)
        history = READERS["shopify"].build(
            Source(
                settings={
                    "api_base": f"{shopify.url}/admin/api/2025-07",
                    "shop_domain": "relay-local.myshopify.com",
                }
            ),
            lambda: testkit.LOCAL_READ_KEYS["shopify"],
            frozenset({"orders/paid"}),
            min_interval=0,
        )
        found = events(history.pages(LAST_DAY, failed_only=False))
        assert [e.event_id for e in found] == [f"orders/paid:{order_id}" for order_id in paid]
        assert history.api.calls == 2  # 250 a page; the second call carries page_info alone
        assert {e.event_type for e in found} == {"orders/paid"}
        one = history.event(f"orders/paid:{paid[5]}")
        assert isinstance(one, ProviderEvent) and one.object_id == str(paid[5])
        assert history.event("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043") is None  # a webhook id


# --- HubSpot -------------------------------------------------------------------------------------


def test_hubspot_searches_the_windows_won_deals_and_builds_their_stage_change() -> None:
    with HubSpotApiSandbox().start() as hubspot:
        for n in range(120):
            closed = (NOW - timedelta(minutes=n)).isoformat()
            props = {"dealstage": "closedwon", "pipeline": "default", "closedate": closed, "amount": "10"}
            hubspot.seed_deal(str(70_000 + n), props, ["201"])
        hubspot.seed_deal("69999", {"dealstage": "appointmentscheduled", "closedate": NOW.isoformat()})
        history = reader("hubspot", hubspot)
        found = events(history.pages(LAST_DAY, failed_only=False))
        assert len(found) == 120 and all(isinstance(e, ProviderEvent) for e in found)
        assert found[0].event_id == "deal:70119:dealstage:closedwon"  # oldest first
        assert found[0].payload["portalId"] == testkit.HUBSPOT_PORTAL_ID
        # two search pages of 100, and the portal asked once
        paths = [r["path"] for r in hubspot.requests()]
        assert paths.count("/crm/v3/objects/deals/search") == 2
        assert paths.count("/account-info/v3/details") == 1
        one = history.event("deal:70003:dealstage:closedwon")
        assert isinstance(one, ProviderEvent) and one.object_id == "70003"
        assert history.event("deal:70003:dealstage:closedlost") is None  # not in that stage now


# --- Pipedrive -----------------------------------------------------------------------------------


def test_pipedrive_follows_the_cursor_keeps_deals_won_in_the_window_and_honours_its_reset_header() -> None:
    sleeps = Sleeps()
    with PipedriveApiSandbox(seed=False, limit=(2, 1.0)).start() as pipedrive:
        for n in range(600):
            at = (NOW - timedelta(minutes=n)).isoformat()
            pipedrive.seed_deal(
                {**testkit.pipedrive_deal(deal_id=50_000 + n), "won_time": at, "update_time": at}
            )
        long_won = testkit.pipedrive_deal(deal_id=49_999)
        long_won.update(won_time=(NOW - timedelta(days=40)).isoformat(), update_time=NOW.isoformat())
        pipedrive.seed_deal(long_won)
        history = reader("pipedrive", pipedrive, sleeps)
        found = events(history.pages(LAST_DAY, failed_only=False))
        assert len(found) == 600 and "deal:49999:won" not in {e.event_id for e in found}
        assert history.api.calls >= 2  # 500 a page
        one = history.event("deal:50001:won")
        assert isinstance(one, ProviderEvent) and one.event_type == "change.deal"
        assert any(wait >= 1 for wait in sleeps.asked)  # x-ratelimit-reset, without Retry-After


def json_bytes(document: Any) -> bytes:
    import json

    return json.dumps(document).encode()
