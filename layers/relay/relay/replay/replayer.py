"""Replaying parked jobs: list, show and move them back to their vendor queue (CLI and ReplayFunction).

Replay sends a job to its vendor queue first and deletes it from the DLQ after, so an
interrupted replay loses nothing; at worst a re-run queues a job twice, and the
delivery ledger (keyed by relay.dlq.ledger_key) absorbs the second copy. Before a job
moves, the ledger is asked: delivered → deleted from the DLQ (never sent twice);
rejected / in_doubt → left parked unless `force` (then `Ledger.forget` first).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from relay.config import RelayConfig
from relay.dlq import HELD_REASONS
from relay.errors import (
    NativeMoveUnsupportedError,
    ParkedJobNotFoundError,
    ReplayError,
    UnknownDestinationError,
    aws_error,
)
from relay.ledger import HELD_STATUSES, Status
from relay.replay.native import start_message_move
from relay.replay.options import ReplayRequest
from relay.replay.results import SELECTED_LIMIT, JobRef, Listing, NativeMove, ReplayOutcome, ReplaySummary
from relay.replay.scan import DeadLetterScan, ParkedJob, QueuePair, call, hold_seconds
from relay.sqs import BATCH_LIMIT, batch_call
from relay.vendors.registry import VENDORS

logger = Logger(child=True)

# ReplayFunction stops reading this long before its timeout, so it can still finish the batch in hand.
DEADLINE_MARGIN_SECONDS = 30


class LedgerView(Protocol):
    """What replay needs of `relay.ledger.Ledger`."""

    def statuses(
        self, destination: str, conversion_ids: Sequence[str], *, consistent: bool = False
    ) -> Mapping[str, str | None]: ...

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
        return BATCH_LIMIT if self.rate is None else max(1, min(BATCH_LIMIT, int(self.rate)))

    def wait(self, count: int) -> None:
        if self.rate is None:
            return
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + count / self.rate


_COUNTERS = {
    ReplayOutcome.MOVED: "moved",
    ReplayOutcome.WOULD_MOVE: "would_move",
    ReplayOutcome.ALREADY_DELIVERED: "already_delivered",
    ReplayOutcome.DUPLICATE: "duplicates",
    ReplayOutcome.NOT_MATCHING: "not_matching",
}


class _Run:
    """Counts outcomes into the summary and reports each to the progress callback."""

    def __init__(self, summary: ReplaySummary, progress: Callable[[ReplayOutcome, ParkedJob], None] | None):
        self.summary = summary
        self._progress = progress

    def note(self, outcome: ReplayOutcome, parked: ParkedJob, reason: str | None = None) -> None:
        if outcome in (ReplayOutcome.LEFT, ReplayOutcome.SEND_FAILED):
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

    # -- which queues

    def select(self, destination: str) -> Selection:
        """A destination of the config (its vendor's DLQ, only its jobs) or a vendor kind (all of them)."""
        configured = self._config.destinations if self._config else {}
        if destination in configured:
            kind = configured[destination].kind
            return Selection(self._pair(kind), frozenset({destination}))
        if destination in VENDORS:
            return Selection(self._pair(destination), None)
        known = sorted({*configured, *VENDORS})
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
        answer = call(
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
            with self._scan(selection.pair, hold_seconds=hold_seconds(max_jobs)) as scan:
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
            with self._scan(selection.pair, hold_seconds=hold_seconds(max_jobs)) as scan:
                for page in scan.pages(max_jobs):
                    for parked in page:
                        if ident in (parked.conversion_id, parked.message_id):
                            return parked.describe(self._statuses([parked])[parked.message_id])
        raise ParkedJobNotFoundError(
            f"no parked job {ident} in the first {max_jobs} messages of each DLQ read"
        )

    def _statuses(self, jobs: Sequence[ParkedJob]) -> dict[str, str | None]:
        """Each job's ledger status by message id (None without a record): one strongly consistent
        BatchGetItem per destination on the page, so replay decides on the last record written.
        A ledger that cannot be read raises LedgerError: the run stops, its held messages reappear."""
        wanted: defaultdict[str, list[str]] = defaultdict(list)
        for parked in jobs:
            if parked.destination and parked.conversion_id:
                wanted[parked.destination].append(parked.conversion_id)
        found = {name: self._ledger.statuses(name, ids, consistent=True) for name, ids in wanted.items()}
        return {
            parked.message_id: found[parked.destination][parked.conversion_id]
            if parked.destination and parked.conversion_id
            else None
            for parked in jobs
        }

    # -- replay

    def replay(
        self,
        request: ReplayRequest,
        *,
        progress: Callable[[ReplayOutcome, ParkedJob], None] | None = None,
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
        hold = hold_seconds(request.max_jobs, request.rate)
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
                        run.note(ReplayOutcome.NOT_MATCHING, parked)
                        continue
                    if parked.job is None:
                        run.note(ReplayOutcome.LEFT, parked, "malformed_job")
                        continue
                    status = statuses[parked.message_id]
                    if status == Status.DELIVERED:
                        drop.append(parked)
                        run.note(ReplayOutcome.ALREADY_DELIVERED, parked)
                    elif parked.job.delivery_key in moved_keys:
                        drop.append(parked)
                        run.note(ReplayOutcome.DUPLICATE, parked)
                    elif not request.force and (status in HELD_STATUSES or parked.reason in HELD_REASONS):
                        run.note(
                            ReplayOutcome.LEFT, parked, status if status in HELD_STATUSES else parked.reason
                        )
                    else:
                        moved_keys.add(parked.job.delivery_key)
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
        if request.request and parked.request_id != request.request:
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
                run.note(ReplayOutcome.WOULD_MOVE, parked)
            return
        for parked, status in batch:
            if status in HELD_STATUSES:  # only with --force
                self._forget(parked)
        pacer.wait(len(batch))
        entries = [
            {"MessageBody": parked.body, "MessageAttributes": parked.requeue_attributes()}
            for parked, _ in batch
        ]
        try:
            failed = batch_call(self._sqs.send_message_batch, scan.pair.queue_url, entries)
        except (BotoCoreError, ClientError) as exc:
            raise ReplayError(f"SQS send_message_batch failed: {aws_error(exc)}") from exc
        sent = []
        for i, (parked, _) in enumerate(batch):
            if i in failed:
                run.summary.errors.append(f"could not queue {parked.conversion_id}: {failed[i]}")
                run.note(ReplayOutcome.SEND_FAILED, parked, "send_failed")
            else:
                sent.append(parked)
        # Only once the vendor queue has them: a crash before this re-queues them on the next run.
        self._delete(scan, sent, run.summary)
        for parked in sent:
            run.note(ReplayOutcome.MOVED, parked)

    def _forget(self, parked: ParkedJob) -> None:
        """--force: a rejected/in_doubt ledger record would make the deliver function park it again."""
        assert parked.job is not None
        self._ledger.forget(parked.job.destination, str(parked.job.conversion.conversion_id))

    # -- native

    def start_native_move(self, request: ReplayRequest) -> NativeMove:
        """Bulk redrive of a whole vendor DLQ with SQS StartMessageMoveTask (AWS only)."""
        selection = self.select(request.destination)
        configured = self._config.destinations if self._config else {}
        shared = selection.destinations is not None and any(
            d.kind == selection.pair.vendor and name not in selection.destinations
            for name, d in configured.items()
        )
        if shared:
            raise ReplayError(
                f"{request.destination} shares the {selection.pair.vendor} DLQ with other destinations and "
                f"a native move takes every message: use --destination {selection.pair.vendor}, or replay "
                "without --native"
            )
        if not self._native_supported:
            raise NativeMoveUnsupportedError(
                "StartMessageMoveTask is not available on this SQS endpoint (moto, the local stack, lacks "
                "it): replay without --native"
            )
        return start_message_move(
            self._sqs, selection.pair, request.rate, self.approximate_count(selection.pair)
        )

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
