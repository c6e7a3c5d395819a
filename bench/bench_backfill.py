"""Backfill and reconcile benchmark: events per second through the ingest pipeline from the
providers' APIs, and what a reconcile run costs in API calls when nothing is missing.

Throughput: N Stripe checkouts (`--quick`: 200; else 2,000) in the Stripe API sandbox (loopback
HTTP, 100 a page, the reader's own pacing of 20 calls a second) go through relay.backfill's
runner and the real ingest pipeline (claims in DynamoDB, six jobs per event by SendMessageBatch)
into moto's DynamoDB (in-process, from template.yaml) and an SQS that answers at once (moto's
recounts a queue on every send: quadratic in thousands of jobs). Events per second are wall
clock, moto's own work included; the relay's CPU per event excludes the CPU moto spends
answering (as in bench_delivery). In AWS each event costs the same calls at DynamoDB's and SQS's latency. A
second pass reads them again: every event is a duplicate (one claim read each).

Reconcile: every provider holds events of the last day, all relayed already; one
ReconcileFunction run (relay.backfill.reconcile) is counted per source: API calls, events
listed, events found missing. The goal is one list call per source per run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import yaml
from moto import mock_aws

import testkit
from bench.bench_delivery import _MotoCpu  # one way to leave moto's CPU out
from local.stack.sandboxes import PROVIDER_API_SANDBOXES as SANDBOXES
from local.world import REPO_ROOT, build_world
from sandboxes.stripe_api import StripeApiSandbox

FULL_EVENTS, QUICK_EVENTS = 2_000, 200
RECONCILE_EVENTS = 40  # per provider, all in the last day and all relayed already
REGION = "us-east-1"


def _environment() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        POWERTOOLS_SERVICE_NAME="conversion-relay",
        POWERTOOLS_METRICS_NAMESPACE="ConversionRelay",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)


@contextlib.contextmanager
def _providers() -> Iterator[dict[str, Any]]:
    # Limits off: the bench measures the relay and counts calls, not the sandboxes' quotas.
    started = {name: cls(seed=False, limit=(0, 1.0)).start() for name, cls in SANDBOXES.items()}
    try:
        yield started
    finally:
        for sandbox in started.values():
            sandbox.stop()


def _config(providers: dict[str, Any], folder: Path) -> Path:
    config = yaml.safe_load((REPO_ROOT / "config" / "relay.local.yaml").read_text())
    for name, sandbox in providers.items():
        settings = config["sources"].setdefault(name, {}).setdefault("settings", {})
        settings["api_base"] = f"{sandbox.url}/admin/api/2025-07" if name == "shopify" else sandbox.url
    config["sources"]["hubspot"]["settings"]["portal_id"] = testkit.HUBSPOT_PORTAL_ID  # spares a call a run
    path = folder / "relay.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class _SqsSink:
    """SendMessageBatch answered at once: moto's SQS recounts a queue on every send, which makes
    thousands of jobs quadratic; the claims stay moto's DynamoDB (bench_ingest does the same)."""

    def __init__(self) -> None:
        self.jobs = 0

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.jobs += len(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def _backfill(world: Any, config: Path, sources: list[str], *, sqs: Any = None, **api: Any) -> Any:
    from aws_lambda_powertools import Metrics
    from relay.backfill.wiring import assemble

    environ = {
        **world.functions["StripeWebhookFunction"].environment,
        "RELAY_CONFIG": str(config),
        "HUBSPOT_TOKEN": testkit.LOCAL_HUBSPOT_TOKEN,
    }
    return assemble(
        sources=sources,
        environ=environ,
        dynamodb=boto3.client("dynamodb"),
        sqs=sqs or _SqsSink(),
        keys={p: (lambda p=p: testkit.LOCAL_READ_KEYS[p]) for p in sources},
        metrics=Metrics(namespace="ConversionRelay"),
        api_options=api,
    )


def _seed_stripe(stripe: StripeApiSandbox, count: int, *, delivered: bool = True) -> None:
    now = datetime.now(UTC)
    for n in range(count):
        tag = uuid.uuid4().hex[:10]
        created = int((now - timedelta(seconds=30 + n * 20)).timestamp())
        session = testkit.checkout_session(session_id=f"cs_{tag}", payment_intent=f"pi_{tag}")
        event = testkit.stripe_event(
            "checkout.session.completed", session, event_id=f"evt_{tag}", created=created
        )
        if delivered:
            stripe.seed_event(event)
        else:
            stripe.observe_webhook({}, json.dumps(event).encode(), 503)


def _seed_others(providers: dict[str, Any], count: int) -> None:
    now = datetime.now(UTC)
    for n in range(count):
        at = now - timedelta(minutes=5 + n * 20)
        iso = at.isoformat()
        tag = uuid.uuid4().hex[:10]
        body = testkit.paddle_notification(
            "transaction.completed",
            testkit.paddle_transaction(transaction_id=f"txn_{tag}"),
            event_id=f"evt_{tag}",
            notification_id=f"ntf_{tag}",
            occurred_at=iso,
        )
        providers["paddle"].observe_webhook({}, json.dumps(body).encode(), 503 if n % 4 == 0 else 200)
        order = testkit.shopify_order(order_id=5_000_000 + n)
        order.update(created_at=iso, processed_at=iso, updated_at=iso)
        providers["shopify"].seed_order(order)
        props = {
            "amount": "99.00",
            "deal_currency_code": "USD",
            "pipeline": "default",
            "dealstage": "closedwon",
        }
        providers["hubspot"].seed_deal(str(6_000_000 + n), {**props, "closedate": iso}, ["201"])
        deal = testkit.pipedrive_deal(deal_id=7_000_000 + n)
        providers["pipedrive"].seed_deal({**deal, "won_time": iso, "update_time": iso})


def _throughput(quick: bool) -> tuple[list[list[Any]], dict[str, float]]:
    from relay.backfill.history import Window
    from relay.backfill.runner import BackfillPlan

    count = QUICK_EVENTS if quick else FULL_EVENTS
    rows, figures = [], {}
    with mock_aws(), _providers() as providers, tempfile.TemporaryDirectory() as folder:
        world = build_world(boto3.Session(region_name=REGION))
        _seed_stripe(providers["stripe"], count)
        config = _config(providers, Path(folder))
        now = datetime.now(UTC)
        plan = BackfillPlan(("stripe",), window=Window(now - timedelta(days=2), now))
        for label in ("first pass: relayed", "second pass: duplicates"):
            backfill = _backfill(world, config, ["stripe"])  # the reader's own pacing (20 calls/s)
            moto = _MotoCpu()
            started, cpu = time.perf_counter(), time.process_time()
            with contextlib.redirect_stdout(io.StringIO()), moto.measuring():  # the pipeline's EMF lines
                summary = backfill.run(plan)
            seconds = time.perf_counter() - started
            relay_ms = (time.process_time() - cpu - moto.seconds) * 1000 / len(summary.results)
            rate = len(summary.results) / seconds
            jobs = sum(r.jobs for r in summary.results)
            calls = summary.api_calls["stripe"]
            rows.append(["stripe", label, len(summary.results), calls, jobs, seconds, rate, relay_ms])
            key = "relayed" if label.startswith("first") else "duplicates"
            figures[f"backfill_{key}_events_per_s"] = round(rate, 1)
            figures[f"backfill_{key}_relay_cpu_ms_per_event"] = round(relay_ms, 2)
            figures[f"backfill_{key}_api_calls"] = calls
    return rows, figures


def _reconcile() -> tuple[list[list[Any]], dict[str, float]]:
    from aws_lambda_powertools import Metrics
    from relay.backfill.history import Window
    from relay.backfill.reconcile import Reconciler
    from relay.backfill.runner import BackfillPlan

    rows, figures = [], {}
    with mock_aws(), _providers() as providers, tempfile.TemporaryDirectory() as folder:
        world = build_world(boto3.Session(region_name=REGION))
        _seed_stripe(providers["stripe"], RECONCILE_EVENTS // 4, delivered=False)  # failed, then relayed
        _seed_stripe(providers["stripe"], RECONCILE_EVENTS)
        _seed_others(providers, RECONCILE_EVENTS)
        config = _config(providers, Path(folder))
        sources = list(SANDBOXES)
        now = datetime.now(UTC)
        with contextlib.redirect_stdout(io.StringIO()):
            _backfill(world, config, sources, min_interval=0).run(
                BackfillPlan(tuple(sources), window=Window(now - timedelta(days=2), now))
            )  # everything relayed: nothing is missing
            reconciler = Reconciler(
                _backfill(world, config, sources),
                window_hours=26,
                metrics=Metrics(namespace="ConversionRelay"),
            )
            started = time.perf_counter()
            report = reconciler.run({})
            seconds = time.perf_counter() - started
        for source, found in report["sources"].items():
            rows.append(
                [source, found["listed"], found["api_calls"], found["missing"], found["api_calls"] * 24]
            )
            figures[f"reconcile_{source}_api_calls_per_run"] = found["api_calls"]
        figures["reconcile_run_seconds"] = round(seconds, 2)
    return rows, figures


def run(quick: bool = False) -> dict[str, Any]:
    _environment()
    throughput, figures = _throughput(quick)
    reconcile, reconcile_figures = _reconcile()
    figures.update(reconcile_figures)
    rows = [
        ["backfill", source, what, events, calls, jobs, round(seconds, 2), round(rate, 1), round(cpu, 2)]
        for source, what, events, calls, jobs, seconds, rate, cpu in throughput
    ]
    rows += [
        [
            "reconcile, nothing missing",
            source,
            f"{listed} listed, {missing} missing",
            listed,
            calls,
            0,
            "",
            "",
            "",
        ]
        for source, listed, calls, missing, _per_day in reconcile
    ]
    return {
        "title": "Backfill through the pipeline, and reconcile's API calls",
        "columns": [
            "run",
            "source",
            "what",
            "events",
            "API calls",
            "jobs queued",
            "seconds",
            "events/s",
            "relay CPU ms/event",
        ],
        "rows": rows,
        "figures": figures,
        "goals": {
            f"reconcile_{source}_api_calls_per_run": "== 1 (one list call per source per run)"
            for source in SANDBOXES
        },
        "notes": [
            "events/s: wall clock with moto in-process (most of it); relay CPU leaves moto's out",
            "a duplicate costs one claim read; a relayed event a claim, its jobs and the claim's result",
            "reconcile: Stripe lists delivery_success=false, Paddle failed/needs_retry notifications",
            "(the failed ones relayed already); Shopify, HubSpot, Pipedrive the day's paid orders/won deals",
            "an hourly schedule makes that 24 calls a day per source",
        ],
    }
