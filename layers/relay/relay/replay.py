"""Reading the vendor dead-letter queues and replaying parked jobs (the CLI and ReplayFunction).

A DLQ is read page by page with a visibility *hold*: every message received stays
invisible until the scan ends, so later receives return new messages and nothing is
seen twice; when the scan ends (or fails, or is interrupted) every message not deleted
is made visible again at once. Nothing is lost or changed by reading; SQS only counts
one more receive (`ApproximateReceiveCount`).

Replay sends a job to its vendor queue first and deletes it from the DLQ after, so an
interrupted replay loses nothing; at worst a re-run queues a job twice, and the
delivery ledger (keyed destination#conversion_id) absorbs the second copy. Before a job
moves, the ledger is asked: delivered → deleted from the DLQ (never sent twice);
rejected / in_doubt → left parked unless `force` (then `Ledger.forget` first).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal, Protocol, get_args

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from relay import pii
from relay.config import RelayConfig, load_config
from relay.exceptions import (
    NativeMoveUnsupportedError,
    ParkedJobNotFoundError,
    ReplayError,
    UnknownDestinationError,
)
from relay.ledger import Ledger
from relay.models import DeliveryJob
from relay.settings import VENDOR_KINDS, ReplaySettings

logger = Logger(child=True)

FailureReason = Literal["rejected", "in_doubt", "retries_exhausted", "malformed_job"]
FAILURE_REASONS: frozenset[str] = frozenset(get_args(FailureReason))
# Parked on purpose by the deliver function: a resend needs the operator's --force.
HELD_REASONS = frozenset({"rejected", "in_doubt"})
# Attributes the deliver function adds when it parks a job; replay strips them.
FAILURE_ATTRIBUTES = frozenset(
    {"failure_reason", "failure_status", "failure_message", "attempts", "first_failure_at", "vendor"}
)
# Vendor kind → the template's logical-id prefix (ScanovaQueue, ScanovaDeadLetterQueue, ScanovaQueueUrl…).
LOGICAL_PREFIX = {"scanova": "Scanova", "pagent": "Pagent", "scalev": "Scalev", "quicklizard": "QuickLizard"}

SQS_BATCH_LIMIT = 10
MAX_VISIBILITY_SECONDS = 12 * 3600
NATIVE_MAX_RATE = 500  # StartMessageMoveTask's MaxNumberOfMessagesPerSecond ceiling
# A dry run lists at most this many jobs (a Lambda answer is at most 6 MB); its count is exact.
SELECTED_LIMIT = 1000
# ReplayFunction stops reading this long before its timeout, so it can still finish the batch in hand.
DEADLINE_MARGIN_SECONDS = 30
_RELATIVE_TIME = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# --------------------------------------------------------------------------- options


def parse_time(value: Any, now: datetime | None = None) -> datetime | None:
    """ISO 8601 (UTC when no zone is given) or a relative age such as 30m, 2h, 3d, 1w (that long ago)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        relative = _RELATIVE_TIME.match(text)
        if relative:
            amount, unit = float(relative.group(1)), relative.group(2)
            return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} is neither ISO 8601 nor a relative age like 2h or 3d") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_rate(value: Any) -> float | None:
    """5, 5.0, "5" or "5/s" messages per second."""
    if value is None or value == "":
        return None
    text = str(value).strip().removesuffix("/s")
    try:
        return float(text)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a rate (messages per second, e.g. 5 or 5/s)") from exc


Moment = Annotated[datetime | None, BeforeValidator(parse_time)]
Rate = Annotated[float | None, BeforeValidator(parse_rate)]


class ReplayRequest(BaseModel):
    """What to replay: the CLI's options and ReplayFunction's event, validated once here."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    destination: str = Field(min_length=1, description="a destination of the config, or a vendor kind")
    name: str | None = Field(default=None, description="only this conversion name")
    reason: FailureReason | None = Field(default=None, description="only jobs parked for this reason")
    since: Moment = Field(default=None, description="event_time at or after (ISO 8601 or 2h, 3d)")
    until: Moment = Field(default=None, description="event_time before (ISO 8601 or 2h, 3d)")
    max_jobs: int = Field(default=1000, ge=1, le=100_000, alias="max", description="read at most this many")
    rate: Rate = Field(default=None, gt=0, description="messages per second sent to the vendor queue")
    dry_run: bool = False
    force: bool = Field(default=False, description="also re-deliver rejected and in_doubt jobs")
    native: bool = Field(default=False, description="SQS StartMessageMoveTask (AWS only, no filters)")

    @model_validator(mode="after")
    def _consistent(self) -> ReplayRequest:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be before until")
        if self.native:
            extra = [
                option
                for option in ("name", "reason", "since", "until", "dry_run", "force")
                if getattr(self, option)
            ]
            if extra:
                raise ValueError(
                    f"--native moves the whole dead-letter queue; it takes no {', '.join(extra)} "
                    "(replay without --native to filter)"
                )
            if self.rate is not None and not 1 <= self.rate <= NATIVE_MAX_RATE:
                raise ValueError(f"a native move's rate is 1 to {NATIVE_MAX_RATE} messages per second")
        return self


# --------------------------------------------------------------------------- parked jobs


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
            recorded = parse_time(self.attribute("event_time"))
        except ValueError:
            recorded = None
        return recorded or (self.job.conversion.occurred_at if self.job else None)

    @property
    def reason(self) -> FailureReason:
        """Why it is parked; no failure_reason means SQS redrive moved it after maxReceiveCount."""
        if self.job is None:
            return "malformed_job"
        recorded = self.attribute("failure_reason")
        return recorded if recorded in FAILURE_REASONS else "retries_exhausted"  # type: ignore[return-value]

    @property
    def failure_status(self) -> int | None:
        status = self.attribute("failure_status")
        return int(float(status)) if status else None

    @property
    def failure_message(self) -> str | None:
        return self.attribute("failure_message")

    @property
    def attempts(self) -> int:
        """Delivery attempts, or SQS's receive count for a redriven job (reading the DLQ adds one)."""
        recorded = self.attribute("attempts")
        return int(float(recorded)) if recorded else int(self.system.get("ApproximateReceiveCount", 0))

    @property
    def parked_since(self) -> datetime | None:
        try:
            first = parse_time(self.attribute("first_failure_at"))
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
            answer = _call(
                self._sqs.receive_message,
                QueueUrl=self.pair.dlq_url,
                MaxNumberOfMessages=min(SQS_BATCH_LIMIT, limit - read),
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
        failed: list[ParkedJob] = []
        for chunk in _chunks(jobs):
            entries = [
                {"Id": str(i), "ReceiptHandle": self._held[j.message_id].receipt_handle}
                for i, j in enumerate(chunk)
            ]
            answer = _call(self._sqs.delete_message_batch, QueueUrl=self.pair.dlq_url, Entries=entries)
            bad = {entry["Id"] for entry in answer.get("Failed", [])}
            for i, job in enumerate(chunk):
                if str(i) in bad:
                    failed.append(job)
                else:
                    self._held.pop(job.message_id, None)
        return failed

    def release(self) -> None:
        """Make every held message visible again (best effort: the hold expires anyway)."""
        held, self._held = list(self._held.values()), {}
        for chunk in _chunks(held):
            entries = [
                {"Id": str(i), "ReceiptHandle": j.receipt_handle, "VisibilityTimeout": 0}
                for i, j in enumerate(chunk)
            ]
            try:
                self._sqs.change_message_visibility_batch(QueueUrl=self.pair.dlq_url, Entries=entries)
            except (BotoCoreError, ClientError) as exc:
                logger.warning(
                    "could not release DLQ messages; they reappear when the hold ends",
                    extra={"vendor": self.pair.vendor, "count": len(chunk), "error": type(exc).__name__},
                )


def _hold_seconds(max_jobs: int, rate: float | None = None) -> int:
    """How long a scan keeps what it read hidden: its whole run (about 0.1 s a job, plus the pacing).

    Too short and held messages reappear mid-scan (the scan then stops early); too long only
    matters after a hard kill, when unreleased messages wait out the hold.
    """
    paced = math.ceil(max_jobs / rate) if rate else 0
    return 60 + math.ceil(max_jobs * 0.1) + paced


def _chunks(items: Sequence[Any], size: int = SQS_BATCH_LIMIT) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _call(operation: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    try:
        return operation(**kwargs)
    except (BotoCoreError, ClientError) as exc:
        raise ReplayError(f"SQS {operation.__name__} failed: {_aws_error(exc)}") from exc


def _aws_error(exc: BotoCoreError | ClientError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return type(exc).__name__


# --------------------------------------------------------------------------- results


class Outcome(StrEnum):
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


# --------------------------------------------------------------------------- the replayer


class LedgerView(Protocol):
    """What replay needs of `relay.ledger.Ledger`."""

    def status(self, destination: str, conversion_id: str) -> str | None: ...

    def forget(self, destination: str, conversion_id: str) -> None: ...


@dataclass(frozen=True)
class Selection:
    pair: QueuePair
    destinations: frozenset[str] | None  # None: every destination of the vendor

    def includes(self, parked: ParkedJob) -> bool:
        # A job without a destination (malformed) is shown to whoever looks at its DLQ.
        return self.destinations is None or not parked.destination or parked.destination in self.destinations


class _Pacer:
    """Spaces sends to `rate` messages per second (None: as fast as SQS takes them)."""

    def __init__(self, rate: float | None, clock: Callable[[], float], sleep: Callable[[float], None]):
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0

    @property
    def batch_size(self) -> int:
        # Bursts of at most one second's worth of messages.
        return SQS_BATCH_LIMIT if self.rate is None else max(1, min(SQS_BATCH_LIMIT, int(self.rate)))

    def wait(self, count: int) -> None:
        if self.rate is None:
            return
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + count / self.rate


_COUNTERS = {
    Outcome.MOVED: "moved",
    Outcome.WOULD_MOVE: "would_move",
    Outcome.ALREADY_DELIVERED: "already_delivered",
    Outcome.DUPLICATE: "duplicates",
    Outcome.NOT_MATCHING: "not_matching",
}


class _Run:
    """Counts outcomes into the summary and reports each to the progress callback."""

    def __init__(self, summary: ReplaySummary, progress: Callable[[Outcome, ParkedJob], None] | None):
        self.summary = summary
        self._progress = progress

    def note(self, outcome: Outcome, parked: ParkedJob, reason: str | None = None) -> None:
        if outcome in (Outcome.LEFT, Outcome.SEND_FAILED):
            left = self.summary.left
            key = reason or outcome.value
            left[key] = left.get(key, 0) + 1
        else:
            counter = _COUNTERS[outcome]
            setattr(self.summary, counter, getattr(self.summary, counter) + 1)
        if self._progress:
            self._progress(outcome, parked)


class Replayer:
    """Lists, shows and replays parked jobs of the vendor DLQs (the CLI and ReplayFunction)."""

    def __init__(
        self,
        sqs: Any,
        ledger: LedgerView,
        queues: Mapping[str, QueuePair],
        config: RelayConfig | None = None,
        *,
        wait_seconds: int = 1,
        native_supported: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._sqs = sqs
        self._ledger = ledger
        self.queues = dict(queues)
        self._config = config
        self._wait = wait_seconds
        self._native_supported = native_supported
        self._clock = clock
        self._sleep = sleep
        # One GetItem per job: a page's ten run in parallel (boto3 clients are thread-safe).
        self._lookups = ThreadPoolExecutor(max_workers=SQS_BATCH_LIMIT, thread_name_prefix="ledger")

    # -- which queues

    def select(self, destination: str) -> Selection:
        """A destination of the config (its vendor's DLQ, only its jobs) or a vendor kind (all of them)."""
        configured = self._config.destinations if self._config else {}
        if destination in configured:
            kind = configured[destination].kind
            return Selection(self._pair(kind), frozenset({destination}))
        if destination in VENDOR_KINDS:
            return Selection(self._pair(destination), None)
        known = sorted({*configured, *VENDOR_KINDS})
        raise UnknownDestinationError(f"unknown destination {destination!r} (one of: {', '.join(known)})")

    def _pair(self, kind: str) -> QueuePair:
        try:
            return self.queues[kind]
        except KeyError as exc:
            raise UnknownDestinationError(f"no queues are configured for {kind}") from exc

    def _selections(self, destination: str | None) -> list[Selection]:
        if destination:
            return [self.select(destination)]
        return [Selection(pair, None) for pair in self.queues.values()]

    def approximate_count(self, pair: QueuePair) -> int:
        answer = _call(
            self._sqs.get_queue_attributes,
            QueueUrl=pair.dlq_url,
            AttributeNames=["ApproximateNumberOfMessages"],
        )
        return int(answer.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))

    def _scan(self, pair: QueuePair, hold_seconds: int) -> DeadLetterScan:
        return DeadLetterScan(self._sqs, pair, hold_seconds=hold_seconds, wait_seconds=self._wait)

    # -- ls / show

    def list_parked(self, destination: str | None = None, max_jobs: int = 100) -> Listing:
        """Parked jobs (up to max_jobs over the selected DLQs) with their ledger status; moves nothing."""
        jobs: list[JobRef] = []
        totals: dict[str, int] = {}
        truncated = False
        for selection in self._selections(destination):
            totals[selection.pair.vendor] = self.approximate_count(selection.pair)
            with self._scan(selection.pair, hold_seconds=_hold_seconds(max_jobs)) as scan:
                for page in scan.pages(max_jobs - len(jobs)):
                    shown = [parked for parked in page if selection.includes(parked)]
                    statuses = self._statuses(shown)
                    jobs += [JobRef.of(parked, statuses[parked.message_id]) for parked in shown]
            if len(jobs) >= max_jobs:
                truncated = True
                break
        by_reason = Counter(job.reason for job in jobs)
        return Listing(jobs=jobs, by_reason=dict(by_reason), approximate_total=totals, truncated=truncated)

    def find(self, ident: str, destination: str | None = None, max_jobs: int = 1000) -> dict[str, Any]:
        """One parked job in full, found by conversion id or SQS message id."""
        for selection in self._selections(destination):
            with self._scan(selection.pair, hold_seconds=_hold_seconds(max_jobs)) as scan:
                for page in scan.pages(max_jobs):
                    for parked in page:
                        if ident in (parked.conversion_id, parked.message_id):
                            return parked.describe(self._status(parked))
        raise ParkedJobNotFoundError(
            f"no parked job {ident} in the first {max_jobs} messages of each DLQ read"
        )

    def _statuses(self, jobs: Sequence[ParkedJob]) -> dict[str, str | None]:
        """The ledger status of each job by message id; a page's reads run side by side."""
        return dict(zip((j.message_id for j in jobs), self._lookups.map(self._status, jobs), strict=True))

    def _status(self, parked: ParkedJob) -> str | None:
        # A ledger that cannot be read raises LedgerError: the run stops, its held messages reappear.
        if not (parked.destination and parked.conversion_id):
            return None
        return self._ledger.status(parked.destination, parked.conversion_id)

    # -- replay

    def replay(
        self,
        request: ReplayRequest,
        *,
        progress: Callable[[Outcome, ParkedJob], None] | None = None,
        remaining_seconds: Callable[[], float] | None = None,
    ) -> ReplaySummary:
        """Move the matching jobs back to the vendor queue; see the module doc for the guarantees.

        `remaining_seconds` (ReplayFunction: the Lambda's time left) stops the run cleanly
        with `stopped="deadline"` before it is cut off; what was not read stays parked.
        """
        if request.native:
            raise ReplayError("use start_native_move for --native")
        selection = self.select(request.destination)
        summary = ReplaySummary(
            destination=request.destination,
            vendor=selection.pair.vendor,
            dry_run=request.dry_run,
            force=request.force,
        )
        pacer = _Pacer(request.rate, self._clock, self._sleep)
        # Held messages must stay hidden for the whole run, paced sends included.
        hold = _hold_seconds(request.max_jobs, request.rate)
        run = _Run(summary, progress)
        moved_keys: set[str] = set()
        with self._scan(selection.pair, hold_seconds=hold) as scan:
            to_move: list[tuple[ParkedJob, str | None]] = []
            for page in scan.pages(request.max_jobs):
                summary.scanned += len(page)
                drop: list[ParkedJob] = []
                matching = {p.message_id for p in page if self._matches(p, selection, request)}
                statuses = self._statuses([p for p in page if p.message_id in matching and p.job is not None])
                for parked in page:
                    if parked.message_id not in matching:
                        run.note(Outcome.NOT_MATCHING, parked)
                        continue
                    if parked.job is None:
                        run.note(Outcome.LEFT, parked, "malformed_job")
                        continue
                    status = statuses[parked.message_id]
                    if status == "delivered":
                        drop.append(parked)
                        run.note(Outcome.ALREADY_DELIVERED, parked)
                    elif parked.job.ledger_key in moved_keys:
                        drop.append(parked)
                        run.note(Outcome.DUPLICATE, parked)
                    elif not request.force and (status in HELD_REASONS or parked.reason in HELD_REASONS):
                        run.note(Outcome.LEFT, parked, status if status in HELD_REASONS else parked.reason)
                    else:
                        moved_keys.add(parked.job.ledger_key)
                        to_move.append((parked, status))
                if not request.dry_run:
                    self._delete(scan, drop, summary)
                while len(to_move) >= pacer.batch_size:
                    batch, to_move = to_move[: pacer.batch_size], to_move[pacer.batch_size :]
                    self._move(scan, batch, request, pacer, run)
                if remaining_seconds is not None and remaining_seconds() < DEADLINE_MARGIN_SECONDS:
                    summary.stopped = "deadline"
                    break
            if summary.stopped is None and summary.scanned >= request.max_jobs:
                summary.stopped = "max"
            if to_move:
                self._move(scan, to_move, request, pacer, run)
        logger.info("replay finished", extra=summary.model_dump(mode="json", exclude={"selected"}))
        return summary

    @staticmethod
    def _matches(parked: ParkedJob, selection: Selection, request: ReplayRequest) -> bool:
        if not selection.includes(parked):
            return False
        if request.name and parked.conversion_name != request.name:
            return False
        if request.reason and parked.reason != request.reason:
            return False
        moment = parked.event_time
        if request.since and (moment is None or moment < request.since):
            return False
        return not (request.until and (moment is None or moment >= request.until))

    def _delete(self, scan: DeadLetterScan, jobs: list[ParkedJob], summary: ReplaySummary) -> None:
        for parked in scan.delete(jobs):
            summary.errors.append(f"could not delete message {parked.message_id} from the DLQ")

    def _move(
        self,
        scan: DeadLetterScan,
        batch: list[tuple[ParkedJob, str | None]],
        request: ReplayRequest,
        pacer: _Pacer,
        run: _Run,
    ) -> None:
        if request.dry_run:
            for parked, _ in batch:
                if len(run.summary.selected) < SELECTED_LIMIT:
                    run.summary.selected.append(JobRef.of(parked))
                run.note(Outcome.WOULD_MOVE, parked)
            return
        for parked, status in batch:
            if status in HELD_REASONS:  # only with --force
                self._forget(parked)
        pacer.wait(len(batch))
        entries = [
            {"Id": str(i), "MessageBody": parked.body, "MessageAttributes": parked.requeue_attributes()}
            for i, (parked, _) in enumerate(batch)
        ]
        answer = _call(self._sqs.send_message_batch, QueueUrl=scan.pair.queue_url, Entries=entries)
        failed = {entry["Id"]: entry.get("Code", "error") for entry in answer.get("Failed", [])}
        sent = []
        for i, (parked, _) in enumerate(batch):
            if str(i) in failed:
                run.summary.errors.append(f"could not queue {parked.conversion_id}: {failed[str(i)]}")
                run.note(Outcome.SEND_FAILED, parked, "send_failed")
            else:
                sent.append(parked)
        # Only once the vendor queue has them: a crash before this re-queues them on the next run.
        self._delete(scan, sent, run.summary)
        for parked in sent:
            run.note(Outcome.MOVED, parked)

    def _forget(self, parked: ParkedJob) -> None:
        """--force: a rejected/in_doubt ledger record would make the deliver function park it again."""
        assert parked.job is not None
        self._ledger.forget(parked.job.destination, str(parked.job.conversion.conversion_id))

    # -- ReplayFunction

    def run(
        self,
        request: ReplayRequest,
        *,
        remaining_seconds: Callable[[], float] | None = None,
        metrics: Metrics | None = None,
    ) -> dict[str, Any]:
        """One request as ReplayFunction answers it: the native move started, or the replay summary."""
        if request.native:
            return self.start_native_move(request).model_dump(mode="json")
        summary = self.replay(request, remaining_seconds=remaining_seconds)
        if metrics is not None:
            metrics.add_dimension(name="vendor", value=summary.vendor)
            metrics.add_metric(name="JobsReplayed", unit=MetricUnit.Count, value=summary.moved)
            metrics.add_metric(name="JobsLeftParked", unit=MetricUnit.Count, value=sum(summary.left.values()))
        return summary.model_dump(mode="json")

    # -- native

    def start_native_move(self, request: ReplayRequest) -> NativeMove:
        """Bulk redrive of a whole vendor DLQ with SQS StartMessageMoveTask (AWS only)."""
        selection = self.select(request.destination)
        pair = selection.pair
        if selection.destinations is not None and self._shares_queue(pair.vendor, selection.destinations):
            raise ReplayError(
                f"{request.destination} shares the {pair.vendor} DLQ with other destinations and a native "
                f"move takes every message: use --destination {pair.vendor}, or replay without --native"
            )
        if not self._native_supported:
            raise NativeMoveUnsupportedError(
                "StartMessageMoveTask is not available on this SQS endpoint (moto, the local stack, lacks "
                "it): replay without --native"
            )
        source, target = self._arn(pair.dlq_url), self._arn(pair.queue_url)
        params: dict[str, Any] = {"SourceArn": source, "DestinationArn": target}
        if request.rate is not None:
            params["MaxNumberOfMessagesPerSecond"] = int(request.rate)
        count = self.approximate_count(pair)
        try:
            handle = self._sqs.start_message_move_task(**params)["TaskHandle"]
        except NotImplementedError as exc:  # moto in-process
            raise NativeMoveUnsupportedError(
                "StartMessageMoveTask is not implemented by this SQS endpoint (moto lacks it)"
            ) from exc
        except (BotoCoreError, ClientError) as exc:
            raise ReplayError(f"StartMessageMoveTask failed: {_aws_error(exc)}") from exc
        logger.info("native move started", extra={"vendor": pair.vendor, "messages": count})
        return NativeMove(
            vendor=pair.vendor,
            task_handle=handle,
            source_arn=source,
            destination_arn=target,
            approximate_messages=count,
            rate=params.get("MaxNumberOfMessagesPerSecond"),
        )

    def _shares_queue(self, vendor: str, destinations: frozenset[str]) -> bool:
        configured = self._config.destinations if self._config else {}
        return any(d.kind == vendor and name not in destinations for name, d in configured.items())

    def _arn(self, url: str) -> str:
        answer = _call(self._sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["QueueArn"])
        return answer["Attributes"]["QueueArn"]


# --------------------------------------------------------------------------- wiring


def queue_pairs(settings: ReplaySettings) -> dict[str, QueuePair]:
    """Each vendor's queue and dead-letter queue, from ReplayFunction's environment."""
    return {
        kind: QueuePair(kind, getattr(settings, f"{kind}_queue_url"), getattr(settings, f"{kind}_dlq_url"))
        for kind in VENDOR_KINDS
    }


def stack_queues(cloudformation: Any, stack_name: str) -> tuple[dict[str, QueuePair], str]:
    """The vendor queues and the table of a deployed stack, from its outputs (ScanovaQueueUrl, …)."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (BotoCoreError, ClientError) as exc:
        raise ReplayError(f"cannot read stack {stack_name}: {_aws_error(exc)}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    try:
        queues = {
            kind: QueuePair(kind, outputs[f"{prefix}QueueUrl"], outputs[f"{prefix}DeadLetterQueueUrl"])
            for kind, prefix in LOGICAL_PREFIX.items()
        }
        return queues, outputs["RelayTableName"]
    except KeyError as exc:
        raise ReplayError(f"stack {stack_name} has no output {exc}: is it a conversion relay stack?") from exc


def local_queues(sqs: Any, stack_name: str) -> tuple[dict[str, QueuePair], str]:
    """The local stack's queues and table, named as local.world.build_world creates them."""

    def url(logical_id: str) -> str:
        try:
            return sqs.get_queue_url(QueueName=f"{stack_name}-{logical_id}")["QueueUrl"]
        except (BotoCoreError, ClientError) as exc:
            raise ReplayError(
                f"cannot find queue {stack_name}-{logical_id} ({_aws_error(exc)}): is the local stack "
                "running (make run)?"
            ) from exc

    queues = {
        kind: QueuePair(kind, url(f"{prefix}Queue"), url(f"{prefix}DeadLetterQueue"))
        for kind, prefix in LOGICAL_PREFIX.items()
    }
    return queues, f"{stack_name}-RelayTable"


def build_replayer(
    *,
    sqs: Any,
    dynamodb: Any,
    queues: Mapping[str, QueuePair],
    table_name: str,
    config_path: str | None,
    wait_seconds: int = 1,
    native_supported: bool = True,
) -> Replayer:
    """A Replayer on the given clients. Without a config only vendor kinds name destinations."""
    return Replayer(
        sqs,
        Ledger(dynamodb, table_name),
        queues,
        load_config(config_path) if config_path else None,
        wait_seconds=wait_seconds,
        native_supported=native_supported,
    )


def build_function_replayer(environ: Mapping[str, str] | None = None) -> Replayer:
    """ReplayFunction's Replayer, built once at cold start from its environment."""
    settings = ReplaySettings.from_env(environ)
    return build_replayer(
        sqs=boto3.client("sqs"),
        dynamodb=boto3.client("dynamodb"),
        queues=queue_pairs(settings),
        table_name=settings.table_name,
        config_path=settings.relay_config,
    )


__all__ = [
    "FAILURE_ATTRIBUTES",
    "DeadLetterScan",
    "FailureReason",
    "JobRef",
    "LedgerView",
    "Listing",
    "NativeMove",
    "Outcome",
    "ParkedJob",
    "QueuePair",
    "ReplayRequest",
    "ReplaySummary",
    "Replayer",
    "build_function_replayer",
    "build_replayer",
    "local_queues",
    "parse_rate",
    "parse_time",
    "stack_queues",
]
