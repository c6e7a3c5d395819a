"""A batch's verdicts made durable: the ledger, the dead-letter queue, the retry backoff.

- delivered → ledger delivered; rejected → ledger rejected; in doubt → ledger in_doubt;
  anything else → the claim is released (nothing was delivered). Delivered jobs, and the
  outcomes of jobs that were not claimed (relay.ledger), are written 25 to a request;
- parked → the dead-letter queue, with the failure attributes of relay.dlq (a record that
  cannot be parked stays in its queue and is retried);
- retried → a visibility timeout for backoff (Retry-After honoured), or, on the last
  receive, the DLQ as retries_exhausted.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError
from relay import dlq, sqs
from relay.deliver.work import Verdict, Work
from relay.dlq import FailureReason
from relay.errors import LedgerError
from relay.ledger import WRITE_BATCH, Ledger, Outcome, Status
from relay.models import JOB_ATTRIBUTES
from relay.settings import DeliverSettings
from relay.vendors.answers import clean_message

logger = Logger(child=True)


class Settlement:
    def __init__(
        self,
        *,
        vendor: str,
        settings: DeliverSettings,
        ledger: Ledger,
        sqs_client: Any,
        pool: ThreadPoolExecutor,
        rng: Callable[[], float],
    ):
        self._vendor = vendor
        self._settings = settings
        self._ledger = ledger
        self._sqs = sqs_client
        self._pool = pool
        self._rng = rng

    def settle(self, works: Sequence[Work]) -> None:
        for work in works:
            if work.verdict is Verdict.RETRY and work.receive_count >= self._settings.max_receive_count:
                reason = work.reason or "retries_exhausted"
                work.park(FailureReason.RETRIES_EXHAUSTED, reason, status=work.status, message=work.message)
        self._record_in_ledger(works)
        for work in self._dead_letter([w for w in works if w.verdict is Verdict.PARKED]):
            # Not parked: stays in the queue. The ledger already says rejected (claimable
            # again), in_doubt (parked again next time) or nothing (retried as new).
            work.retry("dead_letter_unavailable", status=work.status, message=work.message)
        self._back_off([w for w in works if w.verdict is Verdict.RETRY])

    def release(self, works: Iterable[Work]) -> None:
        """Give back claims of records not sent (the invocation is failing as a whole)."""
        for work in works:
            try:
                assert work.claim is not None
                self._ledger.release(work.claim, reason="invocation_failed")
            except LedgerError:
                logger.exception("claim not released", extra=work.ids())

    def retry_delay(self, receive_count: int, retry_after: float | None = None) -> int:
        """Seconds until the next attempt: Retry-After when the vendor gave one, else
        base * 2^(receive count - 1) capped, with equal jitter; scaled by RETRY_DELAY_SCALE."""
        settings = self._settings
        if retry_after is not None:
            seconds = retry_after * (1 + 0.1 * self._rng())  # spread a herd of throttled records
        else:
            backoff = min(
                settings.retry_max_seconds, settings.retry_base_seconds * 2 ** max(0, receive_count - 1)
            )
            seconds = backoff / 2 + self._rng() * backoff / 2
        return min(sqs.MAX_VISIBILITY_SECONDS, math.ceil(seconds * settings.retry_delay_scale))

    # ---- the ledger

    def _record_in_ledger(self, works: Sequence[Work]) -> None:
        held = [w for w in works if w.claim is not None and w.claim.held]
        final = [w for w in held if w.verdict is Verdict.DELIVERED]
        final += [w for w in works if w.unclaimed and _final_status(w)]
        list(self._pool.map(self._record_one, [w for w in held if w.verdict is not Verdict.DELIVERED]))
        outcomes = [
            Outcome(
                destination=w.destination,
                conversion_id=str(w.job.conversion.conversion_id),
                status=_final_status(w),
                vendor_status=w.status,
                reason=w.message if w.verdict is not Verdict.DELIVERED else None,
                # Unclaimed (the vendor dedupes): how many times SQS handed the job over.
                attempts=w.claim.attempts if w.claim else w.receive_count,
            )
            for w in final
            if w.job is not None
        ]
        # One BatchWriteItem per 25 outcomes, side by side.
        list(self._pool.map(self._record_chunk, sqs.chunks(outcomes, WRITE_BATCH)))

    def _record_chunk(self, outcomes: list[Outcome]) -> None:
        try:
            self._ledger.record(outcomes)
        except LedgerError:
            # Settled all the same: a delivered job left in_progress is handled as in doubt if a
            # copy of it ever comes back; one never recorded is looked up as new (its vendor dedupes).
            logger.exception("ledger not updated", extra={"jobs": len(outcomes)})

    def _record_one(self, work: Work) -> None:
        claim = work.claim
        assert claim is not None
        try:
            if work.failure is FailureReason.REJECTED:
                self._ledger.mark_rejected(claim, vendor_status=work.status, reason=work.message)
            elif work.failure is FailureReason.IN_DOUBT:
                self._ledger.mark_in_doubt(claim, reason=work.message)
            else:  # retried, skipped or out of retries: nothing was delivered
                self._ledger.release(claim, reason=work.reason, vendor_status=work.status)
        except LedgerError:
            # The record is settled all the same. A delivered job left in_progress is handled
            # as in doubt if a copy of it ever comes back; a claim not released runs out.
            logger.exception("ledger not updated", extra={**work.ids(), "verdict": work.verdict})

    # ---- the dead-letter queue

    def _dead_letter(self, works: Sequence[Work]) -> list[Work]:
        """Send parked records to the DLQ; the ones that could not be sent."""
        entries = [
            {"MessageBody": w.record.body, "MessageAttributes": self._failure_attributes(w)} for w in works
        ]
        try:
            failed = sqs.batch_call(
                self._sqs.send_message_batch, self._settings.dead_letter_queue_url, entries
            )
        except (BotoCoreError, ClientError):
            logger.exception("dead-letter queue unavailable", extra={"jobs": len(works)})
            return list(works)
        return [works[index] for index in sorted(failed)]

    def _failure_attributes(self, work: Work) -> dict[str, dict[str, str]]:
        attributes = work.job.message_attributes() if work.job else _job_attributes(work.record)
        first = work.record.attributes.approximate_first_receive_timestamp
        first_at = datetime.fromtimestamp(int(first) / 1000, tz=UTC) if first else datetime.now(UTC)
        assert work.failure is not None
        attributes.update(
            dlq.failure_attributes(
                work.failure,
                vendor=self._vendor,
                attempts=work.receive_count,
                first_failure_at=first_at,
                status=work.status,
                message=clean_message(work.message or work.reason),
                # In doubt after a request: the jobs it carried share one fate at the vendor.
                request_id=work.request_id if work.failure is FailureReason.IN_DOUBT else None,
                room=dlq.MAX_ATTRIBUTES - len(attributes),
            )
        )
        return attributes

    # ---- backoff

    def _back_off(self, works: Sequence[Work]) -> None:
        by_queue: dict[str, list[Work]] = defaultdict(list)
        for work in works:
            by_queue[work.record.queue_url].append(work)
        for queue_url, queued in by_queue.items():
            entries = [
                {
                    "ReceiptHandle": w.record.receipt_handle,
                    "VisibilityTimeout": self.retry_delay(w.receive_count, w.retry_after),
                }
                for w in queued
            ]
            try:
                failed = len(sqs.batch_call(self._sqs.change_message_visibility_batch, queue_url, entries))
            except (BotoCoreError, ClientError):
                failed = len(entries)
            if failed:
                # The queue's own visibility timeout applies instead: a later retry, not a lost one.
                logger.warning("backoff not set", extra={"records": failed})


def _final_status(work: Work) -> Status | None:
    """The ledger status a settled job ends in, or None (retried or skipped: nothing to keep)."""
    if work.verdict is Verdict.DELIVERED:
        return Status.DELIVERED
    if work.failure is FailureReason.REJECTED:
        return Status.REJECTED
    if work.failure is FailureReason.IN_DOUBT:
        return Status.IN_DOUBT
    return None


def _job_attributes(record: SQSRecord) -> dict[str, dict[str, str]]:
    """The job's own attributes as the producer set them (for a body that did not parse)."""
    kept = {}
    for name in JOB_ATTRIBUTES:
        attribute = record.message_attributes[name]
        if attribute is not None and attribute.string_value:
            kept[name] = {"DataType": attribute.data_type or "String", "StringValue": attribute.string_value}
    return kept
