"""Deliver functions: an SQS batch of delivery jobs in, vendor calls out, exactly once per destination.

For each batch (up to 100 records of one vendor's queue):
1 parse each record into a DeliveryJob; a body that is not one goes to the DLQ (malformed_job);
2 skip what the destination cannot take (counted, as at ingest), and copies of a job that
  are in the same batch;
3 claim each job in the ledger (relay.ledger): already delivered → dropped; claimed by a live
  invocation → retried later; an earlier holder crashed after it may have called a vendor that
  does not dedupe → DLQ as in_doubt (Destination.in_doubt_policy). A destination whose vendor
  dedupes is not claimed, only looked up (Destination.claims_deliveries);
4 build the vendor events and send them, each destination's requests side by side and the
  destinations of the batch side by side (relay.deliver.sending);
5 settle each record by its outcome (relay.deliver.settlement):
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

import contextlib
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError
from relay import secrets
from relay.config import RelayConfig
from relay.deliver import report
from relay.deliver.sending import Sender, Sent
from relay.deliver.settlement import Settlement
from relay.deliver.work import OUT_OF_TIME, RATE_LIMITED, Deadline, Verdict, Work
from relay.dlq import FailureReason
from relay.errors import (
    ConfigError,
    DeliveryError,
    LedgerError,
    MissingRequirementError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnansweredDeliveryError,
    validation_problems,
)
from relay.ledger import ClaimState, Ledger, Status
from relay.models import DeliveryJob
from relay.settings import DeliverSettings
from relay.vendors.client import Accepted, SecretReader, VendorOutcome
from relay.vendors.http import CONNECT_TIMEOUT_SECONDS, Transport, new_session
from relay.vendors.registry import vendor_spec

logger = Logger(child=True)

# Ledger claims in flight at once: the size of botocore's pool.
IO_CONCURRENCY = 10


class Deliverer:
    """Delivers the jobs of one vendor kind; built once per cold start (relay.deliver.build)."""

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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.kind = kind
        self._ledger = ledger
        self._metrics = metrics
        self._latencies: defaultdict[str, list[float]] = defaultdict(list)
        self._latency_lock = threading.Lock()
        self._destinations = {name: d for name, d in config.destinations.items() if d.kind == kind}
        # Every destination's requests may be in flight at once, and provider reads (fewer than
        # IO_CONCURRENCY) besides.
        connections = sum(d.request_concurrency for d in self._destinations.values()) + IO_CONCURRENCY
        transport = Transport(http or new_session(connections), observe=self._observe_latency)
        read = secret or (lambda name: secrets.get_secret_value(name, max_age=settings.secrets_max_age))
        self._pool = ThreadPoolExecutor(max_workers=IO_CONCURRENCY, thread_name_prefix="delivery-io")
        self._settlement = Settlement(
            vendor=kind, settings=settings, ledger=ledger, sqs_client=sqs, pool=self._pool, rng=rng
        )
        client_class = vendor_spec(kind).client
        self._clients = {
            name: client_class(name, d, transport, read) for name, d in self._destinations.items()
        }
        self._senders = {
            name: Sender(client, clock=clock, sleep=sleep) for name, client in self._clients.items()
        }
        self._readers = {  # destinations whose jobs read a provider API while they are prepared
            name: ThreadPoolExecutor(
                max_workers=client.prepare_concurrency, thread_name_prefix=f"read-{name}"
            )
            for name, client in self._clients.items()
            if client.prepare_concurrency
        }

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
            self._settlement.release(
                w for w in works if w.open and w.claim and w.claim.held and not w.sending
            )
            raise
        self._follow_primaries(works)
        self._settlement.settle(works)
        report.flush_metrics(self._metrics, works, self._latencies)
        report.log_batch(works)
        return {
            "batchItemFailures": [
                {"itemIdentifier": w.record.message_id} for w in works if w.verdict is Verdict.RETRY
            ]
        }

    def retry_delay(self, receive_count: int, retry_after: float | None = None) -> int:
        """Seconds until a retried record is received again (see Settlement.retry_delay)."""
        return self._settlement.retry_delay(receive_count, retry_after)

    # ---- 1, 2: parse and admit

    def _admit(self, record: SQSRecord) -> Work:
        receive_count = int(record.attributes.approximate_receive_count or 1)
        work = Work(record=record, receive_count=receive_count)
        try:
            work.job = DeliveryJob.model_validate_json(record.body)
        except ValidationError as exc:
            problems = "; ".join(f"{where}: {why}" for where, why in validation_problems(exc, limit=5))
            work.park(FailureReason.MALFORMED_JOB, "not_a_delivery_job", message=problems)
            return work
        destination = self._destinations.get(work.job.destination)
        if destination is None:
            message = f"{work.job.destination!r} is not a configured {self.kind} destination"
            work.park(FailureReason.MALFORMED_JOB, "unknown_destination", message=message)
        elif not destination.enabled:
            work.skip("destination_disabled")
        elif reason := destination.skip_reason(work.job.conversion):
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
            if (first := primaries.get(work.job.delivery_key)) is not None:
                work.primary = first
            else:
                primaries[work.job.delivery_key] = work
        claimed = [w for w in primaries.values() if w.client and w.client.destination.claims_deliveries]
        unclaimed: dict[str, list[Work]] = defaultdict(list)
        for work in primaries.values():
            if work.client and not work.client.destination.claims_deliveries:
                unclaimed[work.destination].append(work)
        for destination, group in unclaimed.items():
            self._look_up(destination, group)
        lease = deadline.lease_seconds()
        # One conditional write per job, side by side: 100 claims are not 100 round trips in a row.
        list(self._pool.map(lambda work: self._claim_one(work, lease), claimed))

    def _look_up(self, destination: str, works: Sequence[Work]) -> None:
        """A vendor that dedupes: only what the ledger already settled is left out (one read
        for up to 100 jobs); the others are sent and their outcome recorded after."""
        try:
            statuses = self._ledger.statuses(
                destination, [str(w.job.conversion.conversion_id) for w in works]
            )
        except LedgerError as exc:
            for work in works:
                work.retry("ledger_unavailable", message=str(exc))
            return
        for work in works:
            status = statuses[str(work.job.conversion.conversion_id)]
            if status == Status.DELIVERED:
                work.skip("already_delivered")
            elif status == Status.IN_DOUBT:
                _park_in_doubt(work)
            else:
                work.unclaimed = True

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
            _park_in_doubt(work)
        elif claim.state is ClaimState.BUSY:
            work.retry("claimed_elsewhere", after=max(1.0, claim.busy_for or 0.0))
        elif claim.state is ClaimState.TAKEN_OVER and client.destination.in_doubt_policy == "park":
            message = "an earlier attempt stopped between the vendor call and its answer"
            work.park(FailureReason.IN_DOUBT, "crashed_attempt", message=message)

    # ---- 4: build and send

    def _prepare(self, works: Sequence[Work], deadline: Deadline) -> None:
        ready: dict[str, list[Work]] = defaultdict(list)
        for work in works:
            if work.open and work.primary is None:
                ready[work.destination].append(work)
        for name, group in ready.items():
            self._read_secrets(name)
            if name in self._readers:  # QuickLizard may read each job's line items from Stripe
                list(self._readers[name].map(lambda work: self._prepare_one(work, deadline), group))
            else:
                for work in group:
                    self._prepare_one(work, deadline)

    def _read_secrets(self, destination: str) -> None:
        # A secret that cannot be read is reported by each job that needs it (credential_unavailable).
        with contextlib.suppress(ConfigError):
            self._clients[destination].read_secrets()

    def _prepare_one(self, work: Work, deadline: Deadline) -> None:
        assert work.client is not None and work.job is not None
        if not deadline.allows(work.client.destination.timeout_seconds + CONNECT_TIMEOUT_SECONDS):
            work.retry(OUT_OF_TIME, after=0.0)  # not tried: no backoff
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
            logger.exception("payload could not be built", extra=work.ids())
            work.retry("internal_error")

    def _send(self, works: Sequence[Work], deadline: Deadline) -> None:
        groups: dict[str, list[Work]] = defaultdict(list)
        # Most-received first: when a 429 stops a destination's batch, the jobs left for later
        # are the ones with the most receives to spare.
        for work in sorted(works, key=lambda w: -w.receive_count):
            if work.open and work.events is not None:
                groups[work.destination].append(work)
                work.sending = True
        # Destinations side by side (Scalev's three), each with its own requests side by side.
        for name, results in self._pool.map(lambda item: self._send_group(*item, deadline), groups.items()):
            for work, sent in zip(groups[name], results, strict=True):
                if sent.outcome is None:
                    work.sending = False
                    work.retry(OUT_OF_TIME, after=0.0)  # not tried: no backoff
                else:
                    work.request_id = sent.request_id
                    self._decide(work, sent.outcome)

    def _send_group(self, name: str, group: list[Work], deadline: Deadline) -> tuple[str, list[Sent]]:
        budget = self._clients[name].destination.timeout_seconds + CONNECT_TIMEOUT_SECONDS
        sent = self._senders[name].send(
            [w.events or [] for w in group], may_continue=lambda: deadline.allows(budget)
        )
        return name, sent

    def _decide(self, work: Work, outcome: VendorOutcome) -> None:
        if isinstance(outcome, Accepted):
            work.deliver(outcome.status, outcome.duplicate)
            return
        message = outcome.vendor_message or outcome.reason
        if isinstance(outcome, PermanentDeliveryError):
            work.park(FailureReason.REJECTED, "rejected", status=outcome.status, message=message)
        elif isinstance(outcome, UnansweredDeliveryError) and self._parks_in_doubt(work):
            work.park(FailureReason.IN_DOUBT, "no_answer", status=outcome.status, message=message)
        elif isinstance(outcome, TransientDeliveryError):
            reason = RATE_LIMITED if outcome.status == 429 else "vendor_unavailable"
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

    # ---- observability

    def _observe_latency(self, destination: str, milliseconds: float) -> None:
        with self._latency_lock:  # requests run side by side
            self._latencies[destination].append(milliseconds)


def _transient(exc: DeliveryError) -> TransientDeliveryError:
    return TransientDeliveryError(exc.reason, status=exc.status, vendor_message=exc.vendor_message)


def _park_in_doubt(work: Work) -> None:
    """The ledger says an earlier attempt may have reached the vendor: never resent by itself."""
    message = "an earlier attempt may have reached the vendor; forget it to resend"
    work.park(FailureReason.IN_DOUBT, "in_doubt", message=message)
