"""Prepared jobs sent in full vendor requests, one outcome per job.

Where a vendor refuses a whole multi-event request for what may be one bad event (Scanova
422, pagent 400: the client's `split_statuses`), the request is split in halves until the
bad events are isolated, so good events are not parked with them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aws_lambda_powertools import Logger
from relay.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnansweredDeliveryError,
)
from relay.vendors.client import VendorClient, VendorEvent, VendorOutcome

logger = Logger(child=True)


def send_jobs(
    client: VendorClient,
    batch: Sequence[list[VendorEvent]],
    *,
    may_continue: Callable[[], bool] = lambda: True,
) -> list[VendorOutcome | None]:
    """One outcome per prepared job, in order; None for a job not attempted (out of time)."""
    outcomes: list[VendorOutcome | None] = [None] * len(batch)
    for start in range(0, len(batch), client.max_batch):
        if not may_continue():
            break
        _send(
            client,
            batch,
            list(range(start, min(start + client.max_batch, len(batch)))),
            outcomes,
            may_continue,
        )
    return outcomes


def _send(
    client: VendorClient,
    batch: Sequence[list[VendorEvent]],
    indices: list[int],
    outcomes: list[VendorOutcome | None],
    may_continue: Callable[[], bool],
) -> None:
    results: Sequence[VendorOutcome]
    try:
        results = client.post([batch[i] for i in indices])
    except PermanentDeliveryError as exc:
        if len(indices) > 1 and exc.status in client.split_statuses:
            half = len(indices) // 2
            for part in (indices[:half], indices[half:]):
                if may_continue():
                    _send(client, batch, part, outcomes, may_continue)
            return
        results = [exc] * len(indices)
    except DeliveryError as exc:
        results = [exc] * len(indices)
    except ConfigError as exc:  # the vendor's secret cannot be read: nothing was sent
        results = [TransientDeliveryError(f"credential unavailable: {exc}")] * len(indices)
    except Exception as exc:  # a fault after the call went out: the vendor may have the events
        logger.exception("vendor answer could not be handled", extra={"destination": client.name})
        results = [UnansweredDeliveryError(f"unreadable answer ({type(exc).__name__})")] * len(indices)
    for index, result in zip(indices, results, strict=True):
        outcomes[index] = result
