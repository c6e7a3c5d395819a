"""events/sqs/<vendor>.json: an SQS event per deliver function, for `sam local invoke -e`.

They are the jobs ingest queues for the sample Stripe events (events/stripe, testkit/stripe.py)
under config/relay.local.yaml, framed as Lambda's SQS event (local.pollers.lambda_record),
with fixed ids and timestamps so they are reproducible. Regenerate them with

    .venv/bin/python tests/unit/test_delivery_events.py
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from relay.config import load_config
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import map_event
from relay.models import DeliveryJob
from relay.sources.spec import load_source
from relay.vendors.registry import VENDORS

from local.pollers import lambda_record
from testkit import FIXED_TIMESTAMP, sample_stripe_events

REPO_ROOT = Path(__file__).resolve().parents[2]
SQS_EVENTS = REPO_ROOT / "events" / "sqs"
LOCAL_CONFIG = REPO_ROOT / "config" / "relay.local.yaml"
REGION, ACCOUNT = "us-east-1", "123456789012"
_IDS = uuid.UUID("9d3f0c52-1c55-4a8e-9a0b-6f1f2e3d4c5b")


def sample_jobs() -> list[DeliveryJob]:
    """The jobs the Stripe ingest function queues for the sample events, in a stable order."""
    config = load_config(LOCAL_CONFIG)
    spec = load_source("stripe")
    source = config.source("stripe")
    rules = spec.builtin_rules(source)
    jobs = []
    for stripe_event in sample_stripe_events().values():
        request = WebhookRequest(
            method="POST", path="/webhooks/stripe", headers={}, body=json.dumps(stripe_event).encode()
        )
        for provider_event in spec.parse(request):
            for mapped in map_event(provider_event, source, rules, spec.defaults):
                for name, destination in config.enabled_destinations.items():
                    if destination.skip_reason(mapped.conversion) is None:
                        jobs.append(DeliveryJob(destination=name, conversion=mapped.conversion))
    return jobs


def sqs_events() -> dict[str, dict[str, Any]]:
    """vendor kind → the Lambda SQS event holding that vendor's sample jobs."""
    kinds = {name: d.kind for name, d in load_config(LOCAL_CONFIG).destinations.items()}
    events: dict[str, dict[str, Any]] = {}
    for kind, prefix in ((k, v.title) for k, v in VENDORS.items()):
        queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:conversion-relay-{prefix}Queue"
        records = []
        for index, job in enumerate(j for j in sample_jobs() if kinds[j.destination] == kind):
            body = job.model_dump_json()
            message = {
                "MessageId": str(uuid.uuid5(_IDS, f"{kind}:{index}")),
                "ReceiptHandle": f"AQEB-sample-{kind}-{index}",
                "Body": body,
                "MD5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "Attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(FIXED_TIMESTAMP * 1000),
                    "SenderId": "AROAEXAMPLE:StripeWebhookFunction",
                    "ApproximateFirstReceiveTimestamp": str(FIXED_TIMESTAMP * 1000 + 250),
                },
                "MessageAttributes": job.message_attributes(),
            }
            records.append(lambda_record(message, queue_arn, REGION))
        events[kind] = {"Records": records}
    return events


def write_sqs_events(directory: Path = SQS_EVENTS) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, event in sqs_events().items():
        path = directory / f"{kind}.json"
        path.write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


@pytest.mark.parametrize("kind", list(VENDORS))
def test_each_sample_sqs_event_holds_delivery_jobs_of_its_vendor(kind: str) -> None:
    """Given events/sqs/<vendor>.json, when its records are read as the deliver function reads
    them, then every body is a DeliveryJob for a destination of that vendor, with its attributes."""
    event = json.loads((SQS_EVENTS / f"{kind}.json").read_text(encoding="utf-8"))
    kinds = {name: d.kind for name, d in load_config(LOCAL_CONFIG).destinations.items()}

    jobs = [DeliveryJob.model_validate_json(record["body"]) for record in event["Records"]]

    assert jobs, f"no sample jobs for {kind}"
    assert {kinds[job.destination] for job in jobs} == {kind}
    for record, job in zip(event["Records"], jobs, strict=True):
        attributes = {name: value["stringValue"] for name, value in record["messageAttributes"].items()}
        assert attributes["conversion_id"] == str(job.conversion.conversion_id)
        assert record["eventSource"] == "aws:sqs" and record["attributes"]["ApproximateReceiveCount"] == "1"


def test_the_committed_sqs_events_are_the_generated_ones() -> None:
    """Given the generator, when run now, then it reproduces the committed files byte for byte."""
    for kind, event in sqs_events().items():
        committed = (SQS_EVENTS / f"{kind}.json").read_text(encoding="utf-8")
        assert committed == json.dumps(event, indent=2) + "\n", (
            f"regenerate events/sqs ({kind}): see docstring"
        )


if __name__ == "__main__":
    for path in write_sqs_events():
        print(path.relative_to(REPO_ROOT))
