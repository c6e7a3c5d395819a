"""What replay reports: parked jobs as listed, a replay's summary, a native move."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field
from relay.dlq import FailureReason

if TYPE_CHECKING:
    from relay.replay.scan import ParkedJob

# A dry run lists at most this many jobs (a Lambda answer is at most 6 MB); its count is exact.
SELECTED_LIMIT = 1000


class ReplayOutcome(StrEnum):
    """What replay did with one parked job."""

    MOVED = "moved"
    WOULD_MOVE = "would_move"
    ALREADY_DELIVERED = "already_delivered"
    DUPLICATE = "duplicate"
    NOT_MATCHING = "not_matching"
    LEFT = "left"
    SEND_FAILED = "send_failed"


class JobRef(BaseModel):
    """A parked job as listed: no body, no identity."""

    vendor: str
    message_id: str
    conversion_id: str | None
    name: str | None
    destination: str | None
    reason: FailureReason
    status: int | None = Field(default=None, description="the vendor's HTTP status, if any")
    message: str | None = Field(default=None, description="the vendor's reason, if any")
    attempts: int
    event_time: datetime | None
    parked_since: datetime | None
    ledger: str | None = None
    request_id: str | None = Field(default=None, description="in doubt: the vendor request it shared")

    @classmethod
    def of(cls, parked: ParkedJob, ledger: str | None = None) -> JobRef:
        return cls(
            vendor=parked.vendor,
            message_id=parked.message_id,
            conversion_id=parked.conversion_id,
            name=parked.conversion_name,
            destination=parked.destination,
            reason=parked.reason,
            status=parked.failure_status,
            message=parked.failure_message,
            attempts=parked.attempts,
            event_time=parked.event_time,
            parked_since=parked.parked_since,
            ledger=ledger,
            request_id=parked.request_id,
        )


class Listing(BaseModel):
    jobs: list[JobRef]
    by_reason: dict[str, int]
    approximate_total: dict[str, int] = Field(description="per vendor DLQ, as SQS counts it")
    truncated: bool = Field(description="--max was reached before the queues were read to the end")


class ReplaySummary(BaseModel):
    destination: str
    vendor: str
    dry_run: bool
    force: bool
    scanned: int = 0
    moved: int = 0
    would_move: int = 0
    already_delivered: int = Field(default=0, description="ledger says delivered: deleted, not sent")
    duplicates: int = Field(default=0, description="a second copy of a job moved in this run: deleted")
    not_matching: int = 0
    left: dict[str, int] = Field(default_factory=dict, description="matching jobs left parked, by reason")
    errors: list[str] = Field(default_factory=list)
    stopped: Literal["max", "deadline"] | None = None
    selected: list[JobRef] = Field(
        default_factory=list, description=f"dry run: what would move (the first {SELECTED_LIMIT})"
    )

    @property
    def ok(self) -> bool:
        return not self.errors and not self.left.get("send_failed")


class NativeMove(BaseModel):
    vendor: str
    task_handle: str
    source_arn: str
    destination_arn: str
    approximate_messages: int
    rate: int | None
