"""SQS batch calls in one place: the 10-entry limit, chunking, and a retry of failed entries.

Every SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch of the relay goes
through `batch_call`. An AWS error of a whole call (BotoCoreError, ClientError) propagates:
the caller decides what it means (ingest answers 503, delivery keeps the record, replay stops).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

BATCH_LIMIT = 10  # entries per SQS *Batch call
MAX_VISIBILITY_SECONDS = 12 * 3600  # ChangeMessageVisibility's ceiling
RETRY_PAUSE_SECONDS = 0.05

Item = TypeVar("Item")


def chunks(items: Sequence[Item], size: int = BATCH_LIMIT) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batch_call(
    operation: Callable[..., dict[str, Any]],
    queue_url: str,
    entries: Sequence[dict[str, Any]],
    *,
    attempts: int = 1,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[int, str]:
    """Run an SQS *Batch operation over `entries` (without their Id), 10 a call.

    Entries that fail with a receiver fault (SQS's side: throttling, an internal error) are
    sent again, up to `attempts` calls in all, after a short pause; a sender fault (a
    malformed entry) would fail again and is not retried. Returns entry index → error code
    of the entries that still failed.
    """
    pending = dict(enumerate(entries))
    failed: dict[int, str] = {}
    for attempt in range(attempts):
        if attempt:
            sleep(RETRY_PAUSE_SECONDS * 2 ** (attempt - 1))
        for index in pending:
            failed.pop(index, None)
        retry: dict[int, dict[str, Any]] = {}
        for chunk in chunks(list(pending.items())):
            answer = operation(QueueUrl=queue_url, Entries=[{"Id": str(i), **entry} for i, entry in chunk])
            for failure in answer.get("Failed", []):
                index = int(failure["Id"])
                failed[index] = failure.get("Code", "error")
                if not failure.get("SenderFault"):
                    retry[index] = pending[index]
        if not retry:
            break
        pending = retry
    return failed
