"""Backfill and reconcile through the real ingest pipeline: the moto world of template.yaml, the
provider-API sandboxes over loopback, the real webhook handlers where a webhook takes part.

What is proven: an event that arrives both ways counts once (whichever comes first, for the
event-log providers and the object providers alike); `--destination` queues to that one only,
even for events already relayed; a dry run writes and sends nothing; a parked event is relayed
after the fix and forgotten; what a source cannot read is parked once; the reconciler counts
what it found missing per source, names ids only, and one failing provider does not stop the
others. Tests read Given / When / Then in their comments.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from aws_lambda_powertools import Metrics
from relay.backfill.history import Window
from relay.backfill.reconcile import Reconciler
from relay.backfill.runner import Backfill, BackfillPlan, Outcome
from relay.errors import BackfillError
from relay.models import DeliveryJob
from relay.parking import ParkedEvents

import testkit
from local.lambda_context import LambdaContext
from local.world import REPO_ROOT, World
from sandboxes import FaultPlan
from sandboxes.hubspot_api import HubSpotApiSandbox
from sandboxes.paddle_api import PaddleApiSandbox
from sandboxes.pipedrive_api import PipedriveApiSandbox
from sandboxes.shopify_api import ShopifyApiSandbox
from sandboxes.stripe_api import StripeApiSandbox

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # The relay's modules name their loggers after the service when first imported (as in
    # Lambda, where the environment comes first): this module may be the first to import them.
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "conversion-relay")


LOCAL_CONFIG = REPO_ROOT / "config" / "relay.local.yaml"
QUEUES = ("ScanovaQueue", "PagentQueue", "ScalevQueue", "QuickLizardQueue")
DESTINATIONS = 6  # config/relay.local.yaml
FUNCTIONS = {"stripe": "StripeWebhookFunction", "shopify": "ShopifyWebhookFunction"}


# --------------------------------------------------------------------------- harness


@pytest.fixture
def providers() -> Iterator[dict[str, Any]]:
    """Every provider's API sandbox, without seeded history (HubSpot keeps its CRM records)."""
    with (
        StripeApiSandbox(seed=False).start() as stripe,
        PaddleApiSandbox(seed=False).start() as paddle,
        ShopifyApiSandbox(seed=False).start() as shopify,
        HubSpotApiSandbox().start() as hubspot,
        PipedriveApiSandbox(seed=False).start() as pipedrive,
    ):
        yield {
            "stripe": stripe,
            "paddle": paddle,
            "shopify": shopify,
            "hubspot": hubspot,
            "pipedrive": pipedrive,
        }


def write_config(path: Path, providers: dict[str, Any], **stripe: Any) -> Path:
    """The local config with every source's API at its sandbox (`stripe` changes the stripe source)."""
    config = yaml.safe_load(LOCAL_CONFIG.read_text())
    for name, sandbox in providers.items():
        base = f"{sandbox.url}/admin/api/2025-07" if name == "shopify" else sandbox.url
        config["sources"].setdefault(name, {}).setdefault("settings", {})["api_base"] = base
    config["sources"]["stripe"].update(stripe)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def build(world: World, config: Path, *, dry_run: bool = False) -> Backfill:
    from relay.backfill.wiring import assemble  # after service_name: it imports the pipeline

    environ = {
        **world.functions["StripeWebhookFunction"].environment,
        "RELAY_CONFIG": str(config),
        "HUBSPOT_TOKEN": testkit.LOCAL_HUBSPOT_TOKEN,
    }
    return assemble(
        sources=["stripe", "paddle", "shopify", "hubspot", "pipedrive"],
        environ=environ,
        dynamodb=boto3.client("dynamodb"),
        sqs=boto3.client("sqs"),
        keys={p: (lambda p=p: testkit.LOCAL_READ_KEYS[p]) for p in testkit.LOCAL_READ_KEYS},
        metrics=Metrics(namespace="ConversionRelay"),
        dry_run=dry_run,
        api_options={"min_interval": 0},
    )


def window(days: float = 1) -> Window:
    now = datetime.now(UTC)
    return Window(now - timedelta(days=days), now + timedelta(minutes=1))


def plan(*sources: str, **options: Any) -> BackfillPlan:
    return BackfillPlan(sources, **({"window": window()} | options))


def drain(world: World) -> list[DeliveryJob]:
    """Every queued job (the queues are emptied)."""
    sqs, found = boto3.client("sqs"), []
    for logical_id in QUEUES:
        while batch := sqs.receive_message(QueueUrl=world.queue_url(logical_id), MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in batch:
                found.append(DeliveryJob.model_validate_json(message["Body"]))
                sqs.delete_message(
                    QueueUrl=world.queue_url(logical_id), ReceiptHandle=message["ReceiptHandle"]
                )
    return found


def table_items(world: World) -> list[dict[str, Any]]:
    return boto3.client("dynamodb").scan(TableName=world.table_name)["Items"]


def checkout(minutes_ago: float = 5, **session: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    created = int((datetime.now(UTC) - timedelta(minutes=minutes_ago)).timestamp())
    data = testkit.checkout_session(session_id=f"cs_{tag}", payment_intent=f"pi_{tag}", **session)
    return testkit.stripe_event("checkout.session.completed", data, event_id=f"evt_{tag}", created=created)


def handler(world: World, load_handler, provider: str, config: Path):
    env = {"RELAY_CONFIG": str(config), "WEBHOOK_SECRET": testkit.LOCAL_WEBHOOK_SECRETS[provider]}
    module = load_handler(world.functions[FUNCTIONS[provider]], env)

    def post(api_event: dict[str, Any]) -> dict[str, Any]:
        answer = module.lambda_handler(api_event, LambdaContext(function_name=FUNCTIONS[provider]))
        assert answer["statusCode"] == 200, answer
        return json.loads(answer["body"])

    return post


# --------------------------------------------------------------------------- both ways, once


def test_an_event_that_never_arrived_is_relayed_once_and_its_late_webhook_is_a_duplicate(
    moto_world: World, providers: dict[str, Any], tmp_path: Path, load_handler
) -> None:
    # Given a checkout Stripe holds, whose webhook never reached the relay
    event = checkout()
    providers["stripe"].seed_event(event, delivered=False)
    config = write_config(tmp_path / "relay.yaml", providers)
    backfill = build(moto_world, config)
    # When the window is backfilled, twice
    first = backfill.run(plan("stripe"))
    second = backfill.run(plan("stripe"))
    # Then it is relayed once, to every destination, and the second run finds it claimed
    assert [(r.event_id, r.outcome, r.jobs) for r in first.results] == [
        (event["id"], Outcome.RELAYED, DESTINATIONS)
    ]
    assert [r.outcome for r in second.results] == [Outcome.DUPLICATE]
    assert len(drain(moto_world)) == DESTINATIONS
    # And when Stripe's retry finally arrives, it answers like the backfill and queues nothing
    answer = handler(moto_world, load_handler, "stripe", config)(testkit.signed_stripe_http_event(event))
    assert answer["status"] == "accepted" and answer["event_id"] == event["id"]
    assert drain(moto_world) == []


def test_an_order_its_webhook_brought_is_a_duplicate_when_the_orders_api_lists_it(
    moto_world: World, providers: dict[str, Any], tmp_path: Path, load_handler
) -> None:
    # Given a paid Shopify order whose orders/paid webhook was relayed (the shop holds the order)
    order = testkit.shopify_order(order_id=7_700_001)
    now = datetime.now(UTC).isoformat()
    order.update(processed_at=now, created_at=now, updated_at=now)
    providers["shopify"].seed_order(order)
    config = write_config(tmp_path / "relay.yaml", providers)
    relayed = handler(moto_world, load_handler, "shopify", config)(testkit.signed_shopify_http_event(order))
    assert relayed["status"] == "accepted"
    queued = len(drain(moto_world))
    # When the orders API is read back
    summary = build(moto_world, config).run(plan("shopify"))
    # Then the order is the same claim: a duplicate, nothing queued again
    assert [(r.event_id, r.outcome) for r in summary.results] == [("orders/paid:7700001", Outcome.DUPLICATE)]
    assert queued and drain(moto_world) == []


def test_won_deals_become_the_webhooks_purchase_with_the_crm_read(
    moto_world: World, providers: dict[str, Any], tmp_path: Path
) -> None:
    # Given a deal won in HubSpot and one in Pipedrive, in the last hour, never relayed
    closed = datetime.now(UTC).isoformat()
    props = {"amount": "250.00", "deal_currency_code": "EUR", "pipeline": "default", "dealstage": "closedwon"}
    providers["hubspot"].seed_deal("8101", {**props, "closedate": closed}, ["201"])
    deal = {**testkit.pipedrive_deal(deal_id=8102), "won_time": closed, "update_time": closed}
    providers["pipedrive"].seed_deal(deal)
    # When both are backfilled
    summary = build(moto_world, write_config(tmp_path / "relay.yaml", providers)).run(
        plan("hubspot", "pipedrive")
    )
    # Then each is the purchase its webhook would have made, keyed like its webhook
    outcomes = {r.event_id: (r.outcome, r.jobs > 0) for r in summary.results}
    assert outcomes == {
        "deal:8101:dealstage:closedwon": (Outcome.RELAYED, True),
        "deal:8102:won": (Outcome.RELAYED, True),
    }
    purchases = {(j.conversion.source.provider, j.conversion.value.amount_minor) for j in drain(moto_world)}
    assert purchases == {("hubspot", 25000), ("pipedrive", 149999)}


# --------------------------------------------------------------------------- destination, dry run


def test_a_destination_backfill_queues_only_to_it_even_for_events_already_relayed(
    moto_world: World, providers: dict[str, Any], tmp_path: Path
) -> None:
    # Given two checkouts relayed to every destination
    events = [checkout(), checkout(minutes_ago=30)]
    for event in events:
        providers["stripe"].seed_event(event)
    backfill = build(moto_world, write_config(tmp_path / "relay.yaml", providers))
    backfill.run(plan("stripe"))
    drain(moto_world)
    claims = table_items(moto_world)
    # When the window is backfilled for Scanova alone, twice
    for _ in range(2):
        summary = backfill.run(plan("stripe", destination="scanova"))
        assert [(r.outcome, r.jobs) for r in summary.results] == [(Outcome.RELAYED, 1)] * 2
    # Then only Scanova's queue got jobs (its ledger keeps each once), and no claim changed
    assert Counter(j.destination for j in drain(moto_world)) == {"scanova": 4}
    assert table_items(moto_world) == claims


def test_a_dry_run_writes_and_sends_nothing_and_says_where_each_event_would_go(
    moto_world: World, providers: dict[str, Any], tmp_path: Path
) -> None:
    # Given a checkout without a Scanova session, one already relayed, and an unmappable one
    no_session = checkout(metadata={"fbc": "fb.1.1.x"})
    relayed = checkout()
    unmappable = checkout(currency="usdx")
    for event in (no_session, relayed, unmappable):
        providers["stripe"].seed_event(event)
    config = write_config(tmp_path / "relay.yaml", providers)
    build(moto_world, config).run(plan("stripe", event_ids=(relayed["id"],), window=None))
    drain(moto_world)
    before = table_items(moto_world)
    # When the window is dry-run
    summary = build(moto_world, config, dry_run=True).run(plan("stripe", dry_run=True))
    # Then the table and the queues are as they were, and the results say what would happen
    assert table_items(moto_world) == before and drain(moto_world) == []
    results = {r.event_id: r for r in summary.results}
    assert results[relayed["id"]].outcome is Outcome.DUPLICATE
    assert results[unmappable["id"]].outcome is Outcome.PARKED
    would = results[no_session["id"]]
    assert would.outcome is Outcome.WOULD_RELAY
    assert "scanova" not in would.destinations and "scanova:missing_scan_session_id" in would.skipped


# --------------------------------------------------------------------------- parked, unreadable


def test_a_parked_event_is_relayed_after_the_config_fix_and_forgotten(
    moto_world: World, providers: dict[str, Any], tmp_path: Path, load_handler
) -> None:
    # Given a config rule that does not fit: quotes are leads keyed by a field the checkout lacks
    rule = {
        "event": "checkout.session.completed",
        "name": "lead",
        "when": "data.object.metadata.kind == 'quote'",
        "order_key": "data.object.quote",
    }
    broken = write_config(tmp_path / "broken.yaml", providers, rules=[rule])
    quote = checkout(metadata={**testkit.ATTRIBUTION_METADATA, "kind": "quote"})
    providers["stripe"].observe_webhook({}, json.dumps(quote).encode(), 200)
    answer = handler(moto_world, load_handler, "stripe", broken)(testkit.signed_stripe_http_event(quote))
    assert (answer["status"], answer["reason"]) == ("parked", "unmappable")
    parked = ParkedEvents(boto3.client("dynamodb"), moto_world.table_name)
    assert parked.get("stripe", quote["id"]) is not None
    # When the rule is fixed and the parked events are backfilled
    fixed = write_config(tmp_path / "fixed.yaml", providers, rules=[{**rule, "order_key": "data.object.id"}])
    summary = build(moto_world, fixed).run(plan("stripe", parked=True, window=None))
    # Then the event is relayed (purchase and lead), its record forgotten, and a rerun finds nothing
    assert [(r.event_id, r.outcome) for r in summary.results] == [(quote["id"], Outcome.RELAYED)]
    assert {j.conversion.name for j in drain(moto_world)} == {"purchase", "lead"}
    assert parked.get("stripe", quote["id"]) is None
    assert build(moto_world, fixed).run(plan("stripe", parked=True, window=None)).results == []


def test_what_a_source_cannot_read_is_parked_once(
    moto_world: World, providers: dict[str, Any], tmp_path: Path
) -> None:
    # Given a Paddle transaction whose total is not an amount
    body = testkit.paddle_notification(
        "transaction.completed",
        {**testkit.paddle_transaction(), "details": {"totals": {"grand_total": "a lot"}}},
        event_id="evt_01unreadable",
        notification_id="ntf_01unreadable",
        occurred_at=datetime.now(UTC).isoformat(),
    )
    providers["paddle"].observe_webhook({}, json.dumps(body).encode(), 200)
    backfill = build(moto_world, write_config(tmp_path / "relay.yaml", providers))
    # When the window is backfilled twice
    first, second = backfill.run(plan("paddle")), backfill.run(plan("paddle"))
    # Then it is parked by its id the first time (for relay parked ls: the amount is judged while
    # mapping, relay.money_rules), and left parked after
    assert [(r.outcome, r.detail is not None) for r in first.results] == [(Outcome.PARKED, True)]
    assert [r.outcome for r in second.results] == [Outcome.STILL_PARKED]
    record = ParkedEvents(boto3.client("dynamodb"), moto_world.table_name).get("paddle", "evt_01unreadable")
    assert record is not None and record.times == 1 and record.reason == "invalid_money"
    assert drain(moto_world) == []


# --------------------------------------------------------------------------- reconcile


def test_the_reconciler_counts_what_it_found_missing_per_source_with_ids_only(
    moto_world: World,
    providers: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a checkout whose webhook failed (the relay answered 503) and one delivered and relayed
    failed, delivered = checkout(minutes_ago=10), checkout(minutes_ago=20)
    providers["stripe"].observe_webhook({}, json.dumps(failed).encode(), 503)
    providers["stripe"].seed_event(delivered)
    backfill = build(moto_world, write_config(tmp_path / "relay.yaml", providers))
    backfill.run(plan("stripe", event_ids=(delivered["id"],), window=None))
    reconciler = Reconciler(backfill, window_hours=26, metrics=Metrics(namespace="ConversionRelay"))
    # When a reconcile run reads Stripe and Pipedrive
    report = reconciler.run({"sources": ["stripe", "pipedrive"]})
    # Then the failed one was missing and relayed; the delivered one is not listed at all
    assert report["sources"]["stripe"]["missing"] == 1 and report["sources"]["pipedrive"]["missing"] == 0
    assert report["sources"]["stripe"]["api_calls"] == 1  # delivery_success=false: one call
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    missing = {(m["source"], m["EventsFoundMissing"][0]) for m in lines if "EventsFoundMissing" in m}
    assert missing == {("stripe", 1), ("pipedrive", 0)}
    (log,) = [r for r in caplog.records if r.getMessage().startswith("reconciled:")]
    assert log.missing_ids == [failed["id"]] and "jenny" not in json.dumps(log.__dict__, default=str).lower()
    # And a second run finds nothing missing
    assert reconciler.run({"sources": ["stripe"]})["sources"]["stripe"]["missing"] == 0


def test_a_failing_provider_does_not_stop_the_others_and_fails_the_run(
    moto_world: World, providers: dict[str, Any], tmp_path: Path
) -> None:
    failed = checkout()
    providers["stripe"].observe_webhook({}, json.dumps(failed).encode(), 503)
    providers["paddle"].set_faults(FaultPlan(error_rate=1.0))
    backfill = build(moto_world, write_config(tmp_path / "relay.yaml", providers))
    reconciler = Reconciler(backfill, window_hours=26, metrics=Metrics(namespace="ConversionRelay"))
    with pytest.raises(BackfillError, match="paddle"):
        reconciler.run({"sources": ["paddle", "stripe"]})
    assert [j.conversion.source.event_id for j in drain(moto_world)] == [failed["id"]] * DESTINATIONS


def test_the_reconcile_function_runs_from_its_template_environment(
    moto_world: World, providers: dict[str, Any], tmp_path: Path, load_handler
) -> None:
    # Given ReconcileFunction's environment with a Stripe read key (and none for the others)
    failed = checkout()
    providers["stripe"].observe_webhook({}, json.dumps(failed).encode(), 503)
    config = write_config(tmp_path / "relay.yaml", providers)
    env = {"RELAY_CONFIG": str(config), "STRIPE_READ_KEY": testkit.LOCAL_READ_KEYS["stripe"]}
    app = load_handler(moto_world.functions["ReconcileFunction"], env)
    # When EventBridge's scheduled event arrives
    scheduled = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    report = app.lambda_handler(scheduled, LambdaContext(function_name="ReconcileFunction"))
    # Then only Stripe is reconciled, and the missing checkout is queued
    assert list(report["sources"]) == ["stripe"] and report["sources"]["stripe"]["missing"] == 1
    assert len(drain(moto_world)) == DESTINATIONS
