"""Deliver functions: an SQS batch of delivery jobs in, vendor calls out, exactly once per destination.

For each batch (up to 100 records of one vendor's queue):
1 parse each record into a DeliveryJob; a body that is not one goes to the DLQ (malformed_job);
2 skip what the destination cannot take (counted, as at ingest), and copies of a job that
  are in the same batch;
3 claim each job in the ledger (relay.ledger): already delivered → dropped; claimed by a live
  invocation → retried later; an earlier holder crashed after it may have called a vendor that
  does not dedupe → DLQ as in_doubt (Destination.in_doubt_policy);
4 build the vendor events and send them in full vendor batches (relay.vendors);
5 settle each record by its outcome:
  - accepted → ledger delivered; the record is done;
  - permanent (400/401/403/422, a per-event rejection) → ledger rejected, DLQ at once;
  - transient (429, 5xx, connection failure) → claim released, the record stays in the queue
    with a visibility timeout for backoff (Retry-After honoured), or on its last receive goes
    to the DLQ as retries_exhausted;
  - no answer (read timeout) → like transient where the vendor dedupes, else in_doubt.

The answer is SQS's partial-batch response {"batchItemFailures": [{"itemIdentifier": id}]}.
Powertools' BatchProcessor hands records to a handler one at a time, which cannot fill a
vendor request of 100 events, so this module implements the same response contract for
the whole batch; records are read through Powertools' SQSEvent data classes.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import boto3
import requests
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from relay import secrets
from relay.config import RelayConfig, load_config
from relay.destinations import skip_reason
from relay.exceptions import (
    ConfigError,
    DeliveryError,
    LedgerError,
    MissingRequirementError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnansweredDeliveryError,
)
from relay.ledger import Claim, ClaimState, Ledger
from relay.models import DeliveryJob
from relay.settings import DeliverSettings
from relay.vendors import Accepted, Outcome, SecretReader, VendorClient, client_for, deliver
from relay.vendors.http import CONNECT_TIMEOUT_SECONDS, Transport, clean_message, new_session

logger = Logger(child=True)

SQS_BATCH_LIMIT = 10
EMF_MAX_VALUES = 100  # values of one metric in one EMF record
SQS_MAX_VISIBILITY_SECONDS = 12 * 3600
JOB_ATTRIBUTES = ("destination", "conversion_name", "conversion_id", "event_time")
LEASE_MARGIN_SECONDS = 30  # a claim outlives its invocation by this much (clock skew)
RESERVE_SECONDS = 5  # kept at the end of an invocation to settle the batch
NO_CONTEXT_SECONDS = 60  # invocation length assumed without a Lambda context (scripts, tests)
# Ledger claims (and Stripe reads) in flight at once: the size of botocore's and urllib3's pools.
IO_CONCURRENCY = 10
AWS_CLIENT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=IO_CONCURRENCY,
)


class FailureReason(StrEnum):
    """The `failure_reason` attribute of a dead-letter message."""

    REJECTED = "rejected"
    IN_DOUBT = "in_doubt"
    RETRIES_EXHAUSTED = "retries_exhausted"
    MALFORMED_JOB = "malformed_job"


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
    primary: Work | None = None  # the first record of the batch with the same ledger key
    sending: bool = False
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


class Deliverer:
    """Delivers the jobs of one vendor kind; built once per cold start (build_deliverer)."""

    def __init__(
        self,
        *,
        kind: str,
        config: RelayConfig,
        settings: DeliverSettings,
        ledger: Ledger,
        sqs: Any,
        metrics: Metrics,
        http: requests.Session | None = None,
        secret: SecretReader | None = None,
        rng: Callable[[], float] = random.random,
    ):
        self.kind = kind
        self._settings = settings
        self._ledger = ledger
        self._sqs = sqs
        self._metrics = metrics
        self._rng = rng
        self._latencies: defaultdict[str, list[float]] = defaultdict(list)
        transport = Transport(http or new_session(), observe=self._observe_latency)
        read = secret or (lambda name: secrets.get_secret_value(name, max_age=settings.secrets_max_age))
        self._pool = ThreadPoolExecutor(max_workers=IO_CONCURRENCY, thread_name_prefix="delivery-io")
        self._destinations = {name: d for name, d in config.destinations.items() if d.kind == kind}
        self._clients = {name: client_for(name, d, transport, read) for name, d in self._destinations.items()}

    # ---- the handler's one call

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        deadline = Deadline(context)
        self._latencies = defaultdict(list)
        works = [self._admit(record) for record in SQSEvent(event).records]
        self._metrics.add_metric(name="JobsReceived", unit=MetricUnit.Count, value=len(works))
        try:
            self._claim(works, deadline)
            self._prepare(works, deadline)
            self._send(works, deadline)
        except BaseException:
            # Claims not yet sent are given back, so the retry is not mistaken for a crash
            # after a vendor call; the Lambda runtime then retries the whole batch.
            self._release(w for w in works if w.open and w.claim and w.claim.held and not w.sending)
            raise
        self._follow_primaries(works)
        self._settle(works)
        self._flush_metrics(works)
        self._log(works)
        return {
            "batchItemFailures": [
                {"itemIdentifier": w.record.message_id} for w in works if w.verdict is Verdict.RETRY
            ]
        }

    # ---- 1, 2: parse and admit

    def _admit(self, record: SQSRecord) -> Work:
        receive_count = int(record.attributes.approximate_receive_count or 1)
        work = Work(record=record, receive_count=receive_count)
        try:
            work.job = DeliveryJob.model_validate_json(record.body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)[:5]
            )
            work.park(FailureReason.MALFORMED_JOB, "not_a_delivery_job", message=problems)
            return work
        destination = self._destinations.get(work.job.destination)
        if destination is None:
            message = f"{work.job.destination!r} is not a configured {self.kind} destination"
            work.park(FailureReason.MALFORMED_JOB, "unknown_destination", message=message)
        elif not destination.enabled:
            work.skip("destination_disabled")
        elif reason := skip_reason(destination, work.job.conversion):
            work.skip(reason)  # the config changed since ingest
        else:
            work.client = self._clients[work.job.destination]
        return work

    # ---- 3: claim

    def _claim(self, works: Sequence[Work], deadline: Deadline) -> None:
        primaries: dict[str, Work] = {}
        for work in works:
            if not work.open:
                continue
            assert work.job is not None
            if (first := primaries.get(work.job.ledger_key)) is not None:
                work.primary = first
            else:
                primaries[work.job.ledger_key] = work
        lease = deadline.lease_seconds()
        # One conditional write per job, side by side: 100 claims are not 100 round trips in a row.
        list(self._pool.map(lambda work: self._claim_one(work, lease), primaries.values()))

    def _claim_one(self, work: Work, lease_seconds: float) -> None:
        job, client = work.job, work.client
        assert job is not None and client is not None
        try:
            claim = self._ledger.claim(
                job.destination, str(job.conversion.conversion_id), lease_seconds=lease_seconds
            )
        except LedgerError as exc:
            work.retry("ledger_unavailable", message=str(exc))
            return
        work.claim = claim
        if claim.state is ClaimState.DELIVERED:
            work.skip("already_delivered")
        elif claim.state is ClaimState.IN_DOUBT:
            message = "an earlier attempt may have reached the vendor; forget it to resend"
            work.park(FailureReason.IN_DOUBT, "in_doubt", message=message)
        elif claim.state is ClaimState.BUSY:
            work.retry("claimed_elsewhere", after=max(1.0, claim.busy_for or 0.0))
        elif claim.state is ClaimState.TAKEN_OVER and client.destination.in_doubt_policy == "park":
            message = "an earlier attempt stopped between the vendor call and its answer"
            work.park(FailureReason.IN_DOUBT, "crashed_attempt", message=message)

    # ---- 4: build and send

    def _prepare(self, works: Sequence[Work], deadline: Deadline) -> None:
        # Side by side too: QuickLizard may read each job's line items from the Stripe API.
        ready = [w for w in works if w.open and w.primary is None]
        list(self._pool.map(lambda work: self._prepare_one(work, deadline), ready))

    def _prepare_one(self, work: Work, deadline: Deadline) -> None:
        assert work.client is not None and work.job is not None
        if not deadline.allows(work.client.destination.timeout_seconds + CONNECT_TIMEOUT_SECONDS):
            work.retry("out_of_time", after=0.0)  # not tried: no backoff
            return
        try:
            work.events = work.client.prepare(work.job.conversion)
        except MissingRequirementError as exc:
            work.skip(exc.reason)
        except DeliveryError as exc:
            # Only reads (Stripe line items) happen here: nothing reached the vendor.
            self._decide(work, exc if not isinstance(exc, UnansweredDeliveryError) else _transient(exc))
        except ConfigError as exc:
            work.retry("credential_unavailable", message=str(exc))
        except Exception:
            logger.exception("payload could not be built", extra=self._ids(work))
            work.retry("internal_error")

    def _send(self, works: Sequence[Work], deadline: Deadline) -> None:
        groups: dict[str, list[Work]] = defaultdict(list)
        for work in works:
            if work.open and work.events is not None:
                groups[work.destination].append(work)
        for name, group in groups.items():
            client = self._clients[name]
            budget = client.destination.timeout_seconds + CONNECT_TIMEOUT_SECONDS
            for work in group:
                work.sending = True
            outcomes = deliver(
                client, [w.events or [] for w in group], may_continue=lambda b=budget: deadline.allows(b)
            )
            for work, outcome in zip(group, outcomes, strict=True):
                if outcome is None:
                    work.sending = False
                    work.retry("out_of_time", after=0.0)  # not tried: no backoff
                else:
                    self._decide(work, outcome)

    def _decide(self, work: Work, outcome: Outcome) -> None:
        if isinstance(outcome, Accepted):
            work.deliver(outcome.status, outcome.duplicate)
            return
        message = outcome.vendor_message or outcome.reason
        if isinstance(outcome, PermanentDeliveryError):
            work.park(FailureReason.REJECTED, "rejected", status=outcome.status, message=message)
        elif isinstance(outcome, UnansweredDeliveryError) and self._parks_in_doubt(work):
            work.park(FailureReason.IN_DOUBT, "no_answer", status=outcome.status, message=message)
        elif isinstance(outcome, TransientDeliveryError):
            reason = "rate_limited" if outcome.status == 429 else "vendor_unavailable"
            work.retry(reason, status=outcome.status, message=message, after=outcome.retry_after)
        else:  # an InDoubtDeliveryError, or any other DeliveryError: never risk a second send
            work.park(FailureReason.IN_DOUBT, "in_doubt", status=outcome.status, message=message)

    def _parks_in_doubt(self, work: Work) -> bool:
        return work.client is not None and work.client.destination.in_doubt_policy == "park"

    @staticmethod
    def _follow_primaries(works: Sequence[Work]) -> None:
        """A copy of a job in the same batch shares its primary's fate: delivered once, and
        otherwise carried on (retried or parked) by the primary alone."""
        for work in works:
            primary = work.primary
            if primary is None:
                continue
            if primary.verdict is Verdict.DELIVERED:
                work.skip("already_delivered")
            elif primary.verdict is Verdict.SKIPPED:
                work.skip(primary.reason or "skipped")
            else:
                work.skip("duplicate_in_batch")

    # ---- 5: settle

    def _settle(self, works: Sequence[Work]) -> None:
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

    def _record_in_ledger(self, works: Sequence[Work]) -> None:
        held = [w for w in works if w.claim is not None and w.claim.held]
        list(self._pool.map(self._record_one, held))

    def _record_one(self, work: Work) -> None:
        claim = work.claim
        assert claim is not None
        try:
            if work.verdict is Verdict.DELIVERED:
                self._ledger.mark_delivered(claim, vendor_status=work.status)
            elif work.failure is FailureReason.REJECTED:
                self._ledger.mark_rejected(claim, vendor_status=work.status, reason=work.message)
            elif work.failure is FailureReason.IN_DOUBT:
                self._ledger.mark_in_doubt(claim, reason=work.message)
            else:  # retried, skipped or out of retries: nothing was delivered
                self._ledger.release(claim, reason=work.reason, vendor_status=work.status)
        except LedgerError:
            # The record is settled all the same. A delivered job left in_progress is handled
            # as in doubt if a copy of it ever comes back; a claim not released runs out.
            logger.exception("ledger not updated", extra={**self._ids(work), "verdict": work.verdict})

    def _release(self, works: Iterable[Work]) -> None:
        for work in works:
            try:
                assert work.claim is not None
                self._ledger.release(work.claim, reason="invocation_failed")
            except LedgerError:
                logger.exception("claim not released", extra=self._ids(work))

    def _dead_letter(self, works: Sequence[Work]) -> list[Work]:
        """Send parked records to the DLQ (10 per call); the ones that could not be sent."""
        failed: list[Work] = []
        for start in range(0, len(works), SQS_BATCH_LIMIT):
            chunk = works[start : start + SQS_BATCH_LIMIT]
            entries = [
                {"Id": str(i), "MessageBody": w.record.body, "MessageAttributes": self._failure_attributes(w)}
                for i, w in enumerate(chunk)
            ]
            try:
                answer = self._sqs.send_message_batch(
                    QueueUrl=self._settings.dead_letter_queue_url, Entries=entries
                )
            except (BotoCoreError, ClientError):
                logger.exception("dead-letter queue unavailable", extra={"jobs": len(chunk)})
                failed += chunk
                continue
            failed += [chunk[int(f["Id"])] for f in answer.get("Failed", [])]
        return failed

    def _failure_attributes(self, work: Work) -> dict[str, dict[str, str]]:
        attributes = work.job.message_attributes() if work.job else _job_attributes(work.record)
        first = work.record.attributes.approximate_first_receive_timestamp
        first_at = datetime.fromtimestamp(int(first) / 1000, tz=UTC) if first else datetime.now(UTC)
        attributes.update(
            failure_reason={"DataType": "String", "StringValue": str(work.failure)},
            attempts={"DataType": "Number", "StringValue": str(work.receive_count)},
            first_failure_at={"DataType": "String", "StringValue": first_at.isoformat()},
            vendor={"DataType": "String", "StringValue": self.kind},
        )
        if work.status is not None:
            attributes["failure_status"] = {"DataType": "Number", "StringValue": str(work.status)}
        message = clean_message(work.message or work.reason)
        if message:
            attributes["failure_message"] = {"DataType": "String", "StringValue": message}
        return attributes

    def _back_off(self, works: Sequence[Work]) -> None:
        by_queue: dict[str, list[Work]] = defaultdict(list)
        for work in works:
            by_queue[work.record.queue_url].append(work)
        for queue_url, queued in by_queue.items():
            for start in range(0, len(queued), SQS_BATCH_LIMIT):
                chunk = queued[start : start + SQS_BATCH_LIMIT]
                entries = [
                    {
                        "Id": str(i),
                        "ReceiptHandle": w.record.receipt_handle,
                        "VisibilityTimeout": self.retry_delay(w.receive_count, w.retry_after),
                    }
                    for i, w in enumerate(chunk)
                ]
                try:
                    answer = self._sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
                except (BotoCoreError, ClientError):
                    answer = {"Failed": entries}
                if answer.get("Failed"):
                    # The queue's own visibility timeout applies instead: a later retry, not a lost one.
                    logger.warning("backoff not set", extra={"records": len(answer["Failed"])})

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
        return min(SQS_MAX_VISIBILITY_SECONDS, math.ceil(seconds * settings.retry_delay_scale))

    # ---- observability (hashed ids only: never a payload)

    def _observe_latency(self, destination: str, milliseconds: float) -> None:
        self._latencies[destination].append(milliseconds)

    def _flush_metrics(self, works: Sequence[Work]) -> None:
        """Per destination (and skip reason): one EMF record per batch, not one per job."""
        counts: Counter[tuple[str, str, str | None]] = Counter()
        for work in works:
            if work.verdict is Verdict.SKIPPED:
                counts["Skipped", work.destination, work.reason] += 1
            elif work.verdict is Verdict.PARKED:
                counts["DeadLettered", work.destination, None] += 1
                if work.failure is FailureReason.REJECTED:
                    counts["Rejected", work.destination, None] += 1
            else:
                name = "Delivered" if work.verdict is Verdict.DELIVERED else "Retried"
                counts[name, work.destination, None] += 1
        emitters: dict[tuple[str, str | None], EphemeralMetrics] = {}
        for (name, destination, reason), count in counts.items():
            if (destination, reason) not in emitters:
                emitters[destination, reason] = self._emitter(destination, reason)
            emitters[destination, reason].add_metric(name=name, unit=MetricUnit.Count, value=count)
        for metrics in emitters.values():
            metrics.flush_metrics()
        for destination, values in self._latencies.items():
            # Powertools flushes a metric by itself at 100 values and then forgets the dimensions.
            for start in range(0, len(values), EMF_MAX_VALUES - 1):
                metrics = self._emitter(destination)
                for value in values[start : start + EMF_MAX_VALUES - 1]:
                    metrics.add_metric(name="VendorLatency", unit=MetricUnit.Milliseconds, value=value)
                metrics.flush_metrics()

    def _emitter(self, destination: str, reason: str | None = None) -> EphemeralMetrics:
        metrics = EphemeralMetrics(namespace=self._metrics.namespace, service=self._metrics.service)
        metrics.add_dimension(name="destination", value=destination)
        if reason:
            metrics.add_dimension(name="reason", value=reason)
        return metrics

    def _log(self, works: Sequence[Work]) -> None:
        summary: Counter[str] = Counter()
        for work in works:
            summary[str(work.verdict)] += 1
            summary["vendor_duplicates"] += work.duplicate
            if work.verdict is not Verdict.DELIVERED:
                level = logger.warning if work.verdict is Verdict.PARKED else logger.info
                level(
                    f"job {work.verdict}",
                    extra={
                        **self._ids(work),
                        "reason": work.reason,
                        "failure_reason": work.failure,
                        "vendor_status": work.status,
                        "vendor_message": clean_message(work.message),
                        "attempt": work.receive_count,
                    },
                )
        logger.info("batch settled", extra={"records": len(works), **summary})

    @staticmethod
    def _ids(work: Work) -> dict[str, Any]:
        return {
            "destination": work.destination,
            "conversion_id": str(work.job.conversion.conversion_id) if work.job else None,
            "message_id": work.record.message_id,
        }


def _transient(exc: DeliveryError) -> TransientDeliveryError:
    return TransientDeliveryError(exc.reason, status=exc.status, vendor_message=exc.vendor_message)


def _job_attributes(record: SQSRecord) -> dict[str, dict[str, str]]:
    """The job's own attributes as the producer set them (for a body that did not parse)."""
    kept = {}
    for name in JOB_ATTRIBUTES:
        attribute = record.message_attributes[name]
        if attribute is not None and attribute.string_value:
            kept[name] = {"DataType": attribute.data_type or "String", "StringValue": attribute.string_value}
    return kept


def build_deliverer(kind: str, metrics: Metrics, environ: dict[str, str] | None = None) -> Deliverer:
    """Everything a deliver function needs, built once at cold start from its environment."""
    settings = DeliverSettings.from_env(environ)
    config = load_config(settings.relay_config)
    _check_secret_names(config, kind, settings.secrets_prefix)
    return Deliverer(
        kind=kind,
        config=config,
        settings=settings,
        ledger=Ledger(boto3.client("dynamodb", config=AWS_CLIENT_CONFIG), settings.table_name),
        sqs=boto3.client("sqs", config=AWS_CLIENT_CONFIG),
        metrics=metrics,
    )


def _check_secret_names(config: RelayConfig, kind: str, prefix: str) -> None:
    """The function may only read its vendor's secrets, <SECRETS_PREFIX><kind>/… (its IAM in
    template.yaml): say so at cold start, not at the first delivery. No prefix: no check."""
    problems = config.misplaced_secrets(prefix, kind) if prefix else []
    if problems:
        raise ConfigError("secrets the deliver function cannot read", problems)
