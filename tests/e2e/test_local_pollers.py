"""The local SQS event source mapping (local.pollers) against the embedded AWS, with a stub function.

The stub records every event it gets, reports messages whose body starts with "fail" as
batch item failures, and raises when a body is "crash".
"""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.pollers import EventSourceMapping, QueuePoller
from local.runtime import FunctionRuntime, lambda_environment
from local.stack.aws import EmbeddedAws

pytestmark = pytest.mark.e2e

STUB = """
import json
import os


def lambda_handler(event, context):
    with open(os.environ["RECORD_FILE"], "a") as record:
        record.write(json.dumps(event) + "\\n")
    bodies = [r["body"] for r in event["Records"]]
    if "crash" in bodies:
        raise RuntimeError("the whole batch fails")
    failed = [r["messageId"] for r in event["Records"] if r["body"].startswith("fail")]
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}
"""


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    embedded = EmbeddedAws(port=0).start()  # an ephemeral port
    yield embedded
    embedded.stop()


class Harness:
    def __init__(self, aws: EmbeddedAws, root: Path):
        self.sqs = aws.session().client("sqs")
        self.root = root
        self.region = aws.region
        self._started: list[tuple[QueuePoller, FunctionRuntime]] = []

    def queues(self, *, visibility: int, max_receive_count: int = 2) -> tuple[str, str, str]:
        name = f"q-{uuid.uuid4().hex[:8]}"
        dlq_url = self.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
        url = self.sqs.create_queue(
            QueueName=name, Attributes={"VisibilityTimeout": str(visibility), "RedrivePolicy": policy}
        )["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return url, arn, dlq_url

    def send(self, url: str, *bodies: str) -> None:
        for body in bodies:
            self.sqs.send_message(
                QueueUrl=url,
                MessageBody=body,
                MessageAttributes={"destination": {"DataType": "String", "StringValue": "scanova"}},
            )

    def poll(self, url: str, arn: str, *, batch_size: int = 10, window: float = 0.2) -> Path:
        code_uri = self.root / f"stub-{uuid.uuid4().hex[:8]}"
        code_uri.mkdir()
        (code_uri / "app.py").write_text(textwrap.dedent(STUB))
        record_file = code_uri / "events.jsonl"
        environment = lambda_environment(
            logical_id="Stub",
            function_name="stub",
            code_uri=code_uri,
            handler="app.lambda_handler",
            variables={"RECORD_FILE": str(record_file)},
            region=self.region,
        )
        runtime = FunctionRuntime(
            logical_id="Stub",
            function_name="stub",
            environment=environment,
            timeout_seconds=10,
            region=self.region,
            account_id="123456789012",
        )
        mapping = EventSourceMapping("Stub", url, arn, self.region, batch_size, window, True)
        poller = QueuePoller(mapping, runtime, self.sqs, failure_visibility_seconds=1).start()
        self._started.append((poller, runtime))
        return record_file

    def count(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def stop(self) -> None:
        for poller, runtime in self._started:
            poller.stop()
            runtime.close()
            poller.join()


@pytest.fixture
def harness(aws, tmp_path) -> Iterator[Harness]:
    harness = Harness(aws, tmp_path)
    yield harness
    harness.stop()


def events(record_file: Path) -> list[dict]:
    if not record_file.exists():
        return []
    return [json.loads(line) for line in record_file.read_text().splitlines()]


def test_failed_items_come_back_until_redrive_moves_them_to_the_dlq(harness, poll):
    """Given a queue (visibility 1 s, maxReceiveCount 2) holding two good messages and one failing one,
    When the poller invokes the function with ReportBatchItemFailures,
    Then the good ones are deleted after the first batch, the failing one is received again with a
    higher ApproximateReceiveCount, and SQS redrive then moves it to the DLQ."""
    url, arn, dlq_url = harness.queues(visibility=1)
    harness.send(url, "ok-1", "fail-1", "ok-2")

    record_file = harness.poll(url, arn)
    poll(lambda: harness.count(dlq_url) == 1, "the failing message in the DLQ")

    batches = events(record_file)
    assert sorted(r["body"] for r in batches[0]["Records"]) == ["fail-1", "ok-1", "ok-2"]
    retried = [r for batch in batches[1:] for r in batch["Records"]]
    assert [(r["body"], r["attributes"]["ApproximateReceiveCount"]) for r in retried] == [("fail-1", "2")]
    assert harness.count(url) == 0
    parked = harness.sqs.receive_message(QueueUrl=dlq_url, MessageAttributeNames=["All"])["Messages"][0]
    assert parked["Body"] == "fail-1"
    assert parked["MessageAttributes"]["destination"]["StringValue"] == "scanova"


def test_records_are_shaped_as_lambda_sends_them(harness, poll):
    """Given one message with an attribute, When the function gets it, Then the record has Lambda's shape."""
    url, arn, _ = harness.queues(visibility=30)
    harness.send(url, "hello")

    record_file = harness.poll(url, arn)
    poll(lambda: events(record_file), "one invocation")

    (record,) = events(record_file)[0]["Records"]
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "md5OfMessageAttributes",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["body"] == "hello"
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["awsRegion"] == "us-east-1"
    assert record["messageAttributes"]["destination"] == {
        "stringValue": "scanova",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    } <= set(record["attributes"])
    poll(lambda: harness.count(url) == 0, "the message deleted")


def test_a_failed_invocation_is_retried_soon_and_then_dead_lettered(harness, poll):
    """Given a queue with a 30 s visibility timeout and a message that makes the function raise,
    When the invocation fails as a whole,
    Then nothing is deleted, the batch is retried after the scaled-down visibility (1 s here, not 30),
    and after maxReceiveCount receives the message is in the DLQ."""
    url, arn, dlq_url = harness.queues(visibility=30)
    harness.send(url, "crash")

    record_file = harness.poll(url, arn)
    poll(lambda: harness.count(dlq_url) == 1, "the crashing message in the DLQ", timeout=15)

    assert [len(batch["Records"]) for batch in events(record_file)] == [1, 1]


def test_batches_are_at_most_the_batch_size(harness, poll):
    """Given five waiting messages and a batch size of 2, When polled, Then the batches hold 2, 2 and 1."""
    url, arn, _ = harness.queues(visibility=30)
    harness.send(url, *(f"ok-{i}" for i in range(5)))

    record_file = harness.poll(url, arn, batch_size=2)
    poll(lambda: harness.count(url) == 0, "every message done")

    assert [len(batch["Records"]) for batch in events(record_file)] == [2, 2, 1]


def test_the_batching_window_gathers_messages_that_arrive_after_the_first(harness, poll):
    """Given a 1.5 s batching window, When a message arrives and two more follow at once,
    Then all three are delivered in one invocation."""
    url, arn, _ = harness.queues(visibility=30)
    record_file = harness.poll(url, arn, window=1.5)
    harness.send(url, "ok-first")
    poll(lambda: harness.count(url) == 1, "the first message received")

    harness.send(url, "ok-second", "ok-third")
    poll(lambda: events(record_file), "one invocation")

    assert sorted(r["body"] for r in events(record_file)[0]["Records"]) == [
        "ok-first",
        "ok-second",
        "ok-third",
    ]
