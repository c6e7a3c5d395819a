"""Integration tests of relay.replay against moto: the dead-letter contract, ledger and queues.

Parked jobs are written the way the deliver functions write them (the DLQ contract in
docs/replay.md), or bare, the way SQS redrive moves them. Tests say Given / When / Then.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from relay.dlq import FAILURE_ATTRIBUTES
from relay.errors import LedgerError, NativeMoveUnsupportedError, UnknownDestinationError
from relay.ledger import Ledger
from relay.models import Conversion, DeliveryJob, SourceRef, conversion_id
from relay.replay.options import ReplayRequest
from relay.replay.replayer import Replayer
from relay.replay.results import ReplayOutcome
from relay.replay.scan import QueuePair
from relay.replay.wiring import build_replayer
from relay.vendors.registry import VENDORS

from local.world import World

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


# --------------------------------------------------------------------------- helpers


def make_job(destination: str = "scanova", *, name: str = "purchase", order: str | None = None, age_hours=1):
    order = order or f"cs_{uuid.uuid4().hex[:12]}"
    conversion = Conversion(
        conversion_id=conversion_id("stripe", order, name),
        name=name,
        occurred_at=NOW - timedelta(hours=age_hours),
        order_id=order,
        source=SourceRef(provider="stripe", event_id=f"evt_{order}", event_type="checkout.session.completed"),
    )
    return DeliveryJob(destination=destination, conversion=conversion)


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def _number(value: int) -> dict[str, str]:
    return {"DataType": "Number", "StringValue": str(value)}


class Stack:
    """The moto world's queues, ledger and a Replayer on them."""

    def __init__(self, world: World):
        session = boto3.Session(region_name=world.region)
        self.sqs = session.client("sqs")
        self.dynamodb = session.client("dynamodb")
        self.table = world.table_name
        self.ledger = Ledger(self.dynamodb, self.table)
        self.queues = {
            kind: QueuePair(
                kind, world.queue_url(f"{prefix}Queue"), world.queue_url(f"{prefix}DeadLetterQueue")
            )
            for kind, prefix in ((k, v.title) for k, v in VENDORS.items())
        }

    def replayer(self, sqs: Any = None) -> Replayer:
        replayer = build_replayer(
            sqs=sqs or self.sqs,
            dynamodb=self.dynamodb,
            queues=self.queues,
            table_name=self.table,
            config_path="config/relay.local.yaml",
            wait_seconds=0,
        )
        return replayer

    def park(
        self,
        job: DeliveryJob,
        *,
        vendor: str = "scanova",
        reason: str | None = "retries_exhausted",
        status: int | None = None,
        message: str | None = None,
        attempts: int = 5,
    ) -> None:
        """As a deliver function parks a job; reason=None: as SQS redrive moves it (no failure_*)."""
        attributes = job.message_attributes()
        if reason is not None:
            attributes |= {
                "failure_reason": _string(reason),
                "attempts": _number(attempts),
                "first_failure_at": _string((NOW - timedelta(minutes=30)).isoformat()),
                "vendor": _string(vendor),
            }
            if status is not None:
                attributes["failure_status"] = _number(status)
            if message is not None:
                attributes["failure_message"] = _string(message)
        self.sqs.send_message(
            QueueUrl=self.queues[vendor].dlq_url,
            MessageBody=job.model_dump_json(),
            MessageAttributes=attributes,
        )

    def record(self, job: DeliveryJob, status: str) -> None:
        """A ledger item as the delivery ledger writes it (the cross-team contract)."""
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                "id": {"S": f"ledger#{job.destination}#{job.conversion.conversion_id}"},
                "status": {"S": status},
                "attempts": {"N": "1"},
                "updated_at": {"S": NOW.isoformat()},
                "expiration": {"N": str(int(NOW.timestamp()) + 15 * 86400)},
            },
        )

    def drain(self, url: str) -> list[dict[str, Any]]:
        """Every message of a queue (received and deleted)."""
        messages = []
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            )
            page = answer.get("Messages", [])
            if not page:
                return messages
            messages += page
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(page)],
            )

    def queued_ids(self, vendor: str = "scanova") -> list[str]:
        return [
            m["MessageAttributes"]["conversion_id"]["StringValue"]
            for m in self.drain(self.queues[vendor].queue_url)
        ]

    def parked_ids(self, vendor: str = "scanova") -> list[str]:
        return [
            m["MessageAttributes"]["conversion_id"]["StringValue"]
            for m in self.drain(self.queues[vendor].dlq_url)
        ]


@pytest.fixture
def stack(moto_world: World) -> Stack:
    return Stack(moto_world)


def cid(job: DeliveryJob) -> str:
    return str(job.conversion.conversion_id)


# --------------------------------------------------------------------------- reading


def test_listing_shows_every_parked_job_and_leaves_the_queue_as_it_was(stack: Stack) -> None:
    """Given jobs parked for each reason, one of them moved by SQS redrive (no failure_* attributes),
    when the DLQ is listed twice,
    then every job is listed with its reason, vendor status, message and attempts, the counts by
    reason add up, and afterwards every message is still there and visible at once."""
    rejected, in_doubt, exhausted, redriven = (make_job() for _ in range(4))
    stack.park(rejected, reason="rejected", status=422, message="events[0].scan_session_id: not found")
    stack.park(in_doubt, reason="in_doubt", message="read timeout after the request was sent")
    stack.park(exhausted, reason="retries_exhausted", status=503, attempts=5)
    stack.park(redriven, reason=None)
    stack.record(rejected, "rejected")
    replayer = stack.replayer()

    first = replayer.list_parked("scanova")
    second = replayer.list_parked("scanova")

    by_id = {job.conversion_id: job for job in second.jobs}
    assert set(by_id) == {cid(rejected), cid(in_doubt), cid(exhausted), cid(redriven)}
    assert len(first.jobs) == 4
    assert second.by_reason == {"rejected": 1, "in_doubt": 1, "retries_exhausted": 2}
    assert (by_id[cid(rejected)].status, by_id[cid(rejected)].message) == (
        422,
        "events[0].scan_session_id: not found",
    )
    assert by_id[cid(rejected)].ledger == "rejected"
    assert by_id[cid(exhausted)].attempts == 5
    # Redriven: attempts is SQS's receive count, which each read of the DLQ raises by one.
    assert by_id[cid(redriven)].attempts == 2
    assert by_id[cid(redriven)].destination == "scanova"
    assert second.approximate_total == {"scanova": 4}
    assert not second.truncated
    assert sorted(stack.parked_ids()) == sorted(by_id)


def test_listing_is_bounded_by_max(stack: Stack) -> None:
    """Given 15 parked jobs, when listed with max 10, then 10 are listed, the listing says it is
    truncated, and all 15 are still parked."""
    for _ in range(15):
        stack.park(make_job())

    listing = stack.replayer().list_parked("scanova", max_jobs=10)

    assert len(listing.jobs) == 10
    assert listing.truncated
    assert len(stack.parked_ids()) == 15


def test_show_prints_one_job_in_full_without_raw_pii(stack: Stack) -> None:
    """Given a parked job, when it is shown by conversion id, then the body, its attributes and
    ledger status are there, and the job is still parked."""
    job = make_job()
    stack.park(job, reason="rejected", status=400, message="bad event_name")

    shown = stack.replayer().find(cid(job))

    assert shown["job"]["conversion"]["conversion_id"] == cid(job)
    assert shown["attributes"]["failure_reason"] == "rejected"
    assert shown["attributes"]["failure_message"] == "bad event_name"
    assert shown["reason"] == "rejected"
    assert stack.parked_ids() == [cid(job)]


def test_an_unknown_destination_is_refused_with_the_known_ones(stack: Stack) -> None:
    """Given the local config, when an unknown destination is asked for, then the error names
    the destinations and vendor kinds that exist."""
    with pytest.raises(UnknownDestinationError, match="scalev_meta"):
        stack.replayer().list_parked("nope")


# --------------------------------------------------------------------------- replay


def test_replay_moves_jobs_back_unchanged_without_their_failure_attributes(stack: Stack) -> None:
    """Given three jobs parked after retries ran out, when replayed, then each is in the vendor
    queue once with its body unchanged and only its own attributes, and the DLQ is empty."""
    jobs = [make_job() for _ in range(3)]
    for job in jobs:
        stack.park(job, status=503, message="Service Unavailable")

    summary = stack.replayer().replay(ReplayRequest(destination="scanova"))

    queued = stack.drain(stack.queues["scanova"].queue_url)
    assert summary.moved == 3 and summary.ok
    assert sorted(m["Body"] for m in queued) == sorted(job.model_dump_json() for job in jobs)
    for message in queued:
        assert set(message["MessageAttributes"]) == set(jobs[0].message_attributes())
        assert not FAILURE_ATTRIBUTES & set(message["MessageAttributes"])
    assert stack.parked_ids() == []


def test_a_job_the_ledger_says_was_delivered_is_dropped_not_resent(stack: Stack) -> None:
    """Given a parked job whose conversion the ledger records as delivered (e.g. a second copy),
    when replayed, then it is deleted from the DLQ, counted as already delivered, and not queued."""
    delivered, pending = make_job(), make_job()
    stack.park(delivered)
    stack.park(pending)
    stack.record(delivered, "delivered")

    summary = stack.replayer().replay(ReplayRequest(destination="scanova"))

    assert (summary.moved, summary.already_delivered) == (1, 1)
    assert stack.queued_ids() == [cid(pending)]
    assert stack.parked_ids() == []


def test_two_copies_of_one_job_are_queued_once(stack: Stack) -> None:
    """Given the same job parked twice, when replayed, then it is queued once and both copies
    leave the DLQ."""
    job = make_job()
    stack.park(job)
    stack.park(job, reason=None)

    summary = stack.replayer().replay(ReplayRequest(destination="scanova"))

    assert (summary.moved, summary.duplicates) == (1, 1)
    assert stack.queued_ids() == [cid(job)]
    assert stack.parked_ids() == []


def test_rejected_and_in_doubt_jobs_stay_parked_without_force(stack: Stack) -> None:
    """Given a job the vendor rejected, one in doubt (ledger in_doubt) and one that ran out of
    retries, when replayed without --force, then only the last moves; the others stay parked
    with their ledger records untouched."""
    rejected, in_doubt, exhausted = make_job(), make_job(), make_job()
    stack.park(rejected, reason="rejected", status=422)
    stack.park(in_doubt, reason="in_doubt")
    stack.park(exhausted)
    stack.record(rejected, "rejected")
    stack.record(in_doubt, "in_doubt")

    summary = stack.replayer().replay(ReplayRequest(destination="scanova"))

    assert summary.moved == 1
    assert summary.left == {"rejected": 1, "in_doubt": 1}
    assert stack.queued_ids() == [cid(exhausted)]
    assert sorted(stack.parked_ids()) == sorted([cid(rejected), cid(in_doubt)])
    assert stack.ledger.status("scanova", cid(in_doubt)) == "in_doubt"


def test_force_forgets_the_ledger_record_and_resends(stack: Stack) -> None:
    """Given a rejected and an in-doubt job with their ledger records, when replayed with --force,
    then both are queued and their ledger records are gone, so the deliver function sends them."""
    rejected, in_doubt = make_job(), make_job()
    stack.park(rejected, reason="rejected", status=401)
    stack.park(in_doubt, reason="in_doubt")
    stack.record(rejected, "rejected")
    stack.record(in_doubt, "in_doubt")

    summary = stack.replayer().replay(ReplayRequest(destination="scanova", force=True))

    assert summary.moved == 2 and summary.left == {}
    assert sorted(stack.queued_ids()) == sorted([cid(rejected), cid(in_doubt)])
    assert stack.ledger.status("scanova", cid(rejected)) is None
    assert stack.ledger.status("scanova", cid(in_doubt)) is None


def test_force_still_never_resends_a_delivered_conversion(stack: Stack) -> None:
    """Given a job parked as in_doubt whose conversion the ledger says was delivered after all,
    when replayed with --force, then it is dropped, not sent."""
    job = make_job()
    stack.park(job, reason="in_doubt")
    stack.record(job, "delivered")

    summary = stack.replayer().replay(ReplayRequest(destination="scanova", force=True))

    assert (summary.moved, summary.already_delivered) == (0, 1)
    assert stack.queued_ids() == []


def test_a_malformed_job_is_never_moved(stack: Stack) -> None:
    """Given a DLQ message whose body is not a delivery job, when replayed (even with --force),
    then it stays parked and is counted as malformed_job."""
    stack.sqs.send_message(
        QueueUrl=stack.queues["scanova"].dlq_url,
        MessageBody='{"not": "a job"}',
        MessageAttributes={"failure_reason": _string("malformed_job")},
    )

    summary = stack.replayer().replay(ReplayRequest(destination="scanova", force=True))

    assert summary.left == {"malformed_job": 1} and summary.moved == 0
    assert len(stack.drain(stack.queues["scanova"].dlq_url)) == 1


# --------------------------------------------------------------------------- ledger reads


class DynamoCalls:
    """The DynamoDB operations a client makes (botocore's provide-client-params event), each with
    the number of keys it reads in a batch."""

    def __init__(self, client: Any):
        self.made: list[tuple[str, int]] = []
        self.consistent: list[bool] = []  # each batch read's ConsistentRead
        client.meta.events.register("provide-client-params.dynamodb", self._heard)

    def _heard(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        batches = params.get("RequestItems", {}).values()
        self.made.append((model.name, sum(len(batch.get("Keys", [])) for batch in batches)))
        self.consistent += [batch.get("ConsistentRead", False) for batch in batches if "Keys" in batch]


class ThrottledOnce:
    """A DynamoDB client whose first BatchGetItem reads nothing and returns every key as
    unprocessed, as DynamoDB does when it throttles a batch."""

    def __init__(self, dynamodb: Any):
        self._dynamodb = dynamodb
        self.throttled = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        if self.throttled:
            return self._dynamodb.batch_get_item(**kwargs)
        self.throttled = True
        return {"Responses": {}, "UnprocessedKeys": kwargs["RequestItems"]}


def test_a_page_of_parked_jobs_is_looked_up_in_one_ledger_read(stack: Stack) -> None:
    """Given a DLQ page of ten parked jobs (three delivered, two in doubt, five never settled)
    and the replayer's DynamoDB calls heard,
    when replayed,
    then the ledger was read once for the page, one strongly consistent BatchGetItem of the ten
    keys and no GetItem, and each job was decided on its record: delivered dropped, in doubt
    kept, the rest moved."""
    delivered = [make_job() for _ in range(3)]
    in_doubt = [make_job() for _ in range(2)]
    movable = [make_job() for _ in range(5)]
    for job in (*delivered, *in_doubt, *movable):
        stack.park(job)
    for job in delivered:
        stack.record(job, "delivered")
    for job in in_doubt:
        stack.record(job, "in_doubt")
    calls = DynamoCalls(stack.dynamodb)

    summary = stack.replayer().replay(ReplayRequest(destination="scanova"))

    assert calls.made == [("BatchGetItem", 10)]
    assert calls.consistent == [True]
    assert (summary.scanned, summary.moved, summary.already_delivered) == (10, 5, 3)
    assert summary.left == {"in_doubt": 2}
    assert sorted(stack.queued_ids()) == sorted(cid(job) for job in movable)
    assert sorted(stack.parked_ids()) == sorted(cid(job) for job in in_doubt)


def test_a_page_shared_by_destinations_is_read_once_per_destination(stack: Stack) -> None:
    """Given one scalev DLQ page with jobs of two destinations, each with a delivered one,
    when the whole vendor is replayed,
    then the ledger is read with one BatchGetItem per destination, and the delivered job of
    each destination is dropped while the others move."""
    meta, tiktok = [make_job("scalev_meta") for _ in range(3)], [make_job("scalev_tiktok") for _ in range(2)]
    for job in (*meta, *tiktok):
        stack.park(job, vendor="scalev")
    stack.record(meta[0], "delivered")
    stack.record(tiktok[0], "delivered")
    calls = DynamoCalls(stack.dynamodb)

    summary = stack.replayer().replay(ReplayRequest(destination="scalev"))

    assert sorted(calls.made) == [("BatchGetItem", 2), ("BatchGetItem", 3)]
    assert (summary.moved, summary.already_delivered) == (3, 2)
    assert sorted(stack.queued_ids("scalev")) == sorted(cid(job) for job in (*meta[1:], *tiktok[1:]))


def test_keys_a_throttled_ledger_read_leaves_unprocessed_are_read_again(stack: Stack) -> None:
    """Given a delivered job and one never settled, and a ledger whose first BatchGetItem
    leaves every key unprocessed,
    when replayed,
    then the keys are read again and the decisions are those of a ledger that answered at once."""
    delivered, pending = make_job(), make_job()
    stack.park(delivered)
    stack.park(pending)
    stack.record(delivered, "delivered")
    throttled = ThrottledOnce(stack.dynamodb)
    replayer = build_replayer(
        sqs=stack.sqs,
        dynamodb=throttled,
        queues=stack.queues,
        table_name=stack.table,
        config_path="config/relay.local.yaml",
        wait_seconds=0,
    )

    summary = replayer.replay(ReplayRequest(destination="scanova"))

    assert throttled.throttled
    assert (summary.moved, summary.already_delivered) == (1, 1)
    assert stack.queued_ids() == [cid(pending)]


def test_a_ledger_that_cannot_be_read_stops_the_replay_and_moves_nothing(stack: Stack) -> None:
    """Given parked jobs and a ledger table that cannot be read (it does not exist),
    when replayed, then LedgerError stops the run before anything moves, and every job is still
    parked and visible at once."""
    jobs = [make_job() for _ in range(3)]
    for job in jobs:
        stack.park(job)
    replayer = build_replayer(
        sqs=stack.sqs,
        dynamodb=stack.dynamodb,
        queues=stack.queues,
        table_name="no-such-table",
        config_path="config/relay.local.yaml",
        wait_seconds=0,
    )

    with pytest.raises(LedgerError):
        replayer.replay(ReplayRequest(destination="scanova"))

    assert stack.queued_ids() == []
    assert sorted(stack.parked_ids()) == sorted(cid(job) for job in jobs)


# --------------------------------------------------------------------------- filters and dry run


def _filtered_world(stack: Stack) -> dict[str, DeliveryJob]:
    jobs = {
        "meta_purchase_old": make_job("scalev_meta", age_hours=30),
        "meta_purchase_new": make_job("scalev_meta", age_hours=1),
        "meta_signup_new": make_job("scalev_meta", name="signup", age_hours=1),
        "tiktok_purchase_new": make_job("scalev_tiktok", age_hours=1),
        "meta_purchase_rejected": make_job("scalev_meta", age_hours=1),
    }
    for key, job in jobs.items():
        stack.park(
            job, vendor="scalev", reason="rejected" if key.endswith("rejected") else "retries_exhausted"
        )
    return jobs


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"destination": "scalev_meta"}, {"meta_purchase_old", "meta_purchase_new", "meta_signup_new"}),
        (
            {"destination": "scalev"},
            {"meta_purchase_old", "meta_purchase_new", "meta_signup_new", "tiktok_purchase_new"},
        ),
        ({"destination": "scalev_meta", "name": "purchase"}, {"meta_purchase_old", "meta_purchase_new"}),
        ({"destination": "scalev_meta", "since": "2h"}, {"meta_purchase_new", "meta_signup_new"}),
        ({"destination": "scalev", "until": "1d"}, {"meta_purchase_old"}),
        ({"destination": "scalev_meta", "reason": "rejected", "force": True}, {"meta_purchase_rejected"}),
    ],
)
def test_filters_move_exactly_what_they_select_and_dry_run_predicts_it(
    stack: Stack, options: dict[str, Any], expected: set[str]
) -> None:
    """Given five scalev jobs (two destinations, two names, two ages, one rejected),
    when a dry run and then a real replay use the same filters,
    then the dry run changes nothing and lists exactly the jobs the real run then moves."""
    jobs = _filtered_world(stack)
    names = {cid(job): key for key, job in jobs.items()}
    replayer = stack.replayer()

    dry = replayer.replay(ReplayRequest.model_validate({**options, "dry_run": True}))
    assert stack.queued_ids("scalev") == []
    real = replayer.replay(ReplayRequest.model_validate(options))

    assert {names[job.conversion_id] for job in dry.selected} == expected
    assert dry.would_move == real.moved == len(expected)
    assert {names[i] for i in stack.queued_ids("scalev")} == expected
    assert {names[i] for i in stack.parked_ids("scalev")} == set(jobs) - expected


# --------------------------------------------------------------------------- interruption and limits


class InterruptAfter:
    """An SQS client that is Ctrl-C'd right after its n-th SendMessageBatch reached the queue."""

    def __init__(self, sqs: Any, sends: int):
        self._sqs = sqs
        self._left = sends

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        answer = self._sqs.send_message_batch(**kwargs)
        self._left -= 1
        if self._left == 0:
            raise KeyboardInterrupt
        return answer


def test_an_interrupted_replay_run_again_loses_nothing(stack: Stack) -> None:
    """Given 35 parked jobs, when a replay is interrupted right after its second batch was queued
    (before that batch left the DLQ) and then run again,
    then every job reaches the vendor queue, the DLQ is empty, and only the interrupted batch
    was queued twice (the delivery ledger absorbs those copies)."""
    jobs = [make_job() for _ in range(35)]
    for job in jobs:
        stack.park(job)

    with pytest.raises(KeyboardInterrupt):
        stack.replayer(InterruptAfter(stack.sqs, sends=2)).replay(ReplayRequest(destination="scanova"))
    # The interrupted run released what it held: a re-run sees every job not yet deleted.
    summary = stack.replayer().replay(ReplayRequest(destination="scanova"))

    queued = Counter(stack.queued_ids())
    assert set(queued) == {cid(job) for job in jobs}
    assert sum(count - 1 for count in queued.values()) == 10  # the one batch sent, not deleted
    assert summary.moved == 35 - 10
    assert stack.parked_ids() == []


def test_max_bounds_a_replay_and_the_rest_stays_parked(stack: Stack) -> None:
    """Given 25 parked jobs, when replayed with max 10, then 10 move, the summary says it
    stopped at max, and 15 stay parked."""
    for _ in range(25):
        stack.park(make_job())

    summary = stack.replayer().replay(ReplayRequest(destination="scanova", max=10))

    assert summary.moved == 10 and summary.stopped == "max"
    assert len(stack.queued_ids()) == 10
    assert len(stack.parked_ids()) == 15


def test_a_replay_stops_cleanly_before_the_deadline(stack: Stack) -> None:
    """Given 30 parked jobs and a Lambda with little time left after the first page,
    when replayed, then it stops after that page with stopped="deadline" and the rest stays parked."""
    for _ in range(30):
        stack.park(make_job())
    remaining = iter([120.0, 5.0])

    summary = stack.replayer().replay(
        ReplayRequest(destination="scanova"), remaining_seconds=lambda: next(remaining)
    )

    assert summary.stopped == "deadline"
    assert summary.moved == 20
    assert len(stack.parked_ids()) == 10


def test_progress_reports_each_job_once(stack: Stack) -> None:
    """Given four jobs (one delivered, one rejected, two to move), when replayed with a progress
    callback, then it hears of each job once with its outcome."""
    delivered, rejected, *movable = (make_job() for _ in range(4))
    for job in (delivered, rejected, *movable):
        stack.park(job, reason="rejected" if job is rejected else "retries_exhausted")
    stack.record(delivered, "delivered")
    heard: list[tuple[ReplayOutcome, str]] = []

    def progress(outcome: ReplayOutcome, parked: Any) -> None:
        heard.append((outcome, parked.conversion_id))

    stack.replayer().replay(ReplayRequest(destination="scanova"), progress=progress)

    assert Counter(outcome for outcome, _ in heard) == {
        ReplayOutcome.MOVED: 2,
        ReplayOutcome.ALREADY_DELIVERED: 1,
        ReplayOutcome.LEFT: 1,
    }
    assert len({conversion for _, conversion in heard}) == 4


# --------------------------------------------------------------------------- native


def test_native_move_on_moto_fails_with_a_clear_message(stack: Stack) -> None:
    """Given moto, which lacks StartMessageMoveTask, when a native move is asked for,
    then NativeMoveUnsupportedError says so (and nothing moved)."""
    job = make_job()
    stack.park(job)

    with pytest.raises(NativeMoveUnsupportedError, match="moto"):
        stack.replayer().start_native_move(ReplayRequest(destination="scanova", native=True))

    assert stack.parked_ids() == [cid(job)]


def test_native_move_refuses_a_destination_that_shares_its_dlq(stack: Stack) -> None:
    """Given scalev_meta shares the scalev DLQ with two other destinations, when a native move is
    asked for scalev_meta, then it is refused: a native move would take the others' jobs too."""
    with pytest.raises(Exception, match="shares the scalev DLQ"):
        stack.replayer().start_native_move(ReplayRequest(destination="scalev_meta", native=True))
