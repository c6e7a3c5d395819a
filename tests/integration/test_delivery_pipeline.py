"""The deliver functions against moto (queues, DLQs, ledger table from template.yaml) and the
vendor sandboxes over real loopback HTTP.

Each test queues delivery jobs with relay.ingest.queueing (as ingest does), then plays Lambda's SQS
event source: receive up to 100 messages, invoke the deliverer with Lambda's event
(local.pollers.lambda_record), delete what the answer does not list. What the sandboxes
recorded is the proof: every conversion reaches its vendor exactly once.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from aws_lambda_powertools import Metrics
from relay.config import RelayConfig, parse_config
from relay.deliver.deliverer import Deliverer
from relay.dlq import ledger_key
from relay.ingest.queueing import JobQueues
from relay.ledger import Ledger
from relay.models import (
    Attribution,
    Consent,
    Conversion,
    DeliveryJob,
    Identity,
    Item,
    Money,
    PagentSession,
    SourceRef,
)
from relay.settings import DeliverSettings
from relay.vendors.registry import VENDORS

from local.lambda_context import LambdaContext
from local.pollers import failed_items, lambda_record
from local.world import REPO_ROOT, World
from sandboxes import (
    FaultPlan,
    PagentSandbox,
    QuickLizardSandbox,
    Sandbox,
    ScalevSandbox,
    ScanovaSandbox,
)
from sandboxes.stripe_api import StripeApiSandbox, line_item

pytestmark = pytest.mark.integration

LOCAL_CONFIG = REPO_ROOT / "config" / "relay.local.yaml"
STRIPE_KEY_SECRET = "conversion-relay/quicklizard/stripe-api-key"
HASH = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"  # sha256 of an email
REGION = "us-east-1"


# --------------------------------------------------------------------------- conversions


def conversion(**changes: Any) -> Conversion:
    """A purchase with everything every vendor can use; `changes` replace top-level fields."""
    cid = uuid.uuid4()
    fields: dict[str, Any] = {
        "conversion_id": cid,
        "name": "purchase",
        "occurred_at": datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        "order_id": f"pi_{cid.hex[:12]}",
        "value": Money(amount_minor=4999, currency="USD"),
        "items": (
            Item(
                product_id="prod_tee",
                quantity=2,
                unit_amount_minor=2000,
                variant_id="variant_tee",
                name="Tee",
            ),
            Item(product_id="prod_mug", quantity=1, unit_amount_minor=999, bundle_price_option_id="bpo_mug"),
        ),
        "identity": Identity(email=HASH, phone=HASH, first_name=HASH, external_id=HASH, country=HASH),
        "attribution": Attribution(
            scan_session_id=str(uuid.uuid4()),
            pagent=PagentSession(session_id=f"sess_{cid.hex[:6]}", user_id="user_1", visit_id="v_1"),
            fbc="fb.1.1710000000000.IwAR2xyz",
            fbp="fb.1.1710000000000.1234567890",
            ttclid="E.C.P.ttclid",
            ttp="ttp_cookie",
            snackvideo_click_id="kwai_click",
            quicklizard_vid="DASDAS-CCCC-NA",
            event_source_url="https://shop.example.com/checkout",
            referrer_url="https://facebook.com/",
        ),
        "consent": Consent.GRANTED,
        "properties": {"plan": "pro"},
        "source": SourceRef(
            provider="stripe",
            event_id=f"evt_{cid.hex[:10]}",
            event_type="checkout.session.completed",
            object_type="checkout.session",
            object_id=f"cs_test_{cid.hex[:10]}",
        ),
    }
    fields.update(changes)
    return Conversion(**fields)


def job(destination: str, **changes: Any) -> DeliveryJob:
    return DeliveryJob(destination=destination, conversion=conversion(**changes))


def cid(delivery_job: DeliveryJob) -> str:
    return str(delivery_job.conversion.conversion_id)


# --------------------------------------------------------------------------- the world


class Clock:
    """The ledger's clock, so a test can let a claim's lease run out."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Relay:
    """The moto world, the sandboxes and a deliverer per vendor kind, played like Lambda would."""

    def __init__(self, world: World, sandboxes: dict[str, Sandbox], tmp_path: Path):
        session = boto3.Session(region_name=REGION)
        self.world = world
        self.sandboxes = sandboxes
        self.sqs = session.client("sqs")
        self.dynamodb = session.client("dynamodb")
        self.secretsmanager = session.client("secretsmanager")
        self.clock = Clock()
        self.ledger = Ledger(self.dynamodb, world.table_name, clock=self.clock)
        self._config_path = tmp_path / "relay.yaml"
        self._raw = yaml.safe_load(LOCAL_CONFIG.read_text())
        for destination in self._raw["destinations"].values():
            destination["base_url"] = sandboxes[destination["kind"]].url
            if destination.get("stripe_api_key_secret"):
                destination["stripe_api_base"] = sandboxes["stripe"].url
        self.env_overrides: dict[str, str] = {"RETRY_DELAY_SCALE": "0"}
        self._deliverers: dict[str, Deliverer] = {}
        self.last_batch: list[dict[str, Any]] = []
        self.config = self._write_config()

    # ---- configuration

    def configure(self, destination: str, **changes: Any) -> None:
        self._raw["destinations"][destination].update(changes)
        self.config = self._write_config()
        self._deliverers.clear()

    def _write_config(self) -> RelayConfig:
        self._config_path.write_text(yaml.safe_dump(self._raw))
        return parse_config(copy.deepcopy(self._raw))

    def environment(self, kind: str) -> dict[str, str]:
        function = self.world.functions[f"{VENDORS[kind].title}DeliverFunction"]
        return {**function.environment, "RELAY_CONFIG": str(self._config_path), **self.env_overrides}

    def deliverer(self, kind: str) -> Deliverer:
        if kind not in self._deliverers:
            self._deliverers[kind] = Deliverer(
                kind=kind,
                config=self.config,
                settings=DeliverSettings.from_env(self.environment(kind)),
                ledger=self.ledger,
                sqs=self.sqs,
                metrics=Metrics(namespace="ConversionRelay", service="conversion-relay"),
            )
        return self._deliverers[kind]

    # ---- queues

    def queue_url(self, kind: str) -> str:
        return self.world.queue_url(f"{VENDORS[kind].title}Queue")

    def dlq_url(self, kind: str) -> str:
        return self.world.queue_url(f"{VENDORS[kind].title}DeadLetterQueue")

    def enqueue(self, *jobs: DeliveryJob) -> None:
        urls = {kind: self.queue_url(kind) for kind in VENDORS}
        kinds = {name: d.kind for name, d in self.config.destinations.items()}
        JobQueues(self.sqs, urls, kinds).send(jobs)

    def receive(self, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < limit:
            page = self.sqs.receive_message(
                QueueUrl=self.queue_url(kind),
                MaxNumberOfMessages=min(10, limit - len(messages)),
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not page:
                break
            messages += page
        return messages

    def invoke(
        self,
        kind: str,
        messages: list[dict[str, Any]],
        deliverer: Deliverer | None = None,
        seconds: float = 60,
    ) -> dict:
        """One invocation, then what Lambda does with the answer: delete all but the failures."""
        arn = self.world.resources[f"{VENDORS[kind].title}Queue"]["Arn"]
        event = {"Records": [lambda_record(message, arn, REGION) for message in messages]}
        context = LambdaContext(
            function_name=f"{VENDORS[kind].title}DeliverFunction", timeout_seconds=seconds
        )
        answer = (deliverer or self.deliverer(kind)).handle(event, context)
        failed = failed_items(answer, {m["MessageId"] for m in messages})
        assert failed is not None, f"invalid batch answer {answer}"
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url(kind),
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        return answer

    def run(self, kind: str) -> dict | None:
        self.last_batch = self.receive(kind)
        return self.invoke(kind, self.last_batch) if self.last_batch else None

    def drain(self, kind: str, rounds: int = 8) -> int:
        """Invoke until the queue is empty; the number of invocations."""
        for count in range(rounds):
            if self.run(kind) is None:
                return count
        raise AssertionError(f"{kind} queue not drained in {rounds} invocations")

    def in_queue(self, kind: str) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url(kind), AttributeNames=["All"])
        values = attributes["Attributes"]
        return int(values["ApproximateNumberOfMessages"]) + int(
            values["ApproximateNumberOfMessagesNotVisible"]
        )

    def dead_letters(self, kind: str) -> list[tuple[DeliveryJob | str, dict[str, str]]]:
        """(job, or the raw body when it is no job; attributes as strings) of every DLQ message."""
        parked = []
        while True:
            page = self.sqs.receive_message(
                QueueUrl=self.dlq_url(kind), MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not page:
                return parked
            for message in page:
                attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
                try:
                    body: DeliveryJob | str = DeliveryJob.model_validate_json(message["Body"])
                except ValueError:
                    body = message["Body"]
                parked.append((body, attributes))
            self.sqs.delete_message_batch(
                QueueUrl=self.dlq_url(kind),
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(page)],
            )

    def make_visible(self, kind: str) -> None:
        """What the end of the last batch's visibility timeout does (after a crash, or a backoff)."""
        self.make_visible_messages(kind, self.last_batch)

    def make_visible_messages(self, kind: str, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url(kind), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )

    def set_secret(self, name: str, value: str) -> None:
        self.secretsmanager.put_secret_value(SecretId=name, SecretString=value)


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[dict[str, Sandbox]]:
    started: dict[str, Sandbox] = {
        # No rate limits here: the 429 tests inject them.
        "scanova": ScanovaSandbox(events_per_minute=None),
        "pagent": PagentSandbox(requests_per_minute=None),
        "scalev": ScalevSandbox(requests_per_minute=None),
        "quicklizard": QuickLizardSandbox(requests_per_minute=None),
        "stripe": StripeApiSandbox(sessions={}),
    }
    for sandbox in started.values():
        sandbox.start()
    yield started
    for sandbox in started.values():
        sandbox.stop()


@pytest.fixture
def relay(
    moto_world: World, world_secrets: dict[str, str], sandboxes: dict[str, Sandbox], tmp_path: Path
) -> Relay:
    for sandbox in sandboxes.values():
        sandbox.reset()
    stripe = sandboxes["stripe"]
    assert isinstance(stripe, StripeApiSandbox)
    stripe.api_keys = frozenset({world_secrets[STRIPE_KEY_SECRET]})
    return Relay(moto_world, sandboxes, tmp_path)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """The first truthy value of condition(), polled until timeout (then AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def accepted(relay: Relay, vendor: str, **match: Any) -> list[dict[str, Any]]:
    return [e for e in relay.sandboxes[vendor].accepted() if all(e.get(k) == v for k, v in match.items())]


def visibility_timeouts(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every VisibilityTimeout the deliver functions set from now on (their backoff)."""
    visibility: list[int] = []
    original = relay.sqs.change_message_visibility_batch

    def spy(**kwargs: Any) -> Any:
        visibility.extend(entry["VisibilityTimeout"] for entry in kwargs["Entries"])
        return original(**kwargs)

    monkeypatch.setattr(relay.sqs, "change_message_visibility_batch", spy)
    return visibility


# --------------------------------------------------------------------------- happy paths


def test_scanova_gets_every_documented_field_in_one_batch_request(relay: Relay) -> None:
    """Given three Scanova jobs, when the deliver function runs once, then one /server-events/batch
    request carries them, each event as documented, and the ledger says delivered."""
    jobs = [job("scanova") for _ in range(3)]
    relay.enqueue(*jobs)

    answer = relay.run("scanova")

    assert answer == {"batchItemFailures": []}
    requests = relay.sandboxes["scanova"].requests()
    assert [(r["path"], r["status"], r["n_events"]) for r in requests] == [("/server-events/batch", 200, 3)]
    first = jobs[0].conversion
    (event,) = accepted(relay, "scanova", event_id=cid(jobs[0]))
    assert {k: v for k, v in event.items() if not k.startswith("_")} == {
        "site_id": "site_local",
        "event_name": "purchase",
        "event_id": cid(jobs[0]),
        "scan_session_id": first.attribution.scan_session_id,
        "event_time": "2026-01-01T12:00:00+00:00",
        "conversion_value": {"amount": 49.99, "currency": "USD"},
        "user_identifiers": {"email_hash": HASH, "phone_hash": HASH, "external_id": HASH},
        "properties": {"plan": "pro", "order_id": first.order_id},
        "consent": "granted",
    }
    assert len(accepted(relay, "scanova")) == 3
    assert all(relay.ledger.status("scanova", cid(j)) == "delivered" for j in jobs)
    assert relay.in_queue("scanova") == 0 and relay.dead_letters("scanova") == []


def test_a_single_scanova_job_uses_the_single_event_endpoint(relay: Relay) -> None:
    """Given one job, when delivered, then it goes to POST /server-events and is accepted."""
    single = job("scanova")
    relay.enqueue(single)

    relay.run("scanova")

    assert [r["path"] for r in relay.sandboxes["scanova"].requests()] == ["/server-events"]
    assert [e["event_id"] for e in accepted(relay, "scanova")] == [cid(single)]


@pytest.mark.parametrize("api_version", ["v1", "v2"])
def test_pagent_gets_cents_milliseconds_and_the_configured_goal(relay: Relay, api_version: str) -> None:
    """Given pagent jobs and the destination's api_version, when delivered, then one request to
    that version's multi-event endpoint carries them with revenue in cents, time in ms, the
    label, and the goal UUID from the config (the session has none)."""
    relay.configure("pagent", api_version=api_version)
    jobs = [job("pagent") for _ in range(4)]
    relay.enqueue(*jobs)

    relay.run("pagent")

    path = "/v1/conversions" if api_version == "v1" else "/v2/conversions/bulk"
    assert [(r["path"], r["n_events"]) for r in relay.sandboxes["pagent"].requests()] == [(path, 4)]
    session = jobs[0].conversion.attribution.pagent
    identifiers = {
        "session_id": session.session_id,
        "user_id": session.user_id,
        "conversion_id": relay.config.destinations["pagent"].goals["purchase"],
    }
    expected = {
        "label": "purchase",
        "revenue": 4999,
        "time": 1767268800000,
        "properties": {"plan": "pro", "order_id": jobs[0].conversion.order_id},
    }
    if api_version == "v1":
        expected |= identifiers
        matching = accepted(relay, "pagent", session_id=session.session_id)
    else:
        expected |= {"session_data": {**identifiers, "visit_id": "v_1"}}
        matching = [
            e for e in accepted(relay, "pagent") if e["session_data"]["session_id"] == session.session_id
        ]
    assert [{k: v for k, v in e.items() if not k.startswith("_")} for e in matching] == [expected]
    assert len(accepted(relay, "pagent")) == 4


def test_scalev_meta_gets_hashed_user_data_contents_and_the_pixel_event_id(relay: Relay) -> None:
    """Given a Meta job (event id template "{order_id}-{event_name}-FORM"), when delivered, then
    Scalev answers 204 and holds one Purchase with the browser pixel's event id, hashed user
    data, commerce parameters in major units and the items' variant / bundle ids."""
    meta = job("scalev_meta")
    relay.enqueue(meta)

    relay.run("scalev")

    order = meta.conversion.order_id
    assert [r["status"] for r in relay.sandboxes["scalev"].requests()] == [204]
    (event,) = accepted(relay, "scalev", _provider="meta")
    assert event["event_id"] == f"{order}-Purchase-FORM" and event["event_name"] == "Purchase"
    assert event["user_data"] == {
        "em": HASH,
        "ph": HASH,
        "fn": HASH,
        "country": HASH,
        "external_id": HASH,
        "fbc": "fb.1.1710000000000.IwAR2xyz",
        "fbp": "fb.1.1710000000000.1234567890",
    }
    assert event["parameters"] == {
        "content_ids": ["variant_tee", "bpo_mug"],
        "contents": [
            {"id": "variant_tee", "quantity": 2, "item_price": 20},
            {"id": "bpo_mug", "quantity": 1, "item_price": 9.99},
        ],
        "content_type": "product",
        "num_items": 3,
        "value": 49.99,
        "currency": "USD",
    }
    assert event["variants"] == [{"variant_unique_id": "variant_tee", "quantity": 2}]
    assert event["bundle_price_options"] == [{"bundle_price_option_unique_id": "bpo_mug", "quantity": 1}]
    assert event["event_source_url"] == "https://shop.example.com/checkout"
    assert event["referrer_url"] == "https://facebook.com/"


def test_scalev_tiktok_and_snackvideo_get_their_own_shapes_one_request_each(relay: Relay) -> None:
    """Given a TikTok and a SnackVideo job of an IDR order, when delivered, then each is one
    request in its provider's shape, with whole IDR amounts as integers."""
    idr = Money(amount_minor=15_000_000, currency="IDR")  # IDR 150,000.00
    items = (Item(product_id="prod_tee", quantity=1, unit_amount_minor=15_000_000, variant_id="variant_tee"),)
    tiktok, snack = (
        job("scalev_tiktok", value=idr, items=items),
        job("scalev_snackvideo", value=idr, items=items),
    )
    relay.enqueue(tiktok, snack)

    relay.run("scalev")

    assert len(relay.sandboxes["scalev"].requests()) == 2
    (tiktok_event,) = accepted(relay, "scalev", _provider="tiktok")
    assert tiktok_event["event"] == "CompletePayment"
    assert tiktok_event["event_id"] == f"{tiktok.conversion.order_id}-CompletePayment-FORM"
    assert tiktok_event["user"] == {
        "email": HASH,
        "phone": HASH,
        "external_id": HASH,
        "ttclid": "E.C.P.ttclid",
        "ttp": "ttp_cookie",
    }
    assert tiktok_event["parameters"] == {
        "content_id": "variant_tee",
        "contents": [{"content_id": "variant_tee", "quantity": 1, "price": 150000}],
        "content_type": "product",
        "value": 150000,
        "currency": "IDR",
    }
    (snack_event,) = accepted(relay, "scalev", _provider="snackvideo")
    assert snack_event["click_id"] == "kwai_click" and snack_event["event_name"] == "purchase"
    assert snack_event["properties"] == {
        "content_type": "product",
        "quantity": 1,
        "price": 150000,
        "value": 150000,
        "currency": "IDR",
    }


def test_quicklizard_gets_one_conversion_event_per_product_line(relay: Relay) -> None:
    """Given two QuickLizard jobs with two product lines each, when delivered, then one POST
    /events carries four events with the client key, unit prices as floats and the vid."""
    jobs = [job("quicklizard"), job("quicklizard")]
    relay.enqueue(*jobs)

    relay.run("quicklizard")

    assert [(r["path"], r["n_events"]) for r in relay.sandboxes["quicklizard"].requests()] == [("/events", 4)]
    lines = [{k: v for k, v in e.items() if not k.startswith("_")} for e in accepted(relay, "quicklizard")]
    assert lines[:2] == [
        {
            "client_key": "ql_local_client",
            "price": 20.0,
            "product_id": "prod_tee",
            "event": "conversion",
            "vid": "DASDAS-CCCC-NA",
        },
        {
            "client_key": "ql_local_client",
            "price": 9.99,
            "product_id": "prod_mug",
            "event": "conversion",
            "vid": "DASDAS-CCCC-NA",
        },
    ]
    assert all(relay.ledger.status("quicklizard", cid(j)) == "delivered" for j in jobs)


def test_quicklizard_reads_checkout_line_items_from_the_stripe_api(relay: Relay) -> None:
    """Given a checkout-session conversion and a payment-intent one without items, when delivered,
    then their line items are read from the Stripe API (the intent through its session) and
    each becomes a QuickLizard event at its sale price."""
    stripe = relay.sandboxes["stripe"]
    assert isinstance(stripe, StripeApiSandbox)
    stripe.seed_session("cs_test_one", [line_item("prod_book", 1500, quantity=2, discount=300)])
    stripe.seed_session("cs_test_two", [line_item("prod_pen", 250)], payment_intent="pi_two")
    by_session = job(
        "quicklizard",
        items=(),
        source=SourceRef(
            provider="stripe",
            event_id="evt_1",
            event_type="checkout.session.completed",
            object_type="checkout.session",
            object_id="cs_test_one",
        ),
    )
    by_intent = job(
        "quicklizard",
        items=(),
        source=SourceRef(
            provider="stripe",
            event_id="evt_2",
            event_type="payment_intent.succeeded",
            object_type="payment_intent",
            object_id="pi_two",
        ),
    )
    relay.enqueue(by_session, by_intent)

    relay.run("quicklizard")

    assert [(e["product_id"], e["price"]) for e in accepted(relay, "quicklizard")] == [
        ("prod_book", 13.5),  # (2 x 15.00 - 3.00 discount) / 2
        ("prod_pen", 2.5),
    ]
    paths = [r["path"] for r in stripe.requests()]
    assert sorted(paths) == sorted(
        [
            "/v1/checkout/sessions/cs_test_one/line_items",
            "/v1/checkout/sessions",
            "/v1/checkout/sessions/cs_test_two/line_items",
        ]
    )


def test_a_conversion_without_line_items_is_skipped_and_counted(relay: Relay, capsys) -> None:
    """Given a QuickLizard job whose Stripe session has no line items, when delivered, then
    nothing is sent, the record is done, and Skipped{reason=no_line_items} is emitted."""
    empty = job("quicklizard", items=())
    relay.enqueue(empty)

    answer = relay.run("quicklizard")

    assert answer == {"batchItemFailures": []}
    assert relay.sandboxes["quicklizard"].requests() == []
    assert relay.in_queue("quicklizard") == 0 and relay.dead_letters("quicklizard") == []
    assert relay.ledger.status("quicklizard", cid(empty)) is None
    out = capsys.readouterr().out
    assert '"Skipped":[1.0]' in out and '"reason":"no_line_items"' in out


# --------------------------------------------------------------------------- documented errors


@pytest.mark.parametrize(
    ("destination", "kind", "secret", "status"),
    [
        ("scanova", "scanova", "conversion-relay/scanova/api-key", 403),
        ("pagent", "pagent", "conversion-relay/pagent/api-key", 401),
        ("scalev_meta", "scalev", "conversion-relay/scalev/storefront-key", 401),
    ],
)
def test_a_refused_key_parks_the_job_at_once_with_the_vendor_reason(
    relay: Relay, destination: str, kind: str, secret: str, status: int
) -> None:
    """Given a revoked vendor key, when a job is delivered, then the vendor's 401/403 parks it in
    the DLQ on the first attempt, with the contract's attributes, and the ledger says rejected."""
    relay.set_secret(secret, "revoked-key")
    refused = job(destination)
    relay.enqueue(refused)

    answer = relay.run(kind)

    assert answer == {"batchItemFailures": []}  # removed from the queue: it is in the DLQ
    ((parked, attributes),) = relay.dead_letters(kind)
    assert parked == refused
    assert attributes["failure_reason"] == "rejected"
    assert attributes["failure_status"] == str(status)
    assert attributes["failure_message"]  # the vendor's words, e.g. "Invalid or revoked API key"
    assert attributes["attempts"] == "1" and attributes["vendor"] == kind
    assert datetime.fromisoformat(attributes["first_failure_at"]).tzinfo is not None
    assert {k: attributes[k] for k in ("destination", "conversion_id", "conversion_name")} == {
        "destination": destination,
        "conversion_id": cid(refused),
        "conversion_name": "purchase",
    }
    assert relay.ledger.status(destination, cid(refused)) == "rejected"
    assert relay.sandboxes[kind].accepted() == []


def test_an_unknown_scalev_store_is_a_permanent_404(relay: Relay) -> None:
    """Given a store id Scalev does not know, when delivered, then 404 parks the job as rejected."""
    relay.configure("scalev_tiktok", store_id="store_gone")
    relay.enqueue(job("scalev_tiktok"))

    relay.run("scalev")

    ((_, attributes),) = relay.dead_letters("scalev")
    assert (attributes["failure_reason"], attributes["failure_status"]) == ("rejected", "404")


def test_scanova_rejecting_one_event_of_a_batch_parks_only_that_one(relay: Relay) -> None:
    """Given a batch where one event has a scan session Scanova refuses (not a UUID), when
    delivered, then the others are delivered and only that one is parked with its 422 detail."""
    good = [job("scanova") for _ in range(3)]
    bad = job("scanova", attribution=Attribution(scan_session_id="not-a-uuid"))
    relay.enqueue(good[0], bad, *good[1:])

    relay.run("scanova")

    assert sorted(e["event_id"] for e in accepted(relay, "scanova")) == sorted(cid(j) for j in good)
    ((parked, attributes),) = relay.dead_letters("scanova")
    assert parked == bad
    assert attributes["failure_status"] == "422" and "scan_session_id" in attributes["failure_message"]
    assert relay.ledger.status("scanova", cid(bad)) == "rejected"
    assert len(relay.sandboxes["scanova"].requests()) == 1


class WholeBatchScanova(ScanovaSandbox):
    """An emulator that answers 422 for the whole batch when any event is invalid."""

    def _post_batch(self, request):  # type: ignore[override]
        from sandboxes.api import ApiError
        from sandboxes.scanova import EVENT

        body = request.json()
        problems = [p for i, e in enumerate(body.get("events", [])) for p in EVENT.validate(e, ("events", i))]
        if problems:
            raise ApiError.invalid(422, problems)
        return super()._post_batch(request)


def test_a_whole_batch_422_is_split_to_isolate_the_bad_event(relay: Relay) -> None:
    """Given a Scanova that refuses a whole batch for one bad event, when 8 jobs are delivered,
    then the batch is split in halves until the bad one is alone: 7 delivered once, 1 parked."""
    with WholeBatchScanova(events_per_minute=None) as strict:
        relay.configure("scanova", base_url=strict.url)
        good = [job("scanova") for _ in range(7)]
        bad = job("scanova", attribution=Attribution(scan_session_id="not-a-uuid"))
        relay.enqueue(*good[:5], bad, *good[5:])

        relay.run("scanova")

        assert sorted(e["event_id"] for e in strict.accepted()) == sorted(cid(j) for j in good)
        assert strict.duplicates() == []
        statuses = [r["status"] for r in strict.requests()]
    ((parked, attributes),) = relay.dead_letters("scanova")
    assert parked == bad and attributes["failure_status"] == "422"
    assert statuses.count(422) == 4  # 8 → 4 → 2 → 1: one refusal per level
    assert len(statuses) <= 1 + 2 * 3


def test_pagent_400_on_a_bulk_request_is_split_to_isolate_the_bad_event(relay: Relay) -> None:
    """Given a pagent bulk request refused whole (400) for one blank session id, when delivered,
    then halves are resent until it is isolated: the good events are counted exactly once."""
    good = [job("pagent") for _ in range(5)]
    bad = job("pagent", attribution=Attribution(pagent=PagentSession(session_id=" ", user_id="u")))
    relay.enqueue(*good[:2], bad, *good[2:])

    relay.run("pagent")

    sessions = [e["session_data"]["session_id"] for e in accepted(relay, "pagent")]
    assert sorted(sessions) == sorted(j.conversion.attribution.pagent.session_id for j in good)
    ((parked, attributes),) = relay.dead_letters("pagent")
    assert parked == bad and attributes["failure_status"] == "400"
    assert "session_id" in attributes["failure_message"]


def test_a_failed_quicklizard_line_rejects_only_its_job(relay: Relay) -> None:
    """Given two jobs in one request, one with a line QuickLizard fails (a negative price), when
    delivered, then that job is parked with QuickLizard's error and the other is delivered."""
    good = job("quicklizard")
    bad = job("quicklizard", items=(Item(product_id="prod_refund", unit_amount_minor=-500),))
    relay.enqueue(bad, good)

    relay.run("quicklizard")

    assert [e["product_id"] for e in accepted(relay, "quicklizard")] == ["prod_tee", "prod_mug"]
    ((parked, attributes),) = relay.dead_letters("quicklizard")
    assert parked == bad and attributes["failure_reason"] == "rejected"
    assert "price" in attributes["failure_message"]
    assert relay.ledger.status("quicklizard", cid(good)) == "delivered"


def test_429_waits_for_retry_after_then_delivers_once(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given pagent answering 429 with Retry-After: 7, when delivered, then every record is a batch
    item failure made invisible for Retry-After (not the backoff), the claims are released; on
    the next receive the events are delivered once."""
    relay.env_overrides["RETRY_DELAY_SCALE"] = "1"
    visibility = visibility_timeouts(relay, monkeypatch)
    jobs = [job("pagent") for _ in range(3)]
    relay.enqueue(*jobs)
    relay.sandboxes["pagent"].set_faults(FaultPlan(rate_429=1.0, retry_after=7))

    answer = relay.run("pagent")

    assert len(answer["batchItemFailures"]) == 3
    assert len(visibility) == 3 and all(7 <= seconds <= 8 for seconds in visibility)
    assert relay.receive("pagent") == []  # invisible until Retry-After has passed
    assert all(relay.ledger.status("pagent", cid(j)) is None for j in jobs)  # released, not in doubt
    relay.sandboxes["pagent"].set_faults(FaultPlan())
    relay.make_visible("pagent")

    relay.run("pagent")

    assert len(accepted(relay, "pagent")) == 3
    assert all(relay.ledger.status("pagent", cid(j)) == "delivered" for j in jobs)


def test_5xx_retries_with_backoff_and_parks_on_the_last_receive(relay: Relay) -> None:
    """Given QuickLizard answering 503 every time, when the record is received MAX_RECEIVE_COUNT
    (5) times, then the first four are retried and the fifth parks it as retries_exhausted with
    the last status; nothing reached the vendor and the ledger holds no claim."""
    failing = job("quicklizard")
    relay.enqueue(failing)
    relay.sandboxes["quicklizard"].set_faults(FaultPlan(error_rate=1.0, error_status=503))

    answers = [relay.run("quicklizard") for _ in range(5)]

    assert [len(a["batchItemFailures"]) if a else None for a in answers] == [1, 1, 1, 1, 0]
    ((parked, attributes),) = relay.dead_letters("quicklizard")
    assert parked == failing
    assert attributes["failure_reason"] == "retries_exhausted"
    assert (attributes["failure_status"], attributes["attempts"]) == ("503", "5")
    assert relay.ledger.status("quicklizard", cid(failing)) is None
    assert relay.sandboxes["quicklizard"].accepted() == []


@pytest.mark.parametrize(
    ("destination", "kind", "parked"), [("pagent", "pagent", True), ("scanova", "scanova", False)]
)
def test_a_timeout_is_in_doubt_where_the_vendor_does_not_dedupe(
    relay: Relay, destination: str, kind: str, parked: bool
) -> None:
    """Given a vendor that takes the request but never answers (read timeout), when delivered,
    then pagent (no dedupe) parks it as in_doubt instead of risking a second count, while
    Scanova (dedupes on the event id) retries it and delivers it once."""
    relay.configure(destination, timeout_seconds=0.3)
    slow = job(destination)
    relay.enqueue(slow)
    relay.sandboxes[kind].set_faults(FaultPlan(timeout_rate=1.0, hang_seconds=1))

    relay.run(kind)
    relay.sandboxes[kind].set_faults(FaultPlan())
    relay.drain(kind)

    dead = relay.dead_letters(kind)
    # The hung request ends (logged with no status) before the next test resets the sandbox.
    hung = wait_for(lambda: [r for r in relay.sandboxes[kind].requests() if r["status"] is None])
    assert len(hung) == 1
    if parked:
        assert [(j, a["failure_reason"]) for j, a in dead] == [(slow, "in_doubt")]
        assert relay.ledger.status(destination, cid(slow)) == "in_doubt"
    else:
        assert dead == []
        assert [e["event_id"] for e in accepted(relay, kind)] == [cid(slow)]
        assert relay.ledger.status(destination, cid(slow)) == "delivered"


def test_one_hung_request_puts_at_most_max_in_doubt_conversions_in_doubt(relay: Relay) -> None:
    """Given 60 pagent jobs and pagent hanging on every request (it does not dedupe), when
    delivered, then they went out as requests of at most 25 (max_in_doubt), side by side, and each
    parked job names the request it shared: an operator decides per request, not per batch."""
    relay.configure("pagent", timeout_seconds=0.3)
    sent = [job("pagent") for _ in range(60)]
    relay.enqueue(*sent)
    relay.sandboxes["pagent"].set_faults(FaultPlan(timeout_rate=1.0, hang_seconds=1))

    relay.run("pagent")

    dead = relay.dead_letters("pagent")
    assert len(dead) == 60
    assert {a["failure_reason"] for _, a in dead} == {"in_doubt"}
    by_request = Counter(a["request_id"] for _, a in dead)
    assert sorted(by_request.values()) == [10, 25, 25]
    assert all(relay.ledger.status("pagent", cid(j)) == "in_doubt" for j in sent)
    # Each hung request is logged when the sandbox lets it go (1 s): wait for all three.
    hung = wait_for(
        lambda: len(h := [r for r in relay.sandboxes["pagent"].requests() if r["status"] is None]) >= 3 and h
    )
    assert sorted(r["n_events"] for r in hung) == [10, 25, 25]


def test_a_429_makes_the_whole_destination_back_off(relay: Relay, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given Scalev answering 429 (Retry-After 7, too long to wait out in the invocation) and one
    request at a time, when 5 Meta jobs are delivered, then only the first request is sent, and
    the jobs come back in waves of what one slot sends (one job): 7, 14, 21, 28 and 35 s (+ up
    to 10 % spread)."""
    relay.env_overrides["RETRY_DELAY_SCALE"] = "1"
    relay.configure("scalev_meta", concurrency=1)
    visibility = visibility_timeouts(relay, monkeypatch)
    relay.enqueue(*[job("scalev_meta") for _ in range(5)])
    relay.sandboxes["scalev"].set_faults(FaultPlan(rate_429=1.0, retry_after=7))

    answer = relay.run("scalev")

    assert len(answer["batchItemFailures"]) == 5
    assert len(relay.sandboxes["scalev"].requests()) == 1
    waves = zip((7, 14, 21, 28, 35), sorted(visibility), strict=True)
    assert all(low <= seconds <= low * 1.1 + 1 for low, seconds in waves)


def test_a_vendor_that_dedupes_costs_one_ledger_write_per_job(relay: Relay, monkeypatch) -> None:
    """Given Scanova (dedupes on the event id), when 3 jobs are delivered, then the ledger is read
    once and written once for all of them (no claim), and says delivered after one attempt."""
    calls: list[str] = []
    for name in ("update_item", "put_item", "batch_write_item", "batch_get_item"):
        original = getattr(relay.dynamodb, name)
        monkeypatch.setattr(
            relay.dynamodb, name, lambda _o=original, _n=name, **kw: (calls.append(_n), _o(**kw))[1]
        )
    jobs = [job("scanova") for _ in range(3)]
    relay.enqueue(*jobs)

    relay.run("scanova")

    assert calls == ["batch_get_item", "batch_write_item"]
    assert all(relay.ledger.status("scanova", cid(j)) == "delivered" for j in jobs)
    items = [
        relay.dynamodb.get_item(
            TableName=relay.world.table_name, Key={"id": {"S": ledger_key("scanova", cid(j))}}
        )
        for j in jobs
    ]
    assert [item["Item"]["attempts"]["N"] for item in items] == ["1", "1", "1"]  # SQS's receive count


# --------------------------------------------------------------------------- exactly once


class Crash(BaseException):
    """The process dying: nothing after it runs (BaseException, so no handler catches it)."""


def die(*_: Any, **__: Any) -> None:
    raise Crash


@pytest.mark.parametrize(
    ("destination", "kind", "resent"),
    [
        ("scanova", "scanova", True),  # Scanova dedupes on the event id
        ("scalev_tiktok", "scalev", True),  # TikTok dedupes on the event id (through Scalev)
        ("pagent", "pagent", False),
        ("quicklizard", "quicklizard", False),
        ("scalev_snackvideo", "scalev", False),  # SnackVideo has no event id
    ],
)
def test_a_crash_between_the_vendor_answer_and_the_ledger_write(
    relay: Relay, monkeypatch: pytest.MonkeyPatch, destination: str, kind: str, resent: bool
) -> None:
    """Given an invocation that dies after the vendor accepted the job and before the ledger
    records it, when SQS delivers the record again after its claim expired, then a vendor that
    dedupes gets it again (and counts it once), and one that does not is never called again:
    the job is parked as in_doubt. (A vendor that dedupes is not claimed, only recorded after.)"""
    crashed = job(destination, items=(Item(product_id="prod_tee", unit_amount_minor=4999),))  # one event
    relay.enqueue(crashed)
    with monkeypatch.context() as patch:
        patch.setattr(relay.ledger, "record", die)
        with pytest.raises(Crash):
            relay.run(kind)
    assert relay.ledger.status(destination, cid(crashed)) == (None if resent else "in_progress")
    sent_before = len(relay.sandboxes[kind].requests())
    relay.clock.advance(120)  # past the claim's lease (the invocation's time + 30 s)
    relay.make_visible(kind)

    relay.run(kind)

    calls = len(relay.sandboxes[kind].requests()) - sent_before
    assert len(relay.sandboxes[kind].accepted()) == 1  # counted once, either way
    if resent:
        assert calls == 1 and len(relay.sandboxes[kind].duplicates()) == 1
        assert relay.ledger.status(destination, cid(crashed)) == "delivered"
        assert relay.dead_letters(kind) == []
    else:
        assert calls == 0
        ((parked, attributes),) = relay.dead_letters(kind)
        assert parked == crashed and attributes["failure_reason"] == "in_doubt"
        assert relay.ledger.status(destination, cid(crashed)) == "in_doubt"
    assert relay.in_queue(kind) == 0


def test_the_in_doubt_policy_is_configurable_per_destination(relay: Relay, monkeypatch) -> None:
    """Given pagent configured with in_doubt: resend, when a crashed attempt is found, then the
    job is sent again instead of parked (the operator accepts a possible double count)."""
    relay.configure("pagent", in_doubt="resend")
    crashed = job("pagent")
    relay.enqueue(crashed)
    with monkeypatch.context() as patch:
        patch.setattr(relay.ledger, "record", die)
        with pytest.raises(Crash):
            relay.run("pagent")
    relay.clock.advance(120)
    relay.make_visible("pagent")

    relay.run("pagent")

    assert len(accepted(relay, "pagent")) == 2 and relay.dead_letters("pagent") == []
    assert relay.ledger.status("pagent", cid(crashed)) == "delivered"


def test_redelivery_and_replay_of_a_delivered_job_never_reach_the_vendor_again(relay: Relay) -> None:
    """Given a delivered QuickLizard job, when the same job arrives again (an SQS redelivery, a
    second webhook for the same order, a DLQ replay), then it is dropped as already delivered."""
    once = job("quicklizard")
    relay.enqueue(once)
    relay.run("quicklizard")
    requests_after_first = len(relay.sandboxes["quicklizard"].requests())

    relay.enqueue(once, once)
    answer = relay.run("quicklizard")

    assert answer == {"batchItemFailures": []} and relay.in_queue("quicklizard") == 0
    assert len(relay.sandboxes["quicklizard"].requests()) == requests_after_first
    assert len(accepted(relay, "quicklizard")) == 2  # the job's two product lines, once


def test_an_in_doubt_job_replayed_without_forgetting_is_parked_again(relay: Relay) -> None:
    """Given a pagent job the ledger holds in_doubt, when it is replayed as is, then it goes back
    to the DLQ untouched; once an operator forgets it (`relay replay --force`), it is sent."""
    doubtful = job("pagent")
    relay.enqueue(doubtful)
    claim = relay.ledger.claim("pagent", cid(doubtful), lease_seconds=60)
    relay.ledger.mark_in_doubt(claim, reason="test")

    relay.run("pagent")

    ((_, attributes),) = relay.dead_letters("pagent")
    assert attributes["failure_reason"] == "in_doubt" and accepted(relay, "pagent") == []
    relay.ledger.forget("pagent", cid(doubtful))
    relay.enqueue(doubtful)

    relay.run("pagent")

    assert len(accepted(relay, "pagent")) == 1
    assert relay.ledger.status("pagent", cid(doubtful)) == "delivered"


def test_a_rejected_job_replayed_after_the_fix_is_delivered(relay: Relay) -> None:
    """Given a job rejected for a revoked key, when the key is fixed and the job replayed, then
    the ledger lets it through (the vendor took nothing) and it is delivered once."""
    relay.env_overrides["SECRETS_MAX_AGE_SECONDS"] = "0"  # the fixed key is read at once
    relay.set_secret("conversion-relay/pagent/api-key", "revoked")
    rejected = job("pagent")
    relay.enqueue(rejected)
    relay.run("pagent")
    ((parked, _),) = relay.dead_letters("pagent")
    relay.set_secret("conversion-relay/pagent/api-key", "pk_local_pagent")
    relay.enqueue(parked)

    relay.run("pagent")

    assert len(accepted(relay, "pagent")) == 1
    assert relay.ledger.status("pagent", cid(rejected)) == "delivered"


def test_copies_of_a_job_in_one_batch_are_sent_once(relay: Relay) -> None:
    """Given two records of the same job in one batch (ingest queued it twice), when delivered,
    then the vendor gets it once and both records are done."""
    twice = job("pagent")
    relay.enqueue(twice, twice)

    answer = relay.run("pagent")

    assert answer == {"batchItemFailures": []}
    assert len(accepted(relay, "pagent")) == 1 and relay.in_queue("pagent") == 0


def test_concurrent_invocations_send_a_conversion_once(relay: Relay) -> None:
    """Given two records of one pagent job taken by two concurrent invocations, when both deliver
    at once (the vendor is slow), then one sends it and the other finds a live claim and leaves
    its record for later, when it is dropped as already delivered."""
    shared = job("pagent")
    relay.enqueue(shared, shared)
    first, second = relay.receive("pagent", limit=1), relay.receive("pagent", limit=1)
    assert first and second
    relay.sandboxes["pagent"].set_faults(FaultPlan(latency_ms=400))
    other = Deliverer(
        kind="pagent",
        config=relay.config,
        settings=DeliverSettings.from_env(relay.environment("pagent")),
        ledger=relay.ledger,
        sqs=relay.sqs,
        metrics=Metrics(namespace="ConversionRelay", service="conversion-relay"),
    )
    answers: dict[str, dict] = {}
    racer = threading.Thread(target=lambda: answers.setdefault("first", relay.invoke("pagent", first)))
    racer.start()
    # The first invocation holds the claim while it waits for the slow vendor.
    wait_for(lambda: relay.ledger.status("pagent", cid(shared)) == "in_progress")
    answers["second"] = relay.invoke("pagent", second, deliverer=other)
    racer.join(10)
    relay.sandboxes["pagent"].set_faults(FaultPlan())

    assert answers["first"] == {"batchItemFailures": []}
    assert [f["itemIdentifier"] for f in answers["second"]["batchItemFailures"]] == [second[0]["MessageId"]]
    relay.make_visible_messages("pagent", second)
    relay.drain("pagent")
    assert len(accepted(relay, "pagent")) == 1
    assert relay.in_queue("pagent") == 0 and relay.dead_letters("pagent") == []


def test_no_vendor_call_starts_without_time_for_its_answer(relay: Relay) -> None:
    """Given an invocation with less time left than a vendor call may take (10 s timeout), when
    it runs, then nothing is sent, the claims are given back and every record is retried."""
    jobs = [job("scanova") for _ in range(3)]
    relay.enqueue(*jobs)

    answer = relay.invoke("scanova", relay.receive("scanova"), seconds=8)

    assert len(answer["batchItemFailures"]) == 3
    assert relay.sandboxes["scanova"].requests() == []
    assert all(relay.ledger.status("scanova", cid(j)) is None for j in jobs)
    relay.drain("scanova")
    assert len(accepted(relay, "scanova")) == 3


def test_a_record_that_is_not_a_delivery_job_is_parked_as_malformed(relay: Relay) -> None:
    """Given a record whose body is not a DeliveryJob and one for a destination the config no
    longer has, when delivered, then both are parked as malformed_job, the others delivered."""
    relay.sqs.send_message(
        QueueUrl=relay.queue_url("scanova"),
        MessageBody='{"schema_version": 1, "destination": "scanova"}',
        MessageAttributes={"destination": {"DataType": "String", "StringValue": "scanova"}},
    )
    stray = DeliveryJob(destination="scanova_old", conversion=conversion())
    relay.sqs.send_message(QueueUrl=relay.queue_url("scanova"), MessageBody=stray.model_dump_json())
    good = job("scanova")
    relay.enqueue(good)

    relay.run("scanova")

    parked = relay.dead_letters("scanova")
    assert sorted(a["failure_reason"] for _, a in parked) == ["malformed_job", "malformed_job"]
    by_body = {isinstance(body, DeliveryJob): attributes for body, attributes in parked}
    assert by_body[False]["destination"] == "scanova"  # the producer's attributes are kept
    assert "conversion" in by_body[False]["failure_message"]
    assert "scanova_old" in by_body[True]["failure_message"]
    assert [e["event_id"] for e in accepted(relay, "scanova")] == [cid(good)]


def test_a_conversion_the_config_now_skips_is_counted_not_sent(relay: Relay, capsys) -> None:
    """Given a job queued before the config stopped sending purchases to Scalev Meta, when
    delivered, then it is skipped with reason event_not_mapped, as ingest would have."""
    queued = job("scalev_meta")
    relay.enqueue(queued)
    relay.configure("scalev_meta", event_names={"purchase": None})

    relay.run("scalev")

    assert relay.sandboxes["scalev"].requests() == [] and relay.in_queue("scalev") == 0
    assert '"reason":"event_not_mapped"' in capsys.readouterr().out


def test_the_deployed_handler_delivers_with_secrets_from_secrets_manager(
    relay: Relay, load_handler, capsys
) -> None:
    """Given functions/deliver_scanova/app.py loaded with the template's environment (a cold
    start: settings, config, secrets prefix checked), when Lambda invokes it with a batch, then
    the jobs are delivered and the EMF metrics carry Delivered and VendorLatency per destination."""
    module = load_handler(relay.world.functions["ScanovaDeliverFunction"], relay.environment("scanova"))
    jobs = [job("scanova") for _ in range(2)]
    relay.enqueue(*jobs)
    messages = relay.receive("scanova")
    arn = relay.world.resources["ScanovaQueue"]["Arn"]

    answer = module.lambda_handler(
        {"Records": [lambda_record(m, arn, REGION) for m in messages]},
        LambdaContext(function_name="ScanovaDeliverFunction", timeout_seconds=60),
    )

    assert answer == {"batchItemFailures": []}
    assert sorted(e["event_id"] for e in accepted(relay, "scanova")) == sorted(cid(j) for j in jobs)
    out = capsys.readouterr().out
    assert '"Delivered":[2.0]' in out and '"VendorLatency"' in out and '"destination":"scanova"' in out
