"""The dead-letter contract: why a job is parked, the attributes that say so, the ledger key.

Written by the deliver functions when they park a job, read by replay (`relay dlq`, `relay
replay`, ReplayFunction) and by the local stack's status page: each reads it from here.

- A parked message keeps the job's own attributes (destination, conversion_name,
  conversion_id, event_time: `DeliveryJob.message_attributes`) and adds FAILURE_ATTRIBUTES.
- An in_doubt job that was sent carries the `request_id` of the vendor request it shared with
  other jobs: the vendor took all of them or none (one request), so they are decided together.
- SQS allows 10 attributes a message: when a message would carry more, `vendor` is left out
  (the dead-letter queue is the vendor's own).
- A message without `failure_reason` was moved by SQS redrive after maxReceiveCount:
  its reason is retries_exhausted (a body that is not a job is malformed_job).
- The delivery ledger keys each (destination, conversion) as `ledger#<destination>#<id>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from relay.keyspaces import LEDGER as LEDGER_KEY_PREFIX

MAX_ATTRIBUTES = 10  # SQS message attributes


class FailureReason(StrEnum):
    """The `failure_reason` attribute of a dead-letter message."""

    REJECTED = "rejected"
    IN_DOUBT = "in_doubt"
    RETRIES_EXHAUSTED = "retries_exhausted"
    MALFORMED_JOB = "malformed_job"


# Parked on purpose by the deliver function: a resend needs the operator's --force.
HELD_REASONS = frozenset({FailureReason.REJECTED, FailureReason.IN_DOUBT})
# The attributes a deliver function adds when it parks a job; replay strips them.
FAILURE_ATTRIBUTES = frozenset(
    {
        "failure_reason",
        "failure_status",
        "failure_message",
        "attempts",
        "first_failure_at",
        "vendor",
        "request_id",
    }
)


def failure_attributes(
    reason: FailureReason,
    *,
    vendor: str,
    attempts: int,
    first_failure_at: datetime,
    status: int | None = None,
    message: str | None = None,
    request_id: str | None = None,
    room: int = MAX_ATTRIBUTES,
) -> dict[str, dict[str, str]]:
    """SQS message attributes recording why a job is parked (message: bounded, no PII), at most
    `room` of them (what the job's own attributes leave of SQS's 10)."""
    attributes = {
        "failure_reason": {"DataType": "String", "StringValue": str(reason)},
        "attempts": {"DataType": "Number", "StringValue": str(attempts)},
        "first_failure_at": {"DataType": "String", "StringValue": first_failure_at.isoformat()},
        "vendor": {"DataType": "String", "StringValue": vendor},
    }
    if status is not None:
        attributes["failure_status"] = {"DataType": "Number", "StringValue": str(status)}
    if message:
        attributes["failure_message"] = {"DataType": "String", "StringValue": message}
    if request_id:
        attributes["request_id"] = {"DataType": "String", "StringValue": request_id}
    if len(attributes) > room:
        del attributes["vendor"]
    return attributes


def parked_reason(recorded: str | None, *, is_job: bool = True) -> FailureReason:
    """Why a dead letter is parked, from its `failure_reason` attribute (None: SQS redrive)."""
    if not is_job:
        return FailureReason.MALFORMED_JOB
    try:
        return FailureReason(recorded) if recorded else FailureReason.RETRIES_EXHAUSTED
    except ValueError:
        return FailureReason.RETRIES_EXHAUSTED


def ledger_key(destination: str, conversion_id: str) -> str:
    """The delivery ledger item's key of one (destination, conversion)."""
    return f"{LEDGER_KEY_PREFIX}{destination}#{conversion_id}"


def parse_ledger_key(key: str) -> tuple[str, str]:
    """(destination, conversion id) of a ledger item's key."""
    _, destination, conversion_id = key.split("#", 2)
    return destination, conversion_id


def attribute_strings(attributes: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """SQS message attributes as name → string value."""
    return {name: value["StringValue"] for name, value in attributes.items() if "StringValue" in value}
