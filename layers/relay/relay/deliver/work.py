"""One record of a deliver function's batch, what becomes of it, and the time left to decide."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from relay.dlq import FailureReason
from relay.ledger import Claim
from relay.models import DeliveryJob
from relay.vendors.client import VendorClient

LEASE_MARGIN_SECONDS = 30  # a claim outlives its invocation by this much (clock skew)
RESERVE_SECONDS = 5  # kept at the end of an invocation to settle the batch
NO_CONTEXT_SECONDS = 60  # invocation length assumed without a Lambda context (scripts, tests)
# Retry reasons of jobs no request carried: the destination was throttled, or time ran out.
RATE_LIMITED = "rate_limited"
OUT_OF_TIME = "out_of_time"


class Verdict(StrEnum):
    DELIVERED = "delivered"
    SKIPPED = "skipped"  # done without a vendor call (counted with its reason)
    RETRY = "retry"  # a batch item failure: SQS delivers the record again
    PARKED = "parked"  # sent to the dead-letter queue


@dataclass
class Work:
    """One record of the batch and what becomes of it."""

    record: SQSRecord
    receive_count: int
    job: DeliveryJob | None = None
    client: VendorClient | None = None
    claim: Claim | None = None
    events: list[dict[str, Any]] | None = None
    primary: Work | None = None  # the first record of the batch with the same delivery key
    unclaimed: bool = False  # looked up in the ledger, not claimed (the vendor dedupes): recorded after
    sending: bool = False
    request_id: str | None = None  # the vendor request that carried it (shared with other jobs)
    verdict: Verdict | None = None
    reason: str | None = None  # short and machine-readable: a skip reason, an error class
    failure: FailureReason | None = None
    status: int | None = None
    message: str | None = None  # the vendor's reason (bounded, no PII)
    retry_after: float | None = None
    duplicate: bool = False  # accepted, and the vendor says it already had the event id

    @property
    def destination(self) -> str:
        if self.job is not None:
            return self.job.destination
        attribute = self.record.message_attributes["destination"]
        return (attribute.string_value if attribute else None) or "unknown"

    @property
    def open(self) -> bool:
        return self.verdict is None

    def deliver(self, status: int | None, duplicate: bool) -> None:
        self.verdict, self.status, self.duplicate = Verdict.DELIVERED, status, duplicate

    def skip(self, reason: str) -> None:
        self.verdict, self.reason = Verdict.SKIPPED, reason

    def retry(
        self,
        reason: str,
        *,
        status: int | None = None,
        message: str | None = None,
        after: float | None = None,
    ) -> None:
        self.verdict, self.reason, self.status, self.message = Verdict.RETRY, reason, status, message
        self.retry_after = after

    def park(
        self, failure: FailureReason, reason: str, *, status: int | None = None, message: str | None = None
    ) -> None:
        self.verdict, self.failure, self.reason = Verdict.PARKED, failure, reason
        self.status, self.message = status, message

    def ids(self) -> dict[str, Any]:
        """What a log line may say about this record: ids, never the payload."""
        return {
            "destination": self.destination,
            "conversion_id": str(self.job.conversion.conversion_id) if self.job else None,
            "message_id": self.record.message_id,
        }


class Deadline:
    """The invocation's remaining time (Lambda context), to stop calling vendors in time."""

    def __init__(self, context: Any = None):
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            self._remaining_ms: Callable[[], float] = context.get_remaining_time_in_millis
        else:
            end = time.monotonic() + NO_CONTEXT_SECONDS
            self._remaining_ms = lambda: (end - time.monotonic()) * 1000

    def remaining(self) -> float:
        return self._remaining_ms() / 1000

    def allows(self, seconds: float) -> bool:
        return self.remaining() - RESERVE_SECONDS >= seconds

    def lease_seconds(self) -> float:
        return self.remaining() + LEASE_MARGIN_SECONDS
