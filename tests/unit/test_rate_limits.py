"""A vendor's 429 through a whole deliver invocation, without AWS or network: the visibility
timeout each retried record gets, with and without a Retry-After header (pagent documents its
429 with none)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from aws_lambda_powertools import Metrics
from relay.config import parse_config
from relay.deliver.deliverer import Deliverer
from relay.models import Attribution, Conversion, DeliveryJob, SourceRef
from relay.settings import DeliverSettings
from requests.adapters import BaseAdapter

ENV = {
    "RELAY_CONFIG": "unused.yaml",
    "TABLE_NAME": "relay",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
    "MAX_RECEIVE_COUNT": "5",
    "RETRY_DELAY_SCALE": "1",
}
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:relay-ScanovaQueue"


class Throttling(BaseAdapter):
    """Answers every request 429, with the given headers."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__()
        self.headers = headers
        self.calls = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.calls += 1
        response = requests.Response()
        response.status_code, response.request, response.url = 429, request, request.url
        response.headers.update(self.headers)
        response._content = b""
        return response

    def close(self) -> None:
        pass


class NewJobs:
    """A ledger that knows none of the jobs (Scanova's are looked up, not claimed)."""

    def statuses(self, destination: str, conversion_ids: list[str], **_: Any) -> dict[str, None]:
        return dict.fromkeys(conversion_ids)

    def record(self, outcomes: Any) -> None:  # pragma: no cover - nothing is delivered here
        raise AssertionError("nothing was delivered")


class Sqs:
    def __init__(self) -> None:
        self.visibility: dict[str, int] = {}
        self.dead_letters: list[dict[str, Any]] = []

    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.visibility.update({e["ReceiptHandle"]: e["VisibilityTimeout"] for e in kwargs["Entries"]})
        return {"Successful": [], "Failed": []}

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.dead_letters += kwargs["Entries"]
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]], "Failed": []}


def record(receive_count: int) -> dict[str, Any]:
    conversion = Conversion(
        conversion_id=uuid.uuid4(),
        name="purchase",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        attribution=Attribution(scan_session_id=str(uuid.uuid4())),
        source=SourceRef(provider="stripe", event_id=f"evt_{receive_count}", event_type="charge.succeeded"),
    )
    return {
        "messageId": f"m-{receive_count}",
        "receiptHandle": f"receive-{receive_count}",
        "body": DeliveryJob(destination="scanova", conversion=conversion).model_dump_json(),
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "ApproximateFirstReceiveTimestamp": "1767225600000",
        },
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
    }


def deliver_throttled(headers: dict[str, str], receive_counts: list[int]) -> tuple[Sqs, dict[str, Any]]:
    """Deliver one record per receive count to a Scanova that answers everything with 429."""
    config = parse_config(
        {
            "destinations": {
                "scanova": {
                    "kind": "scanova",
                    "base_url": "https://s.example.com",
                    "site_id": "s",
                    "api_key_secret": "conversion-relay/scanova/key",
                }
            }
        }
    )
    http = requests.Session()
    http.mount("https://", Throttling(headers))
    now = [0.0]

    def sleep(seconds: float) -> None:  # the invocation's waits, without waiting
        now[0] += seconds

    sqs = Sqs()
    deliverer = Deliverer(
        kind="scanova",
        config=config,
        settings=DeliverSettings.from_env(ENV),
        ledger=NewJobs(),  # type: ignore[arg-type]
        sqs=sqs,
        metrics=Metrics(namespace="Test", service="test"),
        http=http,
        secret=lambda _: "key",
        rng=lambda: 1.0,  # the top of each jitter range
        clock=lambda: now[0],
        sleep=sleep,
    )
    answer = deliverer.handle({"Records": [record(count) for count in receive_counts]})
    return sqs, answer


def test_a_429_without_retry_after_backs_off_exponentially_per_receive() -> None:
    # Given a vendor answering 429 with no Retry-After header (as pagent documents it)
    # When records on their 1st to 4th receive are delivered
    sqs, answer = deliver_throttled({}, [1, 2, 3, 4])
    # Then each is retried with the queue's backoff, base 30 s doubled per receive, not a
    # one-second guess that would spend its five receives within seconds
    assert len(answer["batchItemFailures"]) == 4
    assert sqs.visibility == {"receive-1": 30, "receive-2": 60, "receive-3": 120, "receive-4": 240}
    assert sqs.dead_letters == []


def test_a_429_without_retry_after_on_the_last_receive_is_dead_lettered() -> None:
    # Given the same vendor, When a record is on its last receive (MAX_RECEIVE_COUNT 5)
    sqs, answer = deliver_throttled({}, [5])
    # Then it goes to the DLQ as retries_exhausted with the 429
    assert answer["batchItemFailures"] == []
    (entry,) = sqs.dead_letters
    attributes = {name: value["StringValue"] for name, value in entry["MessageAttributes"].items()}
    assert (attributes["failure_reason"], attributes["failure_status"]) == ("retries_exhausted", "429")


@pytest.mark.parametrize("receive_counts", [[1], [1, 2, 3, 4]])
def test_a_429_with_retry_after_is_honoured_whatever_the_receive_count(receive_counts: list[int]) -> None:
    # Given a vendor answering 429 with Retry-After: 7 (too long to wait out in the invocation)
    # When delivered
    sqs, answer = deliver_throttled({"Retry-After": "7"}, receive_counts)
    # Then every record waits Retry-After (+ up to 10 % spread: ceil(7.7)), not the backoff
    assert len(answer["batchItemFailures"]) == len(receive_counts)
    assert set(sqs.visibility.values()) == {8}
