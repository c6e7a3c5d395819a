"""Stripe ingest end to end through the real handler (functions/ingest_stripe/app.py).

The AWS world is template.yaml's, created in moto (`moto_world`); the function's environment is
the template's plus RELAY_CONFIG and, unless a test reads the secret from Secrets Manager,
WEBHOOK_SECRET. Requests are API Gateway HTTP API v2 events signed with the official `stripe`
SDK. Logs and EMF metrics are read from stdout (capsys). Tests say Given / When / Then.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import stripe
import yaml
from relay import pii
from relay.models import DeliveryJob, conversion_id

import testkit
from local.lambda_context import LambdaContext
from local.world import World

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SECRET = testkit.LOCAL_STRIPE_SECRET
SECRET_NAME = "conversion-relay/stripe-webhook-secret"
VENDOR_QUEUES = ("ScanovaQueue", "PagentQueue", "ScalevQueue", "QuickLizardQueue")
DESTINATION_QUEUES = {
    "scanova": "ScanovaQueue",
    "pagent": "PagentQueue",
    "scalev_meta": "ScalevQueue",
    "scalev_tiktok": "ScalevQueue",
    "scalev_snackvideo": "ScalevQueue",
    "quicklizard": "QuickLizardQueue",
}
PI = "pi_3MtwBwLkdIwHu7ix28a3tqPa"
CHECKOUT_PURCHASE = str(conversion_id("stripe", PI, "purchase"))
# Raw customer data of the testkit's fictitious customer, as it may be spelled anywhere
RAW_PII = ("jenny.rosen@", "jenny", "rosen", "954-7888", "6169547888", "(616)", "menlo park", "hacker way")


# --- helpers -----------------------------------------------------------------------------------------


def stripe_header(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header as Stripe's own SDK makes it."""
    return stripe.WebhookSignature.generate_signature_header(
        body.decode("utf-8"), secret, timestamp=timestamp
    )


def request(
    stripe_event: dict[str, Any] | bytes,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    header: str | None = None,
    base64_body: bool = False,
    method: str = "POST",
) -> dict[str, Any]:
    body = stripe_event if isinstance(stripe_event, bytes) else json.dumps(stripe_event).encode()
    signature = header if header is not None else stripe_header(body, secret, timestamp)
    headers = {"Stripe-Signature": signature} if signature else {}
    return testkit.http_api_event("/webhooks/stripe", body, headers, method=method, base64_body=base64_body)


def sample(name: str, **livemode: bool) -> dict[str, Any]:
    event = testkit.sample_stripe_events()[name]
    event.update(livemode)
    return event


def checkout(event_id: str = "evt_checkout", **kwargs: Any) -> dict[str, Any]:
    return testkit.stripe_event(
        "checkout.session.completed", testkit.checkout_session(**kwargs), event_id=event_id
    )


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Ingest:
    """The Stripe function loaded in a moto world, and what it left there."""

    world: World
    module: ModuleType
    sqs_calls: list[str] = field(default_factory=list)  # operation names, in order
    before_sqs_call: list[Callable[[], None]] = field(default_factory=list)  # run inside each call

    def post(self, event: dict[str, Any]) -> Answer:
        raw = self.module.lambda_handler(event, LambdaContext(function_name="StripeWebhookFunction"))
        return Answer(raw["statusCode"], json.loads(raw["body"]), raw["headers"])

    def messages(self, queue: str) -> list[dict[str, Any]]:
        """Every message now in a queue (left invisible: read each queue once per test)."""
        sqs, url, found = boto3.client("sqs"), self.world.queue_url(queue), []
        while batch := sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=300
        ).get("Messages"):
            found += batch
        return found

    def jobs(self) -> dict[str, list[DeliveryJob]]:
        """Queue → the delivery jobs in it."""
        return {
            q: [DeliveryJob.model_validate_json(m["Body"]) for m in self.messages(q)] for q in VENDOR_QUEUES
        }

    def table_items(self) -> list[dict[str, Any]]:
        return boto3.client("dynamodb").scan(TableName=self.world.table_name)["Items"]


def write_config(directory: Path, **stripe_settings: Any) -> Path:
    """config/relay.local.yaml with the stripe source's settings changed."""
    config = yaml.safe_load((REPO / "config/relay.local.yaml").read_text(encoding="utf-8"))
    config["sources"]["stripe"].update(stripe_settings)
    path = directory / f"relay-{len(list(directory.glob('relay-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def emf(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith('{"_aws"')]


def metric_total(stdout: str, name: str, **dimensions: str) -> float:
    total = 0.0
    for blob in emf(stdout):
        if name in blob and all(blob.get(k) == v for k, v in dimensions.items()):
            values = blob[name]
            total += sum(values) if isinstance(values, list) else values
    return total


def while_held_in_send(
    ingest: Ingest, held: dict[str, Any], meanwhile: dict[str, Any]
) -> tuple[Answer, Answer]:
    """(answer to `held`, answer to `meanwhile`): `held` is posted and kept inside its first
    SendMessageBatch (its claims written) while `meanwhile` is posted."""
    in_flight, release = threading.Event(), threading.Event()

    def hold() -> None:
        in_flight.set()
        release.wait(timeout=10)

    ingest.before_sqs_call.append(hold)
    first: list[Answer] = []
    worker = threading.Thread(target=lambda: first.append(ingest.post(request(held))))
    worker.start()
    try:
        assert in_flight.wait(timeout=10)
        second = ingest.post(request(meanwhile))
    finally:
        release.set()
        worker.join(timeout=10)
        ingest.before_sqs_call.clear()
    return first[0], second


@pytest.fixture
def start(
    moto_world: World, load_handler: Callable[..., ModuleType], tmp_path: Path
) -> Iterator[Callable[..., Ingest]]:
    """`start(env_overrides=..., **stripe_settings)` cold-starts the Stripe function."""

    def _start(env: dict[str, str] | None = None, **stripe_settings: Any) -> Ingest:
        environment = {
            "RELAY_CONFIG": str(write_config(tmp_path, **stripe_settings)),
            "WEBHOOK_SECRET": SECRET,
        }
        ingest = Ingest(moto_world, ModuleType("not loaded yet"))

        def on_sqs_call(model: Any, **_: Any) -> None:
            ingest.sqs_calls.append(model.name)
            for hook in ingest.before_sqs_call:
                hook()

        # Watch the SQS calls of clients created from now on (the function's, at cold start).
        boto3.setup_default_session(region_name=moto_world.region)
        boto3.DEFAULT_SESSION.events.register("before-call.sqs", on_sqs_call)
        ingest.module = load_handler(
            moto_world.functions["StripeWebhookFunction"], {**environment, **(env or {})}
        )
        return ingest

    yield _start


@pytest.fixture
def ingest(start: Callable[..., Ingest]) -> Ingest:
    return start()


# --- the happy path ----------------------------------------------------------------------------------


def test_a_paid_checkout_is_queued_once_per_destination_with_send_message_batch(ingest):
    # Given the local config (6 destinations over 4 vendor queues) and a paid checkout
    # When Stripe posts it
    answer = ingest.post(request(checkout()))
    # Then one SendMessageBatch per vendor queue, never one SendMessage per job
    assert sorted(ingest.sqs_calls) == ["SendMessageBatch"] * 4
    # and 200 accepted: one purchase, one job per destination
    assert answer.status == 200
    assert answer.body == {
        "status": "accepted",
        "event_id": "evt_checkout",
        "conversions": [CHECKOUT_PURCHASE],
        "jobs": 6,
        "skipped": {},
    }
    jobs = ingest.jobs()
    assert {q: sorted(j.destination for j in js) for q, js in jobs.items()} == {
        "ScanovaQueue": ["scanova"],
        "PagentQueue": ["pagent"],
        "ScalevQueue": ["scalev_meta", "scalev_snackvideo", "scalev_tiktok"],
        "QuickLizardQueue": ["quicklizard"],
    }
    assert {str(j.conversion.conversion_id) for js in jobs.values() for j in js} == {CHECKOUT_PURCHASE}


def test_each_job_carries_the_hashed_identity_attribution_and_filterable_attributes(ingest):
    ingest.post(request(checkout()))
    (message,) = ingest.messages("ScanovaQueue")
    job = DeliveryJob.model_validate_json(message["Body"])
    conversion = job.conversion
    assert (conversion.name, conversion.value.amount_minor, conversion.value.currency) == (
        "purchase",
        4999,
        "USD",
    )
    assert conversion.identity.email == pii.hash_email("Jenny.Rosen@Example.com")
    assert conversion.identity.phone == pii.sha256_hex("16169547888")
    assert conversion.attribution.scan_session_id == testkit.SCAN_SESSION_ID
    assert conversion.attribution.pagent.user_id == testkit.PAGENT_SESSION["user_id"]
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {
        "destination": "scanova",
        "conversion_name": "purchase",
        "conversion_id": CHECKOUT_PURCHASE,
        "event_time": "2026-01-01T00:00:00+00:00",
    }


def test_the_event_id_is_claimed_in_dynamodb_for_at_least_3_days(ingest):
    before = time.time()
    ingest.post(request(checkout()))
    (item,) = [i for i in ingest.table_items() if not i["id"]["S"].startswith("conversion#")]
    assert item["status"]["S"] == "COMPLETED"
    # Its key space (relay.keyspaces), the same for every function that relays Stripe events
    # (the webhook function, ReconcileFunction, relay backfill).
    assert item["id"]["S"].startswith("idempotency#stripe#")
    assert int(item["expiration"]["N"]) >= before + 3 * 24 * 3600  # Stripe retries for 3 days
    assert json.loads(item["data"]["S"])["conversions"] == [CHECKOUT_PURCHASE]


def test_a_duplicate_answers_like_the_first_marked_duplicate_and_queues_nothing(ingest, capsys):
    # Given a checkout already relayed
    first = ingest.post(request(checkout()))
    capsys.readouterr()
    # When Stripe delivers the same event again (a retry: signed anew)
    second = ingest.post(request(checkout()))
    # Then the first answer with a visible sign, no second set of jobs, and the duplicate is counted
    assert "duplicate" not in first.body
    assert (second.status, second.body) == (first.status, {**first.body, "duplicate": True})
    assert sum(len(js) for js in ingest.jobs().values()) == 6
    assert metric_total(capsys.readouterr().out, "WebhookDuplicate") == 1


def test_ingest_emits_powertools_metrics(ingest, capsys):
    ingest.post(request(checkout(metadata={"fbc": "fb.1.1.x"})))
    out = capsys.readouterr().out
    blobs = emf(out)
    assert blobs, "no EMF output"
    assert {d["Namespace"] for b in blobs for d in b["_aws"]["CloudWatchMetrics"]} == {"ConversionRelay"}
    assert metric_total(out, "WebhookReceived") == 1
    assert metric_total(out, "ConversionsMapped") == 1
    assert metric_total(out, "JobsQueued") == 3  # scanova, pagent and snackvideo lack their ids
    assert (
        metric_total(out, "DestinationSkipped", destination="scanova", reason="missing_scan_session_id") == 1
    )


# --- what each Stripe event becomes -------------------------------------------------------------------


def test_an_unpaid_checkout_waits_for_async_payment_succeeded(ingest):
    waiting = ingest.post(request(checkout("evt_unpaid", paid=False, payment_intent="pi_async")))
    assert (waiting.status, waiting.body["conversions"], waiting.body["jobs"]) == (200, [], 0)
    settled = testkit.stripe_event(
        "checkout.session.async_payment_succeeded",
        testkit.checkout_session(payment_intent="pi_async"),
        event_id="evt_settled",
    )
    answer = ingest.post(request(settled))
    assert answer.body["conversions"] == [str(conversion_id("stripe", "pi_async", "purchase"))]
    assert answer.body["jobs"] == 6


def test_a_checkout_and_its_payment_intent_are_one_purchase(ingest):
    # Given the checkout and the payment_intent.succeeded of the same payment
    from_checkout = ingest.post(request(checkout()))
    from_intent = ingest.post(request(sample("payment_intent_succeeded")))
    # Then one conversion id: each destination's ledger lets it through once
    assert from_checkout.body["conversions"] == from_intent.body["conversions"] == [CHECKOUT_PURCHASE]


def test_a_second_webhook_about_the_same_order_queues_nothing_again(ingest):
    """Given a checkout already queued to the 6 destinations, when its payment_intent.succeeded
    arrives (the same conversion id), then nothing is queued again: one write on the conversion
    tells it that the checkout queued every destination."""
    before = time.time()
    first = ingest.post(request(checkout()))
    second = ingest.post(request(sample("payment_intent_succeeded")))
    assert (first.body["jobs"], second.body["jobs"], second.body["already_queued"]) == (6, 0, 6)
    assert sum(len(js) for js in ingest.jobs().values()) == 6
    (claim,) = [i for i in ingest.table_items() if i["id"]["S"] == f"conversion#stripe#{CHECKOUT_PURCHASE}"]
    assert {k: v["S"] for k, v in claim.items() if k.startswith("to:")} == {
        f"to:{name}": "evt_checkout" for name in DESTINATION_QUEUES
    }
    assert int(claim["expiration"]["N"]) >= before + 3 * 24 * 3600  # as long as Stripe retries


def test_a_destination_the_first_webhook_skipped_gets_the_conversion_from_the_second(ingest):
    """Given a checkout without a Scanova session (Scanova skipped) and then its payment intent
    with one, when both arrive, then the intent queues Scanova alone: claims are per destination."""
    metadata = {k: v for k, v in testkit.ATTRIBUTION_METADATA.items() if k != "scan_session_id"}
    first = ingest.post(request(checkout(metadata=metadata)))
    second = ingest.post(request(sample("payment_intent_succeeded")))
    assert (first.body["jobs"], first.body["skipped"]) == (5, {"scanova:missing_scan_session_id": 1})
    assert (second.body["jobs"], second.body["already_queued"]) == (1, 5)
    assert {q: len(js) for q, js in ingest.jobs().items()} == {
        "ScanovaQueue": 1,
        "PagentQueue": 1,
        "ScalevQueue": 3,
        "QuickLizardQueue": 1,
    }


def test_a_webhook_whose_earlier_attempt_died_after_claiming_queues_again(ingest, moto_world):
    """Given the checkout's claim, written by an attempt of this very event that died before its
    jobs were queued (no answer: Stripe retries), when the retry arrives, then it queues every
    destination (a claim of the same event is its own), and the payment intent still nothing."""
    claim = {f"to:{name}": {"S": "evt_checkout"} for name in DESTINATION_QUEUES}
    boto3.client("dynamodb").put_item(
        TableName=moto_world.table_name, Item={"id": {"S": f"conversion#stripe#{CHECKOUT_PURCHASE}"}, **claim}
    )
    retried = ingest.post(request(checkout()))
    other = ingest.post(request(sample("payment_intent_succeeded")))
    assert (retried.body["jobs"], other.body["jobs"]) == (6, 0)


def test_two_webhooks_about_one_order_at_once_queue_it_once(ingest):
    """Given the checkout held inside SendMessageBatch (its claim written), when the payment
    intent of the same order arrives meanwhile, then it queues nothing: the checkout has it."""
    first, second = while_held_in_send(ingest, checkout(), sample("payment_intent_succeeded"))
    assert (first.body["jobs"], second.body["jobs"], second.body["already_queued"]) == (6, 0, 6)
    assert sum(len(js) for js in ingest.jobs().values()) == 6


def test_a_subscription_checkout_and_its_first_invoice_are_one_purchase(ingest):
    session = testkit.checkout_session(mode="subscription", payment_intent=None)
    session.update(invoice="in_1MtHbELkdIwHu7ixl4OzzPMv", subscription="sub_1MowQVLkdIwHu7ixeRlqHVzs")
    from_checkout = ingest.post(
        request(testkit.stripe_event("checkout.session.completed", session, event_id="evt_s"))
    )
    from_invoice = ingest.post(request(sample("invoice_paid")))
    assert from_checkout.body["conversions"] == from_invoice.body["conversions"]
    assert len(from_invoice.body["conversions"]) == 1


def test_invoices_first_is_a_purchase_renewal_is_named_by_the_config(start):
    ingest = start(renewal_name="subscription_renewal")
    ingest.post(request(sample("invoice_paid")))
    ingest.post(request(sample("invoice_paid_renewal")))
    names = sorted({j.conversion.name for j in ingest.jobs()["ScalevQueue"]})
    assert names == ["purchase", "subscription_renewal"]


def test_a_zero_amount_trial_invoice_is_not_a_purchase(ingest):
    free = testkit.stripe_event("invoice.paid", testkit.invoice(amount_paid=0), event_id="evt_free")
    answer = ingest.post(request(free))
    assert (answer.status, answer.body["conversions"], answer.body["jobs"]) == (200, [], 0)


def test_a_trial_subscription_is_a_signup(ingest):
    answer = ingest.post(request(sample("customer_subscription_created_trial")))
    names = {j.conversion.name for js in ingest.jobs().values() for j in js}
    assert names == {"signup"}
    # QuickLizard has no signup in its vocabulary: skipped and said so
    assert answer.body["skipped"] == {"quicklizard:event_not_mapped": 1}


@pytest.mark.parametrize("event_type", ["charge.refunded", "customer.created", "invoice.created"])
def test_other_event_types_are_acknowledged_and_ignored(ingest, event_type):
    other = testkit.stripe_event(event_type, testkit.invoice(), event_id="evt_other")
    answer = ingest.post(request(other))
    assert (answer.status, answer.body) == (
        200,
        {"status": "ignored", "reason": "unsupported_event_type", "event_id": "evt_other"},
    )
    assert ingest.table_items() == []  # not even claimed


def test_test_mode_events_are_relayed_only_when_allowed(start):
    strict = start(allow_test_mode=False)
    answer = strict.post(request(checkout()))  # livemode false
    assert (answer.status, answer.body["status"], answer.body["reason"]) == (
        200,
        "ignored",
        "test_mode_not_allowed",
    )
    live = strict.post(request(checkout("evt_live") | {"livemode": True}))
    assert live.body["status"] == "accepted"


# --- attribution ids and identity ---------------------------------------------------------------------


def scanova_attribution(ingest: Ingest) -> list[str | None]:
    return [j.conversion.attribution.scan_session_id for j in ingest.jobs()["ScanovaQueue"]]


def test_attribution_from_payment_intent_metadata(ingest):
    ingest.post(request(sample("payment_intent_succeeded")))
    assert scanova_attribution(ingest) == [testkit.SCAN_SESSION_ID]


def test_attribution_from_subscription_metadata_on_invoices(ingest):
    # The invoice carries it as parent.subscription_details.metadata (current API versions)
    ingest.post(request(sample("invoice_paid")))
    assert scanova_attribution(ingest) == [testkit.SCAN_SESSION_ID]


def test_attribution_from_client_reference_id_where_the_config_says(ingest):
    # Given a checkout whose storefront put the Scanova session in client_reference_id only
    event = checkout(metadata={})
    event["data"]["object"]["client_reference_id"] = testkit.SCAN_SESSION_ID
    # When relayed with the local config (its scan_session_id path falls back on it)
    ingest.post(request(event))
    # Then Scanova gets the session
    assert scanova_attribution(ingest) == [testkit.SCAN_SESSION_ID]


def test_a_destination_missing_its_attribution_is_skipped_and_counted(ingest, capsys):
    # Given a checkout without the Scanova session or the pagent session
    answer = ingest.post(request(checkout(metadata={"fbc": "fb.1.1.x", "snackvideo_click_id": "k1"})))
    # Then those destinations get no job, the answer says why, and a metric counts each
    assert answer.body["skipped"] == {
        "scanova:missing_scan_session_id": 1,
        "pagent:missing_pagent_session": 1,
    }
    assert answer.body["jobs"] == 4
    jobs = ingest.jobs()
    assert (jobs["ScanovaQueue"], jobs["PagentQueue"]) == ([], [])
    out = capsys.readouterr().out
    assert metric_total(out, "DestinationSkipped", destination="pagent", reason="missing_pagent_session") == 1


def test_no_raw_pii_in_queues_table_or_logs(ingest, capsys):
    # Given events that carry the customer's email, phone, name and address
    for name in ("checkout_session_completed", "payment_intent_succeeded", "invoice_paid"):
        assert ingest.post(request(sample(name))).status == 200
    # When everything the relay wrote is collected
    written = [json.dumps(m) for q in (*VENDOR_QUEUES, "ScanovaDeadLetterQueue") for m in ingest.messages(q)]
    written += [json.dumps(item) for item in ingest.table_items()]
    captured = capsys.readouterr()
    written += [captured.out, captured.err]
    # Then none of it holds raw PII (and there was something to look at)
    text = "\n".join(written).lower()
    assert "jobs" in text and "conversion_id" in text and '"level"' in text
    for raw in RAW_PII:
        assert raw not in text, raw


# --- refusals: 4xx, never 5xx, nothing stored -----------------------------------------------------------


def oversized() -> dict[str, Any]:
    event = checkout()
    event["data"]["object"]["metadata"]["padding"] = "x" * (256 * 1024)
    return request(event)


@pytest.mark.parametrize(
    ("make_request", "status", "error"),
    [
        (lambda: request(checkout(), header=""), 401, "missing_signature"),
        (lambda: request(checkout(), secret="whsec_someone_else"), 401, "invalid_signature"),
        (lambda: request(checkout(), timestamp=int(time.time()) - 301), 401, "stale_timestamp"),
        (lambda: request(checkout(), timestamp=int(time.time()) + 301), 401, "stale_timestamp"),
        (oversized, 413, "payload_too_large"),
        (lambda: request(checkout(), method="GET"), 405, "method_not_allowed"),
    ],
    ids=[
        "unsigned",
        "wrong-secret",
        "stale",
        "future",
        "oversized",
        "get",
    ],
)
def test_refusals_answer_4xx_and_store_nothing(ingest, make_request, status, error):
    answer = ingest.post(make_request())
    assert (answer.status, answer.body["error"]) == (status, error)
    assert answer.body["reason"]
    assert ingest.table_items() == []
    assert all(ingest.messages(q) == [] for q in VENDOR_QUEUES)
    if status == 405:
        assert answer.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed_payload"),
        (b'["a", "list"]', "malformed_payload"),
        (b'{"id": "evt_1", "type": "x", "data": {"object": "nope"}}', "malformed_payload"),
    ],
    ids=["malformed", "wrong-shape", "object-not-dict"],
)
def test_signed_bodies_that_are_not_events_are_parked_not_refused(ingest, body, reason):
    """Given a correctly signed body the relay cannot read, when it is posted, then it is
    answered 200 "parked" (Stripe stops retrying and keeps the endpoint healthy), a parked
    record with its reason and fingerprint is kept (no payload), and nothing is queued."""
    answer = ingest.post(request(body))
    assert (answer.status, answer.body["status"], answer.body["reason"]) == (200, "parked", reason)
    (item,) = ingest.table_items()
    assert item["id"]["S"].startswith("parked#stripe#body:")
    assert item["reason"]["S"] == reason and len(item["fingerprint"]["S"]) == 32
    assert not {"payload", "body"} & set(item)
    assert all(ingest.messages(q) == [] for q in VENDOR_QUEUES)


def test_an_authentic_event_with_unusable_content_is_parked_with_its_event_id(ingest):
    """Given a signed checkout whose amount is not a number, when posted, then it is parked under
    its own event id (so `relay backfill --event` can fetch it again) and the idempotency claim
    is released (only the parked record remains), with no job queued."""
    event = checkout()
    event["data"]["object"]["amount_total"] = "a lot"
    answer = ingest.post(request(event))
    assert (answer.status, answer.body["status"]) == (200, "parked")
    assert answer.body["event_id"] == event["id"]
    assert [item["id"]["S"] for item in ingest.table_items()] == [f"parked#stripe#{event['id']}"]
    assert all(ingest.messages(q) == [] for q in VENDOR_QUEUES)


# --- signatures through the handler ------------------------------------------------------------------


def test_a_base64_encoded_body_is_verified_on_its_decoded_bytes(ingest):
    answer = ingest.post(request(checkout(), base64_body=True))
    assert (answer.status, answer.body["status"]) == (200, "accepted")


def test_only_v1_signatures_count(ingest):
    body = json.dumps(checkout()).encode()
    v1 = stripe_header(body).split(",v1=")[1]
    t = int(time.time())
    answer = ingest.post(request(body, header=f"t={t},v0={v1}"))
    assert (answer.status, answer.body["error"]) == (401, "invalid_signature")


def test_any_of_several_v1_signatures_may_match(ingest):
    body = json.dumps(checkout()).encode()
    good = stripe_header(body)  # t=…,v1=…
    answer = ingest.post(request(body, header=f"{good},v1={'0' * 64}"))
    assert answer.status == 200
    answer = ingest.post(request(body, header=good.replace(",v1=", f",v1={'f' * 64},v1=")))
    assert answer.status == 200


def test_during_a_rotation_both_secrets_from_secrets_manager_verify(start):
    # Given the secret in Secrets Manager holds the new and the old value (no WEBHOOK_SECRET)
    boto3.client("secretsmanager").put_secret_value(
        SecretId=SECRET_NAME, SecretString=json.dumps(["whsec_new_one", "whsec_old_one"])
    )
    ingest = start(env={"WEBHOOK_SECRET": ""})
    # When Stripe signs with either (it signs with both while a rotation lasts)
    old = ingest.post(request(checkout("evt_old"), secret="whsec_old_one"))
    new = ingest.post(request(checkout("evt_new"), secret="whsec_new_one"))
    stranger = ingest.post(request(checkout("evt_x"), secret="whsec_other"))
    # Then both verify, and nothing else does
    assert (old.status, new.status, stranger.status) == (200, 200, 401)


@pytest.mark.parametrize(
    "stored", ['{"secrets": null}', '[null, "whsec_new_one"]', '{"secret": "whsec_new_one", "note": "x"}']
)
def test_a_malformed_secret_refuses_every_request_whatever_it_was_signed_with(start, capsys, stored):
    # Given Secrets Manager holds a malformed value, and a sender signs with that very text (or "None")
    boto3.client("secretsmanager").put_secret_value(SecretId=SECRET_NAME, SecretString=stored)
    ingest = start(env={"WEBHOOK_SECRET": ""})
    answers = [
        ingest.post(request(checkout(f"evt_{i}"), secret=secret))
        for i, secret in enumerate((stored, "None", "whsec_new_one"))
    ]
    # Then every request is refused with the generic 5xx, and nothing is stored or queued
    assert {(a.status, a.body["error"]) for a in answers} == {(500, "internal")}
    assert ingest.table_items() == [] and ingest.jobs() == {q: [] for q in VENDOR_QUEUES}
    # And the value appears in no log line (relay.ingest.edge logs the secret's name and the problem)
    captured = capsys.readouterr()
    assert "whsec_new_one" not in captured.out + captured.err


def test_the_tolerance_is_configurable(start):
    ten_minutes_ago = int(time.time()) - 600
    assert start().post(request(checkout(), timestamp=ten_minutes_ago)).status == 401
    assert (
        start(signing_tolerance_seconds=900).post(request(checkout(), timestamp=ten_minutes_ago)).status
        == 200
    )


def test_the_derived_stripe_vector_verifies_through_the_handler(start):
    # testkit/fixtures/SOURCES.md: secret whsec_test_secret, body = setup_intent.created.json's exact
    # bytes, t=1492774577 (2017: tolerance off). A setup_intent event is not a conversion: 200 ignored.
    body = (testkit.FIXTURES / "stripe" / "setup_intent.created.json").read_bytes()
    header = "t=1492774577,v1=dccd2eaed99c4b0533e7e3e6cfc4f64482d9854ee794c9b2bf12309b1ab543e8"
    assert stripe.WebhookSignature.verify_header(body, header, "whsec_test_secret", tolerance=None)
    ingest = start(env={"WEBHOOK_SECRET": "whsec_test_secret"}, signing_tolerance_seconds=0)
    answer = ingest.post(request(body, header=header))
    assert (answer.status, answer.body["status"]) == (200, "ignored")
    tampered = ingest.post(request(body.replace(b"seti_", b"setx_"), header=header))
    assert tampered.status == 401


# --- failures before the jobs are queued: 5xx, claim released, the retry succeeds ---------------------------


def test_a_queueing_failure_answers_503_releases_the_claim_and_the_retry_succeeds(start, moto_world):
    # Given a Scanova queue URL that does not exist (yet)
    missing = moto_world.queue_url("ScanovaQueue").replace("ScanovaQueue", "MissingQueue")
    ingest = start(env={"SCANOVA_QUEUE_URL": missing})
    # When the checkout arrives
    failed = ingest.post(request(checkout()))
    # Then 503 (Stripe retries), and the claim is gone so the retry is not taken for a duplicate
    assert (failed.status, failed.body["error"]) == (503, "unavailable")
    assert ingest.table_items() == []
    # When the queue is back and Stripe retries
    boto3.client("sqs").create_queue(QueueName=missing.rsplit("/", 1)[1])
    retried = ingest.post(request(checkout()))
    # Then it is relayed in full
    assert (retried.status, retried.body["status"], retried.body["jobs"]) == (200, "accepted", 6)
    (claim,) = [i for i in ingest.table_items() if i["id"]["S"].startswith("idempotency#")]
    assert claim["status"]["S"] == "COMPLETED"


def test_a_dynamodb_failure_answers_5xx_and_queues_nothing(start):
    ingest = start(env={"TABLE_NAME": "no-such-table"})
    answer = ingest.post(request(checkout()))
    assert answer.status >= 500
    assert all(ingest.messages(q) == [] for q in VENDOR_QUEUES)


def test_the_same_event_arriving_while_the_first_is_in_flight_answers_409(ingest):
    # Given a first delivery held inside SendMessageBatch (after its claim was written)
    # When Stripe's retry of the same event arrives meanwhile
    first, second = while_held_in_send(ingest, checkout(), checkout())
    # Then it is told to come back later (not processed twice, not acknowledged as done)
    assert (second.status, second.body["error"], second.headers["Retry-After"]) == (409, "in_progress", "5")
    assert first.status == 200
    assert sum(len(js) for js in ingest.jobs().values()) == 6


# --- the committed sample events ----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((REPO / "events/stripe").glob("*.json")), ids=lambda p: p.stem)
def test_the_committed_events_are_accepted(start, path):
    # They are signed at a fixed 2026 timestamp: accepted with the age check off.
    ingest = start(signing_tolerance_seconds=0)
    answer = ingest.post(json.loads(path.read_text(encoding="utf-8")))
    assert (answer.status, answer.body["status"]) == (200, "accepted")
    assert len(answer.body["conversions"]) == 1
    assert answer.body["jobs"] >= 5
