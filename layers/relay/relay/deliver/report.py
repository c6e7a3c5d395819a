"""What a batch tells the operator: metrics per destination (EMF) and log lines with ids only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from relay.deliver.work import OUT_OF_TIME, RATE_LIMITED, Verdict, Work
from relay.dlq import FailureReason
from relay.sqs import chunks
from relay.vendors.answers import clean_message

logger = Logger(child=True)

EMF_MAX_VALUES = 100  # values of one metric in one EMF record
NOT_SENT = frozenset({RATE_LIMITED, OUT_OF_TIME})  # retry reasons of jobs no request carried


def flush_metrics(metrics: Metrics, works: Sequence[Work], latencies: dict[str, list[float]]) -> None:
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
            emitters[destination, reason] = _emitter(metrics, destination, reason)
        emitters[destination, reason].add_metric(name=name, unit=MetricUnit.Count, value=count)
    for emitter in emitters.values():
        emitter.flush_metrics()
    for destination, values in latencies.items():
        # Powertools flushes a metric by itself at 100 values and then forgets the dimensions.
        for part in chunks(values, EMF_MAX_VALUES - 1):
            emitter = _emitter(metrics, destination)
            for value in part:
                emitter.add_metric(name="VendorLatency", unit=MetricUnit.Milliseconds, value=value)
            emitter.flush_metrics()


def _emitter(metrics: Metrics, destination: str, reason: str | None = None) -> EphemeralMetrics:
    emitter = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
    emitter.add_dimension(name="destination", value=destination)
    if reason:
        emitter.add_dimension(name="reason", value=reason)
    return emitter


def log_batch(works: Sequence[Work]) -> None:
    summary: Counter[str] = Counter()
    for work in works:
        summary[str(work.verdict)] += 1
        summary["vendor_duplicates"] += work.duplicate
        if work.verdict is Verdict.RETRY and work.reason in NOT_SENT and work.request_id is None:
            # Never sent (the destination backing off, or no time left): counted, not a line each.
            summary[f"not_sent_{work.reason}"] += 1
        elif work.verdict is not Verdict.DELIVERED:
            level = logger.warning if work.verdict is Verdict.PARKED else logger.info
            level(
                f"job {work.verdict}",
                extra={
                    **work.ids(),
                    "reason": work.reason,
                    "failure_reason": work.failure,
                    "vendor_status": work.status,
                    "vendor_message": clean_message(work.message),
                    "attempt": work.receive_count,
                },
            )
    logger.info("batch settled", extra={"records": len(works), **summary})
