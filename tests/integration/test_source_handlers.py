"""Every source through its real handler: functions/ingest_<provider>/app.py loaded as a cold start
with its template environment (moto world from template.yaml), config/relay.local.yaml, and the
HubSpot API sandbox over real loopback HTTP.

What is proven, per provider: the official vectors pass the real handler's verification, every
bad request gets a 4xx with a reason (never a 5xx), a duplicate answers like the first and queues
nothing, amounts are exact, and the jobs land on their vendors' queues with hashed identity only.
For HubSpot also: the CRM read happens inside the idempotent claim (a failure answers 5xx and
releases the claim, so HubSpot's retry succeeds).

Tests read Given / When / Then in their comments.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import standardwebhooks
import yaml
from relay.models import DeliveryJob, conversion_id

import testkit
from local.lambda_context import LambdaContext
from local.world import REPO_ROOT, World
from sandboxes import FaultPlan, HubSpotApiSandbox

pytestmark = pytest.mark.integration

LOCAL_CONFIG = REPO_ROOT / "config" / "relay.local.yaml"
FIXTURES = testkit.FIXTURES
FUNCTIONS = {
    "hubspot": "HubSpotWebhookFunction",
    "pipedrive": "PipedriveWebhookFunction",
    "paddle": "PaddleWebhookFunction",
    "shopify": "ShopifyWebhookFunction",
    "events": "EventsWebhookFunction",
}
QUEUES = {
    "scanova": "ScanovaQueue",
    "pagent": "PagentQueue",
    "scalev": "ScalevQueue",
    "quicklizard": "QuickLizardQueue",
}
DESTINATION_KINDS = {
    name: destination["kind"]
    for name, destination in yaml.safe_load(LOCAL_CONFIG.read_text())["destinations"].items()
}
RAW_PII = ("jenny", "rosen", "616", "954-7888", "new.lead@", "menlo")
HUBSPOT_TOKEN_SECRET = "conversion-relay/hubspot-private-app-token"


# --------------------------------------------------------------------------- harness


@dataclass
class Relay:
    """One cold-started ingest function and the AWS world it queues into."""

    world: World
    module: ModuleType

    def post(self, api_event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        answer = self.module.lambda_handler(api_event, LambdaContext(function_name="ingest"))
        return answer["statusCode"], json.loads(answer["body"])

    def jobs(self) -> list[tuple[str, DeliveryJob, str]]:
        """Every queued job as (vendor kind of its queue, job, raw body); the queues are drained."""
        sqs = boto3.client("sqs")
        found = []
        for kind, logical_id in QUEUES.items():
            while True:
                batch = sqs.receive_message(
                    QueueUrl=self.world.queue_url(logical_id),
                    MaxNumberOfMessages=10,
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                if not batch:
                    break
                for message in batch:
                    job = DeliveryJob.model_validate_json(message["Body"])
                    assert message["MessageAttributes"]["destination"]["StringValue"] == job.destination
                    found.append((kind, job, message["Body"]))
                    sqs.delete_message(
                        QueueUrl=self.world.queue_url(logical_id), ReceiptHandle=message["ReceiptHandle"]
                    )
        return found


def assert_well_queued(jobs: list[tuple[str, DeliveryJob, str]], conversions: list[str]) -> None:
    """Each job is on its destination's vendor queue, for an answered conversion, with no raw PII."""
    assert jobs, "no job was queued"
    for kind, job, body in jobs:
        assert DESTINATION_KINDS[job.destination] == kind
        assert str(job.conversion.conversion_id) in conversions
        lowered = body.lower()
        assert not any(fragment in lowered for fragment in RAW_PII), f"raw PII in a {kind} job"


@pytest.fixture
def world_secrets(world_secrets: dict[str, str]) -> dict[str, str]:
    # The HubSpot function reads its CRM token from Secrets Manager (HUBSPOT_TOKEN_SECRET_NAME).
    return {**world_secrets, HUBSPOT_TOKEN_SECRET: testkit.LOCAL_HUBSPOT_TOKEN}


@pytest.fixture
def hubspot_api() -> Iterator[HubSpotApiSandbox]:
    with HubSpotApiSandbox().start() as sandbox:
        yield sandbox


@pytest.fixture
def start(
    moto_world: World, load_handler, tmp_path: Path, hubspot_api: HubSpotApiSandbox
) -> Callable[..., Relay]:
    """start(provider, secret=…, sources={name: {…}}) → the handler, cold-started on the local config
    (its `sources:` entries updated with `sources`), with WEBHOOK_SECRET set."""
    count = itertools.count()

    def start(provider: str, *, secret: str | None = None, sources: dict[str, dict] | None = None) -> Relay:
        config = yaml.safe_load(LOCAL_CONFIG.read_text())
        config["sources"]["hubspot"]["settings"]["api_base"] = hubspot_api.url
        for name, changes in (sources or {}).items():
            entry = config["sources"].setdefault(name, {}) or {}
            settings = {**(entry.get("settings") or {}), **changes.pop("settings", {})}
            config["sources"][name] = {**entry, **changes, "settings": settings}
        path = tmp_path / f"relay-{provider}-{next(count)}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        env = {"RELAY_CONFIG": str(path), "WEBHOOK_SECRET": secret or testkit.LOCAL_WEBHOOK_SECRETS[provider]}
        return Relay(moto_world, load_handler(moto_world.functions[FUNCTIONS[provider]], env))

    return start


# Each provider: a valid body, and how to sign any body (with a secret, at a time) as it does.
def _hubspot(body: bytes, secret: str, at: int) -> dict[str, Any]:
    signature = testkit.hubspot_signature_v3(body, secret=secret, timestamp_ms=at * 1000)
    return testkit.http_api_event("/webhooks/hubspot", body, signature)


def _pipedrive(body: bytes, secret: str, at: int) -> dict[str, Any]:
    return testkit.http_api_event(
        "/webhooks/pipedrive", body, {"Authorization": testkit.basic_authorization(secret)}
    )


def _paddle(body: bytes, secret: str, at: int) -> dict[str, Any]:
    return testkit.http_api_event(
        "/webhooks/paddle", body, {"Paddle-Signature": testkit.paddle_signature(body, secret, at)}
    )


def _shopify(body: bytes, secret: str, at: int) -> dict[str, Any]:
    headers = {
        "X-Shopify-Hmac-Sha256": testkit.shopify_hmac(body, secret),
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Webhook-Id": "7f1c2d3e-0000-4000-8000-000000000001",
        "X-Shopify-Shop-Domain": testkit.SHOPIFY_SHOP_DOMAIN,
    }
    return testkit.http_api_event("/webhooks/shopify", body, headers)


def _events(body: bytes, secret: str, at: int) -> dict[str, Any]:
    return testkit.http_api_event(
        "/events", body, testkit.standard_webhooks_signature("msg_1", body, secret, at)
    )


SIGN = {
    "hubspot": _hubspot,
    "pipedrive": _pipedrive,
    "paddle": _paddle,
    "shopify": _shopify,
    "events": _events,
}
VALID = {
    "hubspot": lambda: [testkit.hubspot_deal_stage_change()],
    "pipedrive": testkit.pipedrive_deal_won,
    "paddle": lambda: testkit.paddle_notification("transaction.completed", testkit.paddle_transaction()),
    "shopify": testkit.shopify_order,
    "events": testkit.backend_purchase,
}
WRONG_SECRET = {
    "hubspot": "not-the-client-secret",
    "pipedrive": "relay:wrong-password",
    "paddle": "pdl_ntfset_wrong",
    "shopify": "shpss_wrong",
    "events": "whsec_" + base64.b64encode(b"not the events secret at all!!!").decode(),
}
SIGNATURE_HEADERS = {
    "hubspot": ("x-hubspot-signature-v3",),
    "pipedrive": ("authorization",),
    "paddle": ("paddle-signature",),
    "shopify": ("x-shopify-hmac-sha256",),
    "events": ("webhook-signature",),
}
PROVIDERS = list(FUNCTIONS)
TIMED = ["hubspot", "paddle", "events"]  # the ones that sign a timestamp


def signed(provider: str, document: Any = None, *, secret: str | None = None, at: int | None = None) -> dict:
    body = (
        document
        if isinstance(document, bytes)
        else json.dumps(VALID[provider]() if document is None else document).encode()
    )
    return SIGN[provider](
        body, secret or testkit.LOCAL_WEBHOOK_SECRETS[provider], int(time.time()) if at is None else at
    )


# --------------------------------------------------------------------------- every provider


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_valid_webhook_queues_jobs_with_hashed_identity_and_a_duplicate_answers_alike(start, provider: str):
    # Given a cold-started handler, When a valid signed webhook arrives
    relay = start(provider)
    request = signed(provider)
    status, first = relay.post(request)
    # Then 200 accepted, and one job per destination on the right vendor queues, PII hashed
    assert status == 200, first
    assert first["status"] == "accepted" and first["conversions"], first
    jobs = relay.jobs()
    assert first["jobs"] == len(jobs)
    assert_well_queued(jobs, first["conversions"])
    # When the same webhook arrives again, Then the same answer marked duplicate, nothing more queued
    assert relay.post(request) == (200, {**first, "duplicate": True})
    assert relay.jobs() == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_forged_unsigned_oversized_requests_get_a_4xx_and_signed_malformed_ones_are_parked(
    start, provider: str
):
    relay = start(provider)
    forged = signed(provider, secret=WRONG_SECRET[provider])
    unsigned = signed(provider)
    for header in SIGNATURE_HEADERS[provider]:
        unsigned["headers"].pop(header)
    oversized = signed(provider, b"[" + b"0," * 140_000 + b"0]")
    malformed = signed(provider, b'{"truncated": ')
    cases = {"forged": forged, "unsigned": unsigned, "oversized": oversized, "malformed": malformed}
    answers = {case: relay.post(request) for case, request in cases.items()}
    assert {case: status for case, (status, _) in answers.items()} == {
        "forged": 401,
        "unsigned": 401,
        "oversized": 413,
        "malformed": 200,  # authentic, so parked: the provider stops retrying, nothing is lost
    }
    assert answers["unsigned"][1]["error"] == "missing_signature"
    assert (answers["malformed"][1]["status"], answers["malformed"][1]["reason"]) == (
        "parked",
        "malformed_payload",
    )
    assert all(body["reason"] for _, body in answers.values())
    assert relay.jobs() == []


@pytest.mark.parametrize("provider", TIMED)
def test_a_stale_signature_is_refused(start, provider: str):
    relay = start(provider)
    status, body = relay.post(signed(provider, at=int(time.time()) - 3600))
    assert (status, body["error"]) == (401, "stale_timestamp")


# --------------------------------------------------------------------------- HubSpot


def test_hubspots_v1_example_passes_the_handler_when_v1_is_allowed(start, hubspot_api):
    # Given HubSpot's documented v1 request (exact bytes, example secret) and require_v3 off
    relay = start(
        "hubspot",
        secret="yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
        sources={"hubspot": {"settings": {"require_v3": False}}},
    )
    body = (FIXTURES / "hubspot" / "contact.creation.json").read_bytes()
    headers = {
        "X-HubSpot-Signature": "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        "X-HubSpot-Signature-Version": "v1",
    }
    status, answer = relay.post(testkit.http_api_event("/webhooks/hubspot", body, headers))
    # Then contact 123 is a lead, its identity read from the CRM (token from Secrets Manager)
    assert status == 200, answer
    assert answer["conversions"] == [str(conversion_id("hubspot", "123", "lead"))]
    assert [r["path"] for r in hubspot_api.requests()] == ["/crm/v3/objects/contacts/123"]
    jobs = relay.jobs()
    assert_well_queued(jobs, answer["conversions"])
    assert jobs[0][1].conversion.identity.email is not None


def test_hubspots_v1_example_is_refused_by_default(start):
    relay = start("hubspot", secret="yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy")
    body = (FIXTURES / "hubspot" / "contact.creation.json").read_bytes()
    headers = {
        "X-HubSpot-Signature": "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        "X-HubSpot-Signature-Version": "v1",
    }
    status, answer = relay.post(testkit.http_api_event("/webhooks/hubspot", body, headers))
    assert (status, answer["error"]) == (401, "missing_signature")


def test_hubspots_v3_vector_passes_the_signature_check_of_the_handler(start):
    # Given HubSpot's v3 vector (its body is not JSON) and the URL it was signed for
    relay = start(
        "hubspot",
        secret="yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
        sources={
            "hubspot": {
                "signing_tolerance_seconds": 0,
                "settings": {"public_url": "https://www.example.com/webhook_uri"},
            }
        },
    )
    headers = {
        "X-HubSpot-Signature-v3": "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=",
        "X-HubSpot-Request-Timestamp": "15000000",
    }
    status, answer = relay.post(
        testkit.http_api_event("/webhooks/hubspot", b"{'example_field':'example_value'}", headers)
    )
    # Then the signature is accepted and the body, not JSON, parked (200 parked, not 401)
    assert (status, answer["status"], answer["reason"]) == (200, "parked", "malformed_payload")


def test_a_hubspot_batch_claims_each_event_and_reads_only_what_can_convert(start, hubspot_api):
    # Given a batch: a new contact, a deal moved to an open stage, a deal moved to won
    relay = start("hubspot")
    batch = [
        testkit.hubspot_contact_creation(),
        testkit.hubspot_deal_stage_change(testkit.HUBSPOT_OPEN_DEAL_ID, "qualifiedtobuy", event_id=2),
        testkit.hubspot_deal_stage_change(event_id=3),
    ]
    status, answer = relay.post(signed("hubspot", batch))
    assert status == 200, answer
    lead, open_stage, won = answer["events"]
    assert lead["conversions"] == [str(conversion_id("hubspot", "123", "lead"))]
    assert open_stage["conversions"] == []
    assert won["conversions"] == [str(conversion_id("hubspot", str(testkit.HUBSPOT_WON_DEAL_ID), "purchase"))]
    # Then the open-stage change read nothing from the CRM
    assert sorted(r["path"] for r in hubspot_api.requests()) == [
        "/crm/v3/objects/contacts/123",
        "/crm/v3/objects/contacts/201",
        "/crm/v3/objects/deals/9001",
    ]
    purchases = [job for _, job, _ in relay.jobs() if job.conversion.name == "purchase"]
    assert {(j.conversion.value.amount_minor, j.conversion.value.currency) for j in purchases} == {
        (150050, "USD")
    }
    assert {j.conversion.attribution.scan_session_id for j in purchases} == {testkit.SCAN_SESSION_ID}


def test_a_hubspot_redelivery_is_a_duplicate(start, hubspot_api):
    # Given HubSpot redelivers the notification (attemptNumber 1, a new signature)
    relay = start("hubspot")
    status, first = relay.post(signed("hubspot", [testkit.hubspot_deal_stage_change(attempt=0)]))
    reads = len(hubspot_api.requests())
    relay.jobs()
    again = relay.post(signed("hubspot", [testkit.hubspot_deal_stage_change(attempt=1)]))
    # Then it is answered like the first (marked duplicate), without reading the CRM or queueing again
    assert again == (status, {**first, "duplicate": True})
    assert len(hubspot_api.requests()) == reads
    assert relay.jobs() == []


def test_a_crm_outage_answers_5xx_releases_the_claim_and_the_retry_succeeds(start, hubspot_api):
    # Given the CRM fails more often than the client retries
    relay = start("hubspot")
    hubspot_api.set_faults(FaultPlan(error_rate=1.0, error_status=503))
    request = signed("hubspot")
    status, answer = relay.post(request)
    assert status >= 500 and answer["reason"]
    assert relay.jobs() == []
    # When HubSpot retries after the CRM recovered, Then it is processed (not a duplicate)
    hubspot_api.set_faults(FaultPlan())
    status, answer = relay.post(request)
    assert (status, answer["status"]) == (200, "accepted")
    assert_well_queued(relay.jobs(), answer["conversions"])


def test_one_crm_hiccup_is_retried_within_the_request(start, hubspot_api):
    relay = start("hubspot")
    hubspot_api.set_faults(FaultPlan(fail_next=1, error_status=503))
    status, answer = relay.post(signed("hubspot"))
    assert (status, answer["status"]) == (200, "accepted")
    assert [r["status"] for r in hubspot_api.requests()][:2] == [503, 200]


def test_a_refused_crm_token_is_a_5xx_so_hubspot_retries_after_the_fix(start, world_secrets, moto_world):
    # Given the token in Secrets Manager is not one the CRM accepts
    boto3.client("secretsmanager").put_secret_value(SecretId=HUBSPOT_TOKEN_SECRET, SecretString="pat-revoked")
    relay = start("hubspot")
    status, answer = relay.post(signed("hubspot"))
    assert status >= 500
    assert "pat-revoked" not in json.dumps(answer)


# --------------------------------------------------------------------------- Pipedrive


def test_a_won_pipedrive_deal_is_an_exact_purchase_and_other_changes_are_not(start):
    relay = start("pipedrive")
    assert relay.post(signed("pipedrive", testkit.pipedrive_deal_won(value=1499.99)))[0] == 200
    (_, job, _), *_ = relay.jobs()
    assert (job.conversion.value.amount_minor, job.conversion.value.currency) == (149999, "EUR")
    assert job.conversion.attribution.scan_session_id == testkit.SCAN_SESSION_ID
    # When only the title of the won deal changes, Then nothing converts
    title = testkit.pipedrive_notification("change", "deal", testkit.pipedrive_deal(), {"title": "x"})
    status, answer = relay.post(signed("pipedrive", title))
    assert (status, answer["conversions"], answer["jobs"]) == (200, [], 0)


def test_pipedrive_credentials_rotate(start):
    # Given the secret holds the old and the new user:password
    relay = start("pipedrive", secret="relay:old-password\nrelay:new-password")
    person = testkit.pipedrive_notification("create", "person", testkit.pipedrive_person())
    for credentials in ("relay:old-password", "relay:new-password"):
        status, answer = relay.post(signed("pipedrive", person, secret=credentials))
        assert status == 200, answer
    assert relay.post(signed("pipedrive", person, secret="relay:older-password"))[0] == 401


def test_a_pipedrive_retry_is_a_duplicate(start):
    relay = start("pipedrive")
    first = relay.post(signed("pipedrive", testkit.pipedrive_deal_won()))
    relay.jobs()
    retry = testkit.pipedrive_deal_won()
    retry["meta"]["attempt"] = 2
    assert relay.post(signed("pipedrive", retry)) == (first[0], {**first[1], "duplicate": True})
    assert relay.jobs() == []


def test_a_deal_won_through_a_v1_webhook_is_relayed_and_its_v2_twin_is_a_duplicate(start):
    # Given a deal won, reported by a v1 webhook (Pipedrive runs v1 and v2 side by side)
    relay = start("pipedrive")
    v1 = testkit.pipedrive_v1_notification(
        "updated", "deal", testkit.pipedrive_v1_deal(), testkit.pipedrive_v1_deal(status="open")
    )
    status, answer = relay.post(signed("pipedrive", v1))
    # Then it is the purchase a v2 webhook makes, queued with its exact amount and attribution
    assert (status, answer["status"], answer["jobs"] > 0) == (200, "accepted", True), answer
    (_, job, _), *_ = relay.jobs()
    assert job.conversion.conversion_id == conversion_id("pipedrive", "9101", "purchase")
    assert (job.conversion.value.amount_minor, job.conversion.value.currency) == (149999, "EUR")
    assert job.conversion.attribution.scan_session_id == testkit.SCAN_SESSION_ID
    # When a v2 webhook reports the same deal won, Then it is a duplicate and nothing more is queued
    status, answer = relay.post(signed("pipedrive", testkit.pipedrive_deal_won()))
    assert (status, answer.get("duplicate")) == (200, True)
    assert relay.jobs() == []


def test_a_pipedrive_v1_body_without_meta_is_parked(start):
    relay = start("pipedrive")
    status, answer = relay.post(signed("pipedrive", {"v": 1, "current": {"id": 1}, "event": "added.person"}))
    assert (status, answer["status"], answer["reason"]) == (200, "parked", "malformed_payload")


# --------------------------------------------------------------------------- Paddle


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
def test_paddles_sdk_vectors_pass_the_handler(start, fixture: str, header: str):
    # Given the Paddle SDK's signed notifications (2024: the age check is off)
    relay = start(
        "paddle",
        secret="pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef+vmtjJYq4mSnHNzvc8uWoJ1I",
        sources={"paddle": {"signing_tolerance_seconds": 0}},
    )
    body = (FIXTURES / "paddle" / fixture).read_bytes().strip()
    status, answer = relay.post(
        testkit.http_api_event("/webhooks/paddle", body, {"Paddle-Signature": header})
    )
    # Then verified and, customer.created being no conversion, ignored with 200
    assert (status, answer["status"], answer["reason"]) == (200, "ignored", "unsupported_event_type")


def test_paddles_rotation_vector_passes_the_handler(start):
    # Given two configured secrets (one wrong) and a header with a dummy h1 beside the real one
    secrets = "pdl_ntf_wrong\npdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_WvRO0eL4Bj9rgYYIBZY6wZhG4EHy9jzh"
    relay = start("paddle", secret=secrets, sources={"paddle": {"signing_tolerance_seconds": 0}})
    header = "ts=1696195954;h1=dummy;h1=d96299976a6eb066f484d7fde011ac56fc32b38fc9940bc419d6e537fdc6ef02"
    status, answer = relay.post(
        testkit.http_api_event("/webhooks/paddle", b"hello-world", {"Paddle-Signature": header})
    )
    assert (status, answer["status"], answer["reason"]) == (
        200,
        "parked",
        "malformed_payload",
    )  # signed; not JSON


def test_the_same_paddle_event_from_another_notification_is_a_duplicate(start):
    relay = start("paddle")
    transaction = testkit.paddle_transaction()
    first = relay.post(signed("paddle", testkit.paddle_notification("transaction.completed", transaction)))
    (_, job, _), *_ = relay.jobs()
    assert job.conversion.value.amount_minor == 65215 and len(job.conversion.items) == 3
    other = testkit.paddle_notification(
        "transaction.completed", transaction, notification_id="ntf_other_destination"
    )
    assert relay.post(signed("paddle", other)) == (first[0], {**first[1], "duplicate": True})
    assert relay.jobs() == []


# --------------------------------------------------------------------------- Shopify


def test_shopifys_derived_vector_passes_the_signature_check_of_the_handler(start):
    # Given SOURCES.md's check value (key "hush" over a Stripe fixture's bytes)
    relay = start("shopify", secret="hush")
    body = (FIXTURES / "stripe" / "setup_intent.created.json").read_bytes()
    headers = {
        "X-Shopify-Hmac-Sha256": "Es3iPXmTAF4M2vaQJH040+IAEyR2DhAlafSwIqt4Ir4=",
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Webhook-Id": "vector",
    }
    status, answer = relay.post(testkit.http_api_event("/webhooks/shopify", body, headers))
    # Then the signature passes and the body is parked: it is not an order (its id is a Stripe one)
    assert (status, answer["status"], answer["reason"]) == (200, "parked", "malformed_payload")
    assert "id" in answer["detail"]


def test_a_shopify_test_order_is_ignored_unless_test_mode_is_allowed(start):
    relay = start("shopify", sources={"shopify": {"allow_test_mode": False}})
    status, answer = relay.post(signed("shopify", testkit.shopify_order(test=True)))
    assert (status, answer["status"], answer["reason"]) == (200, "ignored", "test_mode_not_allowed")
    assert relay.jobs() == []


def test_a_captured_shopify_body_replayed_under_new_headers_queues_nothing(start):
    # Given a paid order relayed once
    relay = start("shopify")
    order = testkit.shopify_order()
    first = relay.post(testkit.signed_shopify_http_event(order))
    assert first[0] == 200 and first[1]["jobs"] > 0
    relay.jobs()
    # When the captured body is re-sent as a new delivery, and as a customers/create webhook
    new_delivery = testkit.signed_shopify_http_event(order, webhook_id="00000000-0000-4000-8000-00000000beef")
    as_signup = testkit.signed_shopify_http_event(order, topic="customers/create")
    # Then the first is a duplicate (the same answer), the second is parked (signed, but its body
    # does not fit the topic: nothing to convert), and nothing is queued
    assert relay.post(new_delivery) == (200, {**first[1], "duplicate": True})
    status, answer = relay.post(as_signup)
    assert (status, answer["status"], answer["reason"]) == (200, "parked", "malformed_payload")
    assert relay.jobs() == []


@pytest.mark.parametrize(
    ("topic", "body"),
    [
        ("orders/delete", {"id": 450789469}),
        ("shop/redact", {"shop_id": 954889, "shop_domain": "{shop}.myshopify.com"}),
        (
            "customers/redact",
            {
                "shop_id": 954889,
                "shop_domain": "{shop}.myshopify.com",
                "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
                "orders_to_redact": [299938, 280263, 220458],
            },
        ),
    ],
)
def test_a_shopify_topic_without_a_rule_is_ignored_not_parked(start, topic, body):
    # Given the Shopify function with the local config (no rule for these topics)
    relay = start("shopify")
    # When Shopify's documented body of the topic arrives, signed
    status, answer = relay.post(testkit.signed_shopify_http_event(body, topic=topic))
    # Then it is ignored (Shopify stops retrying), nothing parked or queued
    assert (status, answer["status"], answer["reason"]) == (200, "ignored", "unsupported_event_type")
    assert relay.jobs() == []


def test_a_shopify_order_converts_exactly_with_its_items_and_landing_attribution(start):
    relay = start("shopify")
    assert relay.post(signed("shopify", testkit.shopify_order(total_price="0.30")))[0] == 200
    conversion = relay.jobs()[0][1].conversion
    assert (conversion.value.amount_minor, conversion.value.currency) == (30, "USD")
    assert [(i.product_id, i.quantity, i.unit_amount_minor) for i in conversion.items] == [
        ("632910392", 1, 14999),
        ("632910393", 2, 2500),
    ]
    assert conversion.attribution.fbc == "fb.1.1767243600000.IwAR2xyz"


# --------------------------------------------------------------------------- any backend (/events)


def test_the_standard_webhooks_vector_passes_the_handler(start):
    relay = start(
        "events",
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        sources={"events": {"signing_tolerance_seconds": 0}},
    )
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    status, answer = relay.post(testkit.http_api_event("/events", b'{"test": 2432232314}', headers))
    assert (status, answer["status"], answer["reason"]) == (200, "parked", "malformed_payload")  # no `type`
    assert "no event type" in answer["detail"]


def test_a_backend_signing_with_the_official_library_is_relayed(start):
    # Given a backend that signs with the `standardwebhooks` library
    relay = start("events")
    body = json.dumps(
        testkit.backend_conversion("purchase", order_id="ord_2", value={"amount": 0.29, "currency": "USD"})
    )
    now = datetime.now(UTC)
    signature = standardwebhooks.Webhook(testkit.LOCAL_EVENTS_SECRET).sign("msg_official_1", now, body)
    headers = {
        "webhook-id": "msg_official_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    status, answer = relay.post(testkit.http_api_event("/events", body.encode(), headers))
    # Then it is accepted, and 0.29 (a JSON number) is exactly 29 cents
    assert status == 200, answer
    assert {job.conversion.value.amount_minor for _, job, _ in relay.jobs()} == {29}


def test_a_product_view_reaches_quicklizard_and_a_bad_canonical_body_is_parked(start):
    relay = start("events")
    view = testkit.backend_conversion(
        "product_view",
        value={"amount": "19.99", "currency": "USD"},
        items=[{"product_id": "sku-pro", "unit_amount": "19.99", "url": "https://shop.example.com/p/pro"}],
    )
    status, answer = relay.post(signed("events", view))
    assert status == 200
    kinds = {kind for kind, _, _ in relay.jobs()}
    assert "quicklizard" in kinds and "scanova" not in kinds  # no scan session: Scanova is skipped
    assert answer["skipped"]["scanova:missing_scan_session_id"] == 1
    bad = testkit.backend_conversion("purchase", value={"amount": "19.999", "currency": "USD"})
    status, answer = relay.post(signed("events", bad))
    assert (status, answer["status"]) == (200, "parked") and "more decimals than USD" in answer["detail"]


def test_a_custom_shape_is_mapped_by_the_local_config_rules_and_unknown_types_are_ignored(start):
    relay = start("events")
    sample = json.loads((REPO_ROOT / "events" / "backend" / "salesforce_opportunity_won.json").read_text())
    status, answer = relay.post(testkit.resign_http_event(sample))
    assert status == 200, answer
    conversion = relay.jobs()[0][1].conversion
    assert (conversion.value.amount_minor, conversion.value.currency) == (120050, "EUR")
    status, answer = relay.post(signed("events", {"type": "invoice.viewed"}))
    assert (status, answer["status"]) == (200, "ignored")


# --------------------------------------------------------------------------- the committed samples


SAMPLES = sorted(
    p
    for folder in ("hubspot", "pipedrive", "paddle", "shopify", "backend")
    for p in (REPO_ROOT / "events" / folder).glob("*.json")
)
FOLDER_SOURCE = {"backend": "events"}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_committed_sample_is_accepted_by_its_handler(start, path: Path):
    # Given a sample as `make send` posts it (re-signed now), When its handler takes it, Then 200
    relay = start(FOLDER_SOURCE.get(path.parent.name, path.parent.name))
    status, answer = relay.post(testkit.resign_http_event(json.loads(path.read_text())))
    assert status == 200, answer
    answered = answer.get("events", [answer])
    assert all(a["status"] == "accepted" for a in answered)


def test_a_quicklizard_skip_known_at_ingest_is_in_the_webhook_answer(start):
    """Given a HubSpot deal (no product lines, and no Stripe Checkout to read lines from), When its
    webhook is relayed, Then QuickLizard's no_line_items skip is decided at ingest: in the answer's
    `skipped`, and no QuickLizard job is queued only to be skipped at delivery."""
    relay = start("hubspot")

    status, answer = relay.post(signed("hubspot"))

    assert status == 200, answer
    assert answer["skipped"] == {"quicklizard:no_line_items": 1}
    assert not any(job.destination == "quicklizard" for _, job, _ in relay.jobs())
