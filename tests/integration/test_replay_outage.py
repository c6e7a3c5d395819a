"""A vendor outage, end to end: the real Scanova deliver function parks jobs in the DLQ, the
vendor recovers, `relay replay` moves them back, and each conversion is delivered exactly once.

AWS is moto (in-process); Scanova is its sandbox on real loopback HTTP; the deliver function
is functions/deliver_scanova/app.py cold-started with the template's environment. `pump`
plays Lambda's SQS event source mapping (one batch, ReportBatchItemFailures) until the queue
is empty. Exactly once is checked at the vendor: every conversion accepted once and no
duplicate request ever reached it (Scanova would absorb one, so we count them).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import yaml
from relay.ledger import Ledger
from relay.models import Attribution, Conversion, DeliveryJob, Money, SourceRef, conversion_id
from relay.replay.options import ReplayRequest
from relay.replay.replayer import Replayer
from relay.replay.scan import QueuePair
from relay.replay.wiring import build_replayer
from relay.vendors.registry import VENDORS

from local.lambda_context import LambdaContext
from local.pollers import failed_items, lambda_record
from local.world import World
from sandboxes import FaultPlan, ScanovaSandbox

pytestmark = pytest.mark.integration

MAX_PUMPS = 40  # bounded: five receives per job at most, a few jobs per batch


@pytest.fixture
def scanova() -> Iterator[ScanovaSandbox]:
    with ScanovaSandbox().start() as sandbox:
        yield sandbox


@pytest.fixture
def relay_config(tmp_path: Path, scanova: ScanovaSandbox) -> Path:
    """Scanova on its sandbox; in_doubt jobs are parked (not resent) so --force matters."""
    config = {
        "version": 1,
        "destinations": {
            "scanova": {
                "kind": "scanova",
                "base_url": scanova.url,
                "site_id": "site_local",
                "api_key_secret": "conversion-relay/scanova/api-key",
                "in_doubt": "park",
                "timeout_seconds": 0.5,
            }
        },
    }
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class Relay:
    """The Scanova queue, its DLQ, the deliver function and the replayer."""

    def __init__(self, world: World, deliver: ModuleType, config: Path):
        self.world = world
        self.sqs = boto3.client("sqs")
        self.queue = world.queue_url("ScanovaQueue")
        self.dlq = world.queue_url("ScanovaDeadLetterQueue")
        self.queue_arn = world.resources["ScanovaQueue"]["Arn"]
        self.deliver = deliver
        self.config = config
        self.ledger = Ledger(boto3.client("dynamodb"), world.table_name)

    def enqueue(self, jobs: list[DeliveryJob]) -> None:
        for job in jobs:
            self.sqs.send_message(
                QueueUrl=self.queue,
                MessageBody=job.model_dump_json(),
                MessageAttributes=job.message_attributes(),
            )

    def pump(self) -> int:
        """Deliver until the vendor queue is empty (as Lambda's poller would); returns invocations."""
        for invocation in range(MAX_PUMPS):
            messages = self.sqs.receive_message(
                QueueUrl=self.queue,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return invocation
            event = {"Records": [lambda_record(m, self.queue_arn, self.world.region) for m in messages]}
            answer = self.deliver.lambda_handler(event, LambdaContext(function_name="ScanovaDeliverFunction"))
            failed = failed_items(answer, {m["MessageId"] for m in messages})
            assert failed is not None, "the deliver function failed its whole batch"
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done[start : start + 10])
                    ],
                )
        raise AssertionError(f"the queue did not drain in {MAX_PUMPS} invocations")

    def replayer(self, sqs: Any = None) -> Replayer:
        queues = {
            kind: QueuePair(
                kind, self.world.queue_url(f"{p}Queue"), self.world.queue_url(f"{p}DeadLetterQueue")
            )
            for kind, p in ((k, v.title) for k, v in VENDORS.items())
        }
        return build_replayer(
            sqs=sqs or self.sqs,
            dynamodb=boto3.client("dynamodb"),
            queues=queues,
            table_name=self.world.table_name,
            config_path=str(self.config),
            wait_seconds=0,
        )

    def parked(self) -> Counter[str]:
        listing = self.replayer().list_parked("scanova", max_jobs=1000)
        return Counter(job.reason for job in listing.jobs)


@pytest.fixture
def relay(moto_world: World, load_handler: Callable[..., ModuleType], relay_config: Path) -> Relay:
    deliver = load_handler(
        moto_world.functions["ScanovaDeliverFunction"],
        {"RELAY_CONFIG": str(relay_config), "RETRY_DELAY_SCALE": "0"},  # retries at once
    )
    return Relay(moto_world, deliver, relay_config)


def purchases(count: int) -> list[DeliveryJob]:
    jobs = []
    for _ in range(count):
        order = f"cs_{uuid.uuid4().hex[:14]}"
        conversion = Conversion(
            conversion_id=conversion_id("stripe", order, "purchase"),
            name="purchase",
            occurred_at=datetime.now(UTC),
            order_id=order,
            value=Money(amount_minor=4999, currency="USD"),
            attribution=Attribution(scan_session_id=str(uuid.uuid4())),
            source=SourceRef(
                provider="stripe", event_id=f"evt_{order}", event_type="checkout.session.completed"
            ),
        )
        jobs.append(DeliveryJob(destination="scanova", conversion=conversion))
    return jobs


def delivered_ids(scanova: ScanovaSandbox) -> Counter[str]:
    return Counter(event["event_id"] for event in scanova.accepted())


def ids(jobs: list[DeliveryJob]) -> set[str]:
    return {str(job.conversion.conversion_id) for job in jobs}


# --------------------------------------------------------------------------- tests


def test_outage_then_replay_delivers_each_conversion_exactly_once(
    relay: Relay, scanova: ScanovaSandbox
) -> None:
    """Given Scanova answering 503 to everything, when 12 purchases are delivered, then the deliver
    function retries each up to maxReceiveCount and parks them as retries_exhausted;
    when Scanova recovers and `relay replay --destination scanova` runs,
    then every purchase is delivered exactly once, nothing is left parked, and a second replay
    finds nothing to do."""
    jobs = purchases(12)
    scanova.set_faults(FaultPlan(error_rate=1))
    relay.enqueue(jobs)
    relay.pump()
    assert relay.parked() == {"retries_exhausted": 12}
    assert scanova.accepted() == []

    scanova.set_faults(FaultPlan())
    summary = relay.replayer().replay(ReplayRequest(destination="scanova"))
    relay.pump()

    assert summary.moved == 12 and summary.ok
    assert delivered_ids(scanova) == Counter(ids(jobs))
    assert scanova.duplicates() == []
    assert relay.parked() == {}
    again = relay.replayer().replay(ReplayRequest(destination="scanova"))
    assert (again.scanned, again.moved) == (0, 0)


class InterruptAfter:
    """An SQS client Ctrl-C'd right after its n-th SendMessageBatch reached the queue."""

    def __init__(self, sqs: Any, sends: int):
        self._sqs, self._left = sqs, sends

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        answer = self._sqs.send_message_batch(**kwargs)
        self._left -= 1
        if self._left == 0:
            raise KeyboardInterrupt
        return answer


def test_an_interrupted_replay_run_again_still_delivers_exactly_once(
    relay: Relay, scanova: ScanovaSandbox
) -> None:
    """Given 25 purchases parked by an outage, when a replay is interrupted right after its first
    batch reached the vendor queue (before it left the DLQ), the deliver function runs, and the
    replay is run again,
    then the re-run queues that batch a second time, the ledger drops those copies, and every
    purchase reached Scanova exactly once."""
    jobs = purchases(25)
    scanova.set_faults(FaultPlan(error_rate=1))
    relay.enqueue(jobs)
    relay.pump()
    scanova.set_faults(FaultPlan())

    with pytest.raises(KeyboardInterrupt):
        relay.replayer(InterruptAfter(relay.sqs, sends=1)).replay(ReplayRequest(destination="scanova"))
    relay.pump()
    rerun = relay.replayer().replay(ReplayRequest(destination="scanova"))
    relay.pump()

    # The interrupted batch was delivered before the re-run: the re-run drops it as delivered.
    assert (rerun.moved, rerun.already_delivered) == (15, 10)
    assert delivered_ids(scanova) == Counter(ids(jobs))
    assert scanova.duplicates() == []
    assert relay.parked() == {}


def test_an_in_doubt_job_is_resent_only_with_force(relay: Relay, scanova: ScanovaSandbox) -> None:
    """Given Scanova hanging past the relay's timeout (the request may have arrived) and a
    destination that parks such jobs, when a purchase is delivered, then it is parked in_doubt;
    when replayed without --force it stays parked and is not sent; with --force its ledger record
    is forgotten and it is delivered exactly once."""
    (job,) = purchases(1)
    scanova.set_faults(FaultPlan(timeout_rate=1, hang_seconds=1))
    relay.enqueue([job])
    relay.pump()
    scanova.set_faults(FaultPlan())
    assert relay.parked() == {"in_doubt": 1}
    assert relay.ledger.status("scanova", str(job.conversion.conversion_id)) == "in_doubt"

    held = relay.replayer().replay(ReplayRequest(destination="scanova"))
    relay.pump()
    assert (held.moved, held.left) == (0, {"in_doubt": 1})
    assert scanova.accepted() == []

    forced = relay.replayer().replay(ReplayRequest(destination="scanova", force=True))
    relay.pump()
    assert forced.moved == 1
    assert delivered_ids(scanova) == Counter(ids([job]))
    assert relay.parked() == {}
    assert relay.ledger.status("scanova", str(job.conversion.conversion_id)) == "delivered"


def test_a_rejected_job_is_replayed_with_force_after_the_cause_is_fixed(
    relay: Relay, scanova: ScanovaSandbox
) -> None:
    """Given Scanova answering 422 (a permanent rejection), when a purchase is delivered, then it is
    parked at once as rejected with the vendor's status; when the cause is fixed and it is replayed
    with --force --reason rejected, then it is delivered once."""
    (job,) = purchases(1)
    scanova.set_faults(FaultPlan(fail_next=1, error_status=422))
    relay.enqueue([job])
    relay.pump()
    listing = relay.replayer().list_parked("scanova")
    assert [(j.reason, j.status) for j in listing.jobs] == [("rejected", 422)]

    held = relay.replayer().replay(ReplayRequest(destination="scanova"))
    forced = relay.replayer().replay(ReplayRequest(destination="scanova", reason="rejected", force=True))
    relay.pump()

    assert (held.moved, forced.moved) == (0, 1)
    assert delivered_ids(scanova) == Counter(ids([job]))
    assert relay.parked() == {}
