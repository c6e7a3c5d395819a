"""Delivery benchmark: 10,000 jobs through each deliver function (`--quick`: 300).

Each vendor's jobs reach its deliverer (in-process) as Lambda's SQS event source hands them
over: events of up to 100 records, a record the answer lists as failed coming back in a
later event, received once more. The ledger table and the dead-letter queues are moto's
(in-process, from template.yaml); the vendor sandboxes answer over real loopback HTTP from
their own process. The relay's CPU per conversion is `time.process_time()`
around each invocation minus the CPU moto itself spends answering (per-thread CPU inside
moto's botocore hook): the relay's code, botocore and requests are counted, the fake AWS is
not.

Figures per vendor: vendor HTTP calls per 1,000 conversions (full batches of 100 → 10 for
Scanova; 25 a request → 40 for pagent and QuickLizard, which do not dedupe, so that one hung
request puts at most `max_in_doubt` conversions in doubt; Scalev takes one conversion per
request, 8 at once), the wall time of an invocation of 100 jobs (median), the relay's CPU time
per delivered conversion, and the proof of exactly once (every event accepted once, no
duplicate).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import requests
import yaml
from aws_lambda_powertools import Metrics
from moto.core.botocore_stubber import BotocoreStubber
from relay.config import RelayConfig, parse_config
from relay.deliver.deliverer import Deliverer
from relay.ledger import Ledger
from relay.models import Attribution, Conversion, DeliveryJob, Identity, Item, Money, PagentSession, SourceRef
from relay.settings import DeliverSettings
from relay.vendors.registry import VENDORS, vendor_spec

from bench.stack import SandboxProcess, fake_aws
from local.lambda_context import LambdaContext
from local.pollers import failed_items, lambda_record
from local.world import REPO_ROOT, build_world

FULL_JOBS, QUICK_JOBS = 10_000, 300
SCALEV_GOAL_MS = 360
BATCH_SIZE = 100  # the template's BatchSize
MAX_INVOCATIONS_PER_JOB = 3  # bounds the drain loop (x jobs / batch size): no retries are expected
REGION = "us-east-1"
HASH = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"
# vendor kind → the destination the bench drives (config/relay.local.yaml) and events per job
DESTINATIONS = {
    "scanova": "scanova",
    "pagent": "pagent",
    "scalev": "scalev_meta",
    "quicklizard": "quicklizard",
}
EVENTS_PER_JOB = {"scanova": 1, "pagent": 1, "scalev": 1, "quicklizard": 2}
SECRETS = {
    "conversion-relay/scanova/api-key": "sk_local_scanova",
    "conversion-relay/pagent/api-key": "pk_local_pagent",
    "conversion-relay/scalev/storefront-key": "sfpk_local_scalev",
    "conversion-relay/quicklizard/client-key": "ql_local_client",
}


class _MotoCpu:
    """CPU time moto spends answering calls (summed per thread: claims run side by side)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def measuring(self) -> Iterator[None]:
        original = BotocoreStubber.__call__
        meter = self

        def timed(stubber: BotocoreStubber, *args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(stubber, *args, **kwargs)
            finally:
                spent = time.thread_time() - started
                with meter._lock:
                    meter.seconds += spent

        BotocoreStubber.__call__ = timed  # type: ignore[method-assign]
        try:
            yield
        finally:
            BotocoreStubber.__call__ = original  # type: ignore[method-assign]


def _conversion(index: int) -> Conversion:
    cid = uuid.uuid4()
    return Conversion(
        conversion_id=cid,
        name="purchase",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        order_id=f"pi_bench_{index}",
        value=Money(amount_minor=4999, currency="USD"),
        items=(
            Item(product_id="prod_tee", quantity=2, unit_amount_minor=2000, variant_id="variant_tee"),
            Item(product_id="prod_mug", quantity=1, unit_amount_minor=999),
        ),
        identity=Identity(email=HASH, phone=HASH, external_id=HASH),
        attribution=Attribution(
            scan_session_id=str(uuid.uuid4()),
            pagent=PagentSession(session_id=f"sess_{index}", user_id="user_1"),
            fbp="fb.1.1710000000000.1234567890",
            event_source_url="https://shop.example.com/checkout",
        ),
        properties={"plan": "pro"},
        source=SourceRef(provider="stripe", event_id=f"evt_{index}", event_type="payment_intent.succeeded"),
    )


def _record(destination: str, index: int, queue_arn: str) -> dict[str, Any]:
    """A job as Lambda's SQS event source hands it to the function (one record of the event)."""
    job = DeliveryJob(destination=destination, conversion=_conversion(index))
    body = job.model_dump_json()
    now_ms = str(int(time.time() * 1000))
    message = {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": uuid.uuid4().hex,
        "Body": body,
        "MD5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now_ms,
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "MessageAttributes": job.message_attributes(),
    }
    return lambda_record(message, queue_arn, REGION)


def _again(record: dict[str, Any]) -> dict[str, Any]:
    attributes = record["attributes"]
    count = int(attributes["ApproximateReceiveCount"]) + 1
    return {**record, "attributes": {**attributes, "ApproximateReceiveCount": str(count)}}


def _config(urls: dict[str, str]) -> RelayConfig:
    raw = yaml.safe_load((REPO_ROOT / "config" / "relay.local.yaml").read_text(encoding="utf-8"))
    for destination in raw["destinations"].values():
        destination["base_url"] = urls[destination["kind"]]
        destination.pop("stripe_api_key_secret", None)  # the bench jobs carry their items
    return parse_config(raw)


@dataclass
class _Result:
    vendor: str
    jobs: int
    invocations: int
    vendor_calls: int
    accepted: int
    duplicates: int
    cpu_seconds: float
    wall_seconds: float
    delivered: int
    request_size: int
    wall_ms: list[float]


def _bench_vendor(kind: str, jobs: int, world: Any, config: RelayConfig, urls: dict[str, str]) -> _Result:
    session = boto3.Session(region_name=REGION)
    sqs, dynamodb = session.client("sqs"), session.client("dynamodb")
    moto_cpu = _MotoCpu()
    prefix = VENDORS[kind].title
    queue_arn = world.resources[f"{prefix}Queue"]["Arn"]
    environment = {**world.functions[f"{prefix}DeliverFunction"].environment, "RELAY_CONFIG": "unused"}
    deliverer = Deliverer(
        kind=kind,
        config=config,
        settings=DeliverSettings.from_env(environment),
        ledger=Ledger(dynamodb, world.table_name),
        sqs=sqs,
        metrics=Metrics(namespace="ConversionRelayBench", service="bench"),
        secret=SECRETS.__getitem__,
    )
    pending: list[dict[str, Any]] = []
    walls: list[float] = []
    cpu = wall = 0.0
    invocations = queued = 0
    for _ in range(MAX_INVOCATIONS_PER_JOB * jobs // BATCH_SIZE + 10):
        if queued < jobs and len(pending) < BATCH_SIZE:
            wave = range(queued, min(jobs, queued + BATCH_SIZE))
            pending += [_record(DESTINATIONS[kind], i, queue_arn) for i in wave]
            queued += len(wave)
        records, pending = pending[:BATCH_SIZE], pending[BATCH_SIZE:]
        if not records:
            break
        context = LambdaContext(function_name=f"{prefix}DeliverFunction", timeout_seconds=60)
        # stdout takes the EMF metrics, as Lambda would ship them
        with contextlib.redirect_stdout(io.StringIO()), moto_cpu.measuring():
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            answer = deliverer.handle({"Records": records}, context)
            cpu += time.process_time() - cpu_start
            wall += time.perf_counter() - wall_start
        if len(records) == BATCH_SIZE:
            walls.append((time.perf_counter() - wall_start) * 1000)
        invocations += 1
        failed = failed_items(answer, {r["messageId"] for r in records}) or set()
        pending += [_again(r) for r in records if r["messageId"] in failed]  # received once more
    control = f"{urls[kind]}/_sandbox"
    calls = requests.get(f"{control}/requests", timeout=30).json()
    accepted = requests.get(f"{control}/accepted", timeout=30).json()
    duplicates = requests.get(f"{control}/duplicates", timeout=30).json()
    requests.post(f"{control}/reset", timeout=30)
    delivered = len(accepted) // EVENTS_PER_JOB[kind]
    relay_cpu = cpu - moto_cpu.seconds
    client = vendor_spec(kind).client(DESTINATIONS[kind], config.destinations[DESTINATIONS[kind]], None, str)  # type: ignore[arg-type]
    return _Result(
        kind,
        jobs,
        invocations,
        len(calls),
        len(accepted),
        len(duplicates),
        relay_cpu,
        wall,
        delivered,
        client.request_size,
        walls,
    )


def run(quick: bool = False) -> dict[str, Any]:
    jobs = QUICK_JOBS if quick else FULL_JOBS
    results: list[_Result] = []
    # The sandboxes without rate limits: the bench measures the relay, not the vendors' quotas.
    with fake_aws(), SandboxProcess({}) as sandboxes:
        urls = sandboxes.urls
        world = build_world(boto3.Session(region_name=REGION))
        config = _config(urls)
        for kind in DESTINATIONS:
            results.append(_bench_vendor(kind, jobs, world, config, urls))
    rows = []
    figures: dict[str, float] = {}
    for r in results:
        per_1000 = r.vendor_calls * 1000 / r.jobs
        cpu_ms = r.cpu_seconds * 1000 / max(1, r.delivered)
        exactly_once = r.accepted == r.jobs * EVENTS_PER_JOB[r.vendor] and r.duplicates == 0
        rows.append(
            [
                r.vendor,
                r.jobs,
                r.delivered,
                r.invocations,
                r.vendor_calls,
                round(per_1000, 1),
                round(cpu_ms, 3),
                round(statistics.median(r.wall_ms), 1) if r.wall_ms else None,
                "yes" if exactly_once else "NO",
            ]
        )
        figures[f"{r.vendor}_calls_per_1000"] = round(per_1000, 2)
        figures[f"{r.vendor}_expected_calls_per_1000"] = round(1000 / r.request_size, 2)
        if r.wall_ms:
            figures[f"{r.vendor}_wall_ms_per_100"] = round(statistics.median(r.wall_ms), 1)
        figures[f"{r.vendor}_cpu_ms_per_conversion"] = round(cpu_ms, 4)
        figures[f"{r.vendor}_exactly_once"] = int(exactly_once)
    return {
        "title": f"Delivery: {jobs:,} jobs per deliver function (moto, sandboxes on loopback)",
        "columns": [
            "vendor",
            "jobs",
            "delivered",
            "invocations",
            "vendor calls",
            "calls / 1,000",
            "relay CPU ms / conversion",
            "wall ms / 100 jobs (median)",
            "exactly once",
        ],
        "rows": rows,
        "figures": figures,
        "goals": {
            "scanova_calls_per_1000": "<= 10 (batches of 100)",
            "pagent_calls_per_1000": "<= 40 (25 a request: max_in_doubt, pagent does not dedupe)",
            "quicklizard_calls_per_1000": "<= 40 (25 jobs a request: max_in_doubt)",
            "scalev_calls_per_1000": "1000 (one conversion per request: user data is per request)",
            "scalev_wall_ms_per_100": f"<= {SCALEV_GOAL_MS} (1/5 of the 1.8 s the README reported before)",
            "*_exactly_once": "1 (every event accepted once, no duplicate)",
        },
        "notes": [
            "relay CPU: the handler's process time minus moto's own (botocore's client work is counted)",
            "wall ms includes moto answering in-process: it is not AWS latency",
        ],
    }


if __name__ == "__main__":  # `python -m bench` is the usual way; this prints the raw result
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
