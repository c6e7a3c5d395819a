"""Lambda's SQS event source mapping, for the deliver functions of the local stack.

One poller thread per SQS-triggered function, doing what Lambda's pollers do:
- long-poll the queue (with the queue's own visibility timeout), gather up to the
  mapping's BatchSize messages or until its MaximumBatchingWindowInSeconds has passed
  since the first one, and invoke the function once with Lambda's SQS event;
- with ReportBatchItemFailures, delete every message but those the answer lists; an
  answer that names an unknown or empty itemIdentifier fails the whole batch;
- a failed invocation (error, timeout) deletes nothing: the messages reappear when
  their visibility ends and count a receive more, and the queue's redrive policy moves
  them to the DLQ once received maxReceiveCount times (moto does this on receive, as SQS).

One local difference: after a failed invocation the batch's visibility timeout (360 s in
the template) is shortened by the retry-delay scale, so a crash is retried in seconds.
Each poller runs one batch at a time (Lambda may run a few concurrently).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.runtime import FunctionRuntime, Invocation

_SQS_RECEIVE_LIMIT = 10
_SQS_BATCH_LIMIT = 10
_LONG_POLL_SECONDS = 1  # short enough that stop() is prompt


@dataclass(frozen=True)
class EventSourceMapping:
    function: str  # logical id
    queue_url: str
    queue_arn: str
    region: str
    batch_size: int
    batching_window: float  # seconds
    report_batch_item_failures: bool


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as Lambda puts it in the event (lower-camel keys and attribute shapes)."""
    attributes = message.get("MessageAttributes") or {}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {
            name: {
                key: value
                for key, value in (
                    ("stringValue", attr.get("StringValue")),
                    ("binaryValue", attr.get("BinaryValue")),
                    ("stringListValues", attr.get("StringListValues", [])),
                    ("binaryListValues", attr.get("BinaryListValues", [])),
                    ("dataType", attr["DataType"]),
                )
                if value is not None
            }
            for name, attr in attributes.items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_items(answer: Any, message_ids: set[str]) -> set[str] | None:
    """The messageIds a ReportBatchItemFailures answer names; None means the whole batch failed."""
    if answer is None:
        return set()
    if not isinstance(answer, dict):
        return None
    failures = answer.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in message_ids:
            return None  # Lambda: an invalid identifier fails the batch
        failed.add(identifier)
    return failed


class QueuePoller:
    """Polls one queue and invokes one function with its batches until stopped."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        runtime: FunctionRuntime,
        sqs: Any,
        *,
        failure_visibility_seconds: int,
        log: Callable[[str], None] | None = None,
    ):
        self.mapping = mapping
        self._runtime = runtime
        self._sqs = sqs
        self._failure_visibility = failure_visibility_seconds
        self._log = log or (lambda _line: None)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poller-{mapping.function}", daemon=True)

    def start(self) -> QueuePoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the poller to finish its current batch and stop (see join)."""
        self._stopping.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                batch = self._gather()
                if batch and not self._stopping.is_set():
                    self._deliver(batch)
            except (BotoCoreError, ClientError) as exc:
                # A transient error (or the embedded AWS going away): like Lambda, keep polling.
                self._pause(f"{type(exc).__name__}: {exc}")
            except Exception:  # a bug of the poller itself must not end it silently
                self._pause(traceback.format_exc())

    def _pause(self, why: str) -> None:
        if not self._stopping.is_set():
            self._log(f"SQS → {self.mapping.function}: polling failed, again in 1 s: {why}")
            self._stopping.wait(1.0)

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        answer = self._sqs.receive_message(
            QueueUrl=self.mapping.queue_url,
            MaxNumberOfMessages=max(1, min(_SQS_RECEIVE_LIMIT, count)),
            WaitTimeSeconds=wait,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        return answer.get("Messages", [])

    def _gather(self) -> list[dict[str, Any]]:
        """Up to batch_size messages, waiting at most the batching window after the first."""
        batch = self._receive(self.mapping.batch_size, _LONG_POLL_SECONDS)
        if not batch:
            return []
        deadline = time.monotonic() + self.mapping.batching_window
        while len(batch) < self.mapping.batch_size and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            more = self._receive(self.mapping.batch_size - len(batch), 0)
            if more:
                batch += more
            else:
                self._stopping.wait(min(remaining, 0.05))
        return batch

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        mapping = self.mapping
        event = {"Records": [lambda_record(m, mapping.queue_arn, mapping.region) for m in batch]}
        invocation = self._runtime.invoke(event)
        ids = {m["MessageId"] for m in batch}
        if not invocation.ok:
            failed: set[str] | None = None
        elif mapping.report_batch_item_failures:
            failed = failed_items(invocation.result, ids)
        else:
            failed = set()
        self._log(_batch_line(mapping.function, len(batch), invocation, failed))
        if failed is None:
            self._retry_soon(batch)
            return
        self._delete([m for m in batch if m["MessageId"] not in failed])

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), _SQS_BATCH_LIMIT):
            chunk = messages[start : start + _SQS_BATCH_LIMIT]
            self._sqs.delete_message_batch(
                QueueUrl=self.mapping.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )

    def _retry_soon(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), _SQS_BATCH_LIMIT):
            chunk = messages[start : start + _SQS_BATCH_LIMIT]
            self._sqs.change_message_visibility_batch(
                QueueUrl=self.mapping.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": self._failure_visibility,
                    }
                    for i, m in enumerate(chunk)
                ],
            )


def _batch_line(function: str, size: int, invocation: Invocation, failed: set[str] | None) -> str:
    cold = ", cold start" if invocation.cold_start else ""
    if failed is None:
        why = invocation.error or {"errorType": "InvalidBatchItemFailures"}
        return (
            f"SQS → {function}: {size} message(s) failed as a batch ({why.get('errorType')}: "
            f"{why.get('errorMessage', 'the answer names an unknown itemIdentifier')}){cold}"
        )
    return (
        f"SQS → {function}: {size} message(s), {size - len(failed)} done, {len(failed)} to retry "
        f"({invocation.duration_ms:.0f} ms{cold})"
    )
