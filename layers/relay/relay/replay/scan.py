"""The vendor dead-letter queues as replay reads them: parked jobs, read under a visibility hold.

A DLQ is read page by page with a visibility *hold*: every message received stays
invisible until the scan ends, so later receives return new messages and nothing is
seen twice; when the scan ends (or fails, or is interrupted) every message not deleted
is made visible again at once. Nothing is lost or changed by reading; SQS only counts
one more receive (`ApproximateReceiveCount`). What a parked message says is the
dead-letter contract of relay.dlq.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from relay import pii
from relay.dlq import FailureReason, parked_reason
from relay.errors import ReplayError, aws_error
from relay.models import DeliveryJob
from relay.replay.options import parse_moment
from relay.sqs import BATCH_LIMIT, MAX_VISIBILITY_SECONDS, batch_call

logger = Logger(child=True)


@dataclass(frozen=True)
class QueuePair:
    """A vendor's queue and the dead-letter queue its jobs are parked in."""

    vendor: str
    queue_url: str
    dlq_url: str


def _attribute_value(attribute: Mapping[str, Any]) -> str | None:
    return attribute.get("StringValue")


def _timestamp(millis: str | None) -> datetime | None:
    return datetime.fromtimestamp(int(millis) / 1000, tz=UTC) if millis else None


@dataclass(frozen=True)
class ParkedJob:
    """One DLQ message: the delivery job, the failure the deliver function recorded, SQS's counters."""

    vendor: str
    message_id: str
    receipt_handle: str
    body: str
    attributes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    system: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_message(cls, vendor: str, message: Mapping[str, Any]) -> ParkedJob:
        return cls(
            vendor=vendor,
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=message.get("Body", ""),
            attributes=message.get("MessageAttributes") or {},
            system=message.get("Attributes") or {},
        )

    def attribute(self, name: str) -> str | None:
        value = self.attributes.get(name)
        return _attribute_value(value) if value else None

    @cached_property
    def job(self) -> DeliveryJob | None:
        """The delivery job, or None when the body is not one (a malformed job)."""
        try:
            return DeliveryJob.model_validate_json(self.body)
        except ValidationError:
            return None

    @property
    def destination(self) -> str | None:
        return self.attribute("destination") or (self.job.destination if self.job else None)

    @property
    def conversion_id(self) -> str | None:
        return self.attribute("conversion_id") or (
            str(self.job.conversion.conversion_id) if self.job else None
        )

    @property
    def conversion_name(self) -> str | None:
        return self.attribute("conversion_name") or (self.job.conversion.name if self.job else None)

    @property
    def event_time(self) -> datetime | None:
        try:
            recorded = parse_moment(self.attribute("event_time"))
        except ValueError:
            recorded = None
        return recorded or (self.job.conversion.occurred_at if self.job else None)

    @property
    def reason(self) -> FailureReason:
        """Why it is parked (relay.dlq.parked_reason: none recorded means SQS redrive)."""
        return parked_reason(self.attribute("failure_reason"), is_job=self.job is not None)

    @property
    def failure_status(self) -> int | None:
        status = self.attribute("failure_status")
        return int(float(status)) if status else None

    @property
    def failure_message(self) -> str | None:
        return self.attribute("failure_message")

    @property
    def request_id(self) -> str | None:
        """The vendor request an in-doubt job shared with others (relay.dlq), if any."""
        return self.attribute("request_id")

    @property
    def attempts(self) -> int:
        """Delivery attempts, or SQS's receive count for a redriven job (reading the DLQ adds one)."""
        recorded = self.attribute("attempts")
        return int(float(recorded)) if recorded else int(self.system.get("ApproximateReceiveCount", 0))

    @property
    def parked_since(self) -> datetime | None:
        try:
            first = parse_moment(self.attribute("first_failure_at"))
        except ValueError:
            first = None
        return first or _timestamp(self.system.get("SentTimestamp"))

    def requeue_attributes(self) -> dict[str, dict[str, str]]:
        """The job's own attributes only: the deliver function starts it afresh."""
        assert self.job is not None
        return self.job.message_attributes()

    def describe(self, ledger_status: str | None = None) -> dict[str, Any]:
        """Everything about this message, for `relay dlq show` (hashed identity only)."""
        if self.job is not None:
            body: Any = self.job.model_dump(mode="json")
        else:
            try:
                # Not a job the relay wrote: scrub emails and phones before showing it.
                body = pii.scrub(json.loads(self.body))
            except ValueError:
                body = f"<{len(self.body)} bytes, not JSON>"
        return {
            "vendor": self.vendor,
            "message_id": self.message_id,
            "reason": self.reason,
            "ledger": ledger_status,
            "attributes": {name: _attribute_value(value) for name, value in sorted(self.attributes.items())},
            "sqs": {
                "sent_at": _iso(_timestamp(self.system.get("SentTimestamp"))),
                "receive_count": int(self.system.get("ApproximateReceiveCount", 0)),
            },
            "job": body,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class DeadLetterScan:
    """Reads one DLQ under a visibility hold; releases what it did not delete when it ends.

    Use as a context manager: on exit (normal, error or Ctrl-C) every message still held
    is made visible again, so an interrupted run hides nothing for longer than needed.
    """

    def __init__(self, sqs: Any, pair: QueuePair, *, hold_seconds: int, wait_seconds: int = 1):
        self._sqs = sqs
        self.pair = pair
        self._hold = max(1, min(MAX_VISIBILITY_SECONDS, hold_seconds))
        self._wait = wait_seconds
        self._held: dict[str, ParkedJob] = {}
        self._seen: set[str] = set()

    def __enter__(self) -> DeadLetterScan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def pages(self, limit: int) -> Iterator[list[ParkedJob]]:
        """New messages, up to 10 a page, until the queue is empty, `limit` is read, or it wraps."""
        read = 0
        while read < limit:
            answer = call(
                self._sqs.receive_message,
                QueueUrl=self.pair.dlq_url,
                MaxNumberOfMessages=min(BATCH_LIMIT, limit - read),
                VisibilityTimeout=self._hold,
                WaitTimeSeconds=self._wait,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            )
            page = []
            for message in answer.get("Messages", []):
                parked = ParkedJob.from_message(self.pair.vendor, message)
                self._held[parked.message_id] = parked  # keep the newest receipt handle
                if parked.message_id not in self._seen:
                    self._seen.add(parked.message_id)
                    page.append(parked)
            # Only messages already seen: the hold ran out and the scan wrapped around.
            if not page:
                return
            read += len(page)
            yield page

    def delete(self, jobs: Sequence[ParkedJob]) -> list[ParkedJob]:
        """Delete from the DLQ; returns the jobs that could not be deleted (they stay held)."""
        entries = [{"ReceiptHandle": self._held[j.message_id].receipt_handle} for j in jobs]
        try:
            failed = batch_call(self._sqs.delete_message_batch, self.pair.dlq_url, entries)
        except (BotoCoreError, ClientError) as exc:
            raise ReplayError(f"SQS delete_message_batch failed: {aws_error(exc)}") from exc
        for index, job in enumerate(jobs):
            if index not in failed:
                self._held.pop(job.message_id, None)
        return [jobs[index] for index in sorted(failed)]

    def release(self) -> None:
        """Make every held message visible again (best effort: the hold expires anyway)."""
        held, self._held = list(self._held.values()), {}
        entries = [{"ReceiptHandle": j.receipt_handle, "VisibilityTimeout": 0} for j in held]
        try:
            batch_call(self._sqs.change_message_visibility_batch, self.pair.dlq_url, entries)
        except (BotoCoreError, ClientError) as exc:
            logger.warning(
                "could not release DLQ messages; they reappear when the hold ends",
                extra={"vendor": self.pair.vendor, "count": len(held), "error": type(exc).__name__},
            )


def hold_seconds(max_jobs: int, rate: float | None = None) -> int:
    """How long a scan keeps what it read hidden: its whole run (about 0.1 s a job, plus the pacing).

    Too short and held messages reappear mid-scan (the scan then stops early); too long only
    matters after a hard kill, when unreleased messages wait out the hold.
    """
    paced = math.ceil(max_jobs / rate) if rate else 0
    return 60 + math.ceil(max_jobs * 0.1) + paced


def call(operation: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    try:
        return operation(**kwargs)
    except (BotoCoreError, ClientError) as exc:
        raise ReplayError(f"SQS {operation.__name__} failed: {aws_error(exc)}") from exc
