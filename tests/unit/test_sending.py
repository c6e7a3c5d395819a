"""relay.deliver.sending without network: request sizes, requests side by side, a 429 stopping the
destination, request ids; and the dead-letter attributes of an in-doubt job (relay.dlq)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from relay import dlq
from relay.config import parse_destination
from relay.deliver.sending import Sender
from relay.errors import TransientDeliveryError, UnansweredDeliveryError
from relay.vendors.client import Accepted, VendorClient, VendorEvent, VendorOutcome

PAGENT = {"kind": "pagent", "base_url": "https://p.example.com", "api_key_secret": "k"}
SCANOVA = {"kind": "scanova", "base_url": "https://s.example.com", "site_id": "s", "api_key_secret": "k"}


class Recorder(VendorClient):
    """Records each request's jobs; `answer(names)` decides what the vendor does with it."""

    max_batch = 100

    def __init__(self, destination: dict[str, Any], answer=None) -> None:
        super().__init__("dest", parse_destination(destination), None, lambda _: "key")  # type: ignore[arg-type]
        self.requests: list[list[str]] = []
        self._lock = threading.Lock()
        self._answer = answer or (lambda names: [Accepted(200)] * len(names))

    def prepare(self, conversion):  # pragma: no cover - not used here
        raise NotImplementedError

    def post(self, batch: Sequence[list[VendorEvent]]) -> list[VendorOutcome]:
        names = [job[0]["name"] for job in batch]
        with self._lock:
            self.requests.append(names)
        return self._answer(names)


def jobs(count: int) -> list[list[VendorEvent]]:
    return [[{"name": f"j{i}"}] for i in range(count)]


def test_a_vendor_that_does_not_dedupe_gets_at_most_max_in_doubt_conversions_a_request() -> None:
    # Given 60 jobs for pagent (no dedupe: a hung request parks its jobs in doubt), default max 25
    client = Recorder(PAGENT)
    # When sent
    sent = Sender(client).send(jobs(60))
    # Then three requests of 25, 25 and 10, and every job records the request that carried it
    assert sorted(len(r) for r in client.requests) == [10, 25, 25]
    assert len({s.request_id for s in sent}) == 3
    assert [s.request_id for s in sent[:25]] == [sent[0].request_id] * 25


def test_a_vendor_that_dedupes_gets_full_batches_and_max_in_doubt_is_configurable() -> None:
    # Given Scanova (dedupes on the event id), When 100 jobs are sent, Then one request
    client = Recorder(SCANOVA)
    Sender(client).send(jobs(100))
    assert [len(r) for r in client.requests] == [100]
    # and pagent configured to risk 100 conversions per hung request gets full batches too
    wide = Recorder({**PAGENT, "max_in_doubt": 100})
    Sender(wide).send(jobs(100))
    assert [len(r) for r in wide.requests] == [100]


def test_requests_of_a_destination_run_side_by_side() -> None:
    # Given 3 requests that can only finish together (each waits for the other two)
    meeting = threading.Barrier(3, timeout=10)

    def answer(names: list[str]) -> list[VendorOutcome]:
        meeting.wait()  # raises BrokenBarrierError if the requests ran one after another
        return [Accepted(200)] * len(names)

    client = Recorder({**PAGENT, "concurrency": 3}, answer)
    # When sent, Then all three were in flight at once and every job is accepted
    sent = Sender(client).send(jobs(75))
    assert all(isinstance(s.outcome, Accepted) for s in sent) and len(client.requests) == 3


def test_a_hung_request_holds_one_slot_while_the_others_go_on() -> None:
    # Given one request that hangs until the others are done, and 2 slots
    others_done, total = threading.Event(), 6
    finished: list[str] = []

    def answer(names: list[str]) -> list[VendorOutcome]:
        if names == ["j0"]:
            assert others_done.wait(timeout=10), "the other requests waited for the hung one"
            return [UnansweredDeliveryError("no answer within 10 s")]
        finished.append(names[0])
        if len(finished) == total - 1:
            others_done.set()
        return [Accepted(200)]

    client = Recorder({**PAGENT, "concurrency": 2, "max_in_doubt": 1}, answer)
    sent = Sender(client).send(jobs(total))
    # Then only the hung request's job is unanswered; the other five went through the other slot
    assert isinstance(sent[0].outcome, UnansweredDeliveryError)
    assert all(isinstance(s.outcome, Accepted) for s in sent[1:])


def test_a_429_stops_the_rest_of_the_destinations_batch() -> None:
    # Given a vendor answering the first request with 429 (Retry-After 7), one request at a time
    throttled = TransientDeliveryError("rate limited", status=429, retry_after=7.0)

    def answer(names: list[str]) -> list[VendorOutcome]:
        raise throttled

    client = Recorder({**PAGENT, "concurrency": 1}, answer)
    sent = Sender(client).send(jobs(100))
    # Then no further request is sent, and every job is retried after the vendor's Retry-After;
    # the unsent come back in waves of a request per slot (25 here), not all at once
    assert len(client.requests) == 1
    assert all(isinstance(s.outcome, TransientDeliveryError) and s.outcome.status == 429 for s in sent)
    assert [s.outcome.retry_after for s in sent[::25]] == [7.0, 14.0, 21.0, 28.0]
    assert {s.request_id for s in sent[25:]} == {None}  # never sent


def test_an_in_doubt_dead_letter_names_its_request_within_sqs_limit() -> None:
    # Given an in-doubt job with everything: status, message and the request it shared
    own = {name: {"DataType": "String", "StringValue": "x"} for name in ("destination", "a", "b", "c")}
    attributes = dlq.failure_attributes(
        dlq.FailureReason.IN_DOUBT,
        vendor="pagent",
        attempts=1,
        first_failure_at=datetime(2026, 1, 1, tzinfo=UTC),
        status=200,
        message="pagent accepted 3 of 25 events",
        request_id="abc123",
        room=dlq.MAX_ATTRIBUTES - len(own),
    )
    # Then the request id is there and the message stays within SQS's 10 attributes
    assert attributes["request_id"]["StringValue"] == "abc123"
    assert len(own) + len(attributes) == 10 and "vendor" not in attributes
    short = dlq.failure_attributes(
        dlq.FailureReason.REJECTED, vendor="pagent", attempts=1, first_failure_at=datetime.now(UTC)
    )
    assert short["vendor"]["StringValue"] == "pagent" and "request_id" not in short


def test_a_short_retry_after_is_waited_out_and_the_request_sent_again() -> None:
    # Given a vendor answering the first request 429 with Retry-After 1 s, then accepting
    answers = [TransientDeliveryError("rate limited", status=429, retry_after=1.0)]

    def answer(names: list[str]) -> list[VendorOutcome]:
        if answers:
            raise answers.pop()
        return [Accepted(200)] * len(names)

    now, slept = [0.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    client = Recorder({**PAGENT, "concurrency": 1}, answer)
    # When 50 jobs are sent (two requests)
    sent = Sender(client, clock=lambda: now[0], sleep=sleep).send(jobs(50))
    # Then the destination waited once, the throttled request went again, and all were accepted
    assert slept == [1.0]
    assert [len(r) for r in client.requests] == [25, 25, 25]
    assert all(isinstance(s.outcome, Accepted) for s in sent)
