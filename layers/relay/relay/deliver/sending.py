"""Prepared jobs sent in vendor requests, side by side, one outcome per job.

One `Sender` per destination, built at cold start:
- requests of up to `client.request_size` jobs: the vendor's batch limit, and where an unanswered
  request parks its jobs in doubt (a vendor that does not dedupe), the destination's
  `max_in_doubt`; each request has an id, recorded with the jobs it carried;
- up to the destination's `request_concurrency` requests in flight at once (a thread pool of that
  size), each bounded by its own timeouts (connect, then `timeout_seconds` to the answer), so a
  hung request holds one slot while the others go on: a batch takes about its slowest request;
- a request starts only while the invocation has time for its answer (`may_continue`); the jobs
  of one that never started are not attempted (None);
- a 429 makes the destination back off as a whole: no request of it starts until Retry-After
  has passed (PAUSE_WITHOUT_RETRY_AFTER when the 429 has none, as pagent's do). A short pause
  (≤ MAX_WAIT_SECONDS, and the batch held up for less than WAIT_BUDGET_SECONDS) is waited out
  in the invocation and the throttled request sent again; otherwise the requests not started
  are not sent, and their jobs are retried after Retry-After in waves the size of what the
  vendor took before (Retry-After, twice it, …), so that they return at the pace it accepts
  rather than all at once (each return costs a receive). Without a Retry-After they carry
  none (retry_after None): the queue's exponential backoff spaces them out instead, since a
  one-second guess would spend the record's receives within seconds of a longer rate limit;
- a whole request refused for what may be one bad event (Scanova 422, pagent 400: the client's
  `split_statuses`) is split in halves, in the same slot, until the bad events are isolated.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from aws_lambda_powertools import Logger
from relay.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnansweredDeliveryError,
)
from relay.sqs import chunks
from relay.vendors.client import VendorClient, VendorEvent, VendorOutcome

logger = Logger(child=True)

RATE_LIMITED = 429
# A 429's Retry-After is waited out inside the invocation when it is this short, as long as the
# destination's batch has not been held up for longer than WAIT_BUDGET_SECONDS in all.
MAX_WAIT_SECONDS = 5.0
WAIT_BUDGET_SECONDS = 15.0
# How long the destination pauses in the invocation after a 429 without a Retry-After. Only the
# pause: the jobs it leaves unsent are retried with the queue's backoff, not after this.
PAUSE_WITHOUT_RETRY_AFTER = 1.0


@dataclass(frozen=True)
class Sent:
    """What became of one job: its outcome (None: not attempted) and the request that carried it."""

    outcome: VendorOutcome | None = None
    request_id: str | None = None


class _Backoff:
    """A destination's back-off after a 429: until when nothing may start, and whether this
    batch may still wait for it (a short Retry-After, within WAIT_BUDGET_SECONDS of the batch)."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self._started = clock()
        self._until = 0.0
        self.throttled: TransientDeliveryError | None = None

    def trip(self, exc: TransientDeliveryError) -> None:
        with self._lock:
            self.throttled = exc
            self._until = max(self._until, self._clock() + (exc.retry_after or PAUSE_WITHOUT_RETRY_AFTER))

    def clear_to_send(self, may_continue: Callable[[], bool]) -> bool:
        """True once the destination may send: at once, or after waiting out a short back-off."""
        while True:
            with self._lock:
                delay = self._until - self._clock()
                stuck = self.throttled is not None and self._until - self._started > WAIT_BUDGET_SECONDS
            if delay <= 0:
                return True
            if stuck or delay > MAX_WAIT_SECONDS:
                return False
            self._sleep(delay)
            if not may_continue():
                return False

    def not_sent(self, wave: int = 1) -> TransientDeliveryError | None:
        throttled = self.throttled
        if throttled is None:
            return None
        retry_after = throttled.retry_after
        return TransientDeliveryError(
            "not sent: the destination is backing off after a 429",
            status=RATE_LIMITED,
            vendor_message=throttled.vendor_message,
            # No Retry-After: None, so that settlement applies its exponential backoff.
            retry_after=None if retry_after is None else (retry_after or PAUSE_WITHOUT_RETRY_AFTER) * wave,
        )


def _throttled(outcome: VendorOutcome | None) -> bool:
    return isinstance(outcome, TransientDeliveryError) and outcome.status == RATE_LIMITED


class Sender:
    """Sends one destination's prepared jobs (see the module doc)."""

    def __init__(
        self,
        client: VendorClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self._clock = clock
        self._sleep = sleep
        self._pool = ThreadPoolExecutor(
            max_workers=client.destination.request_concurrency, thread_name_prefix=f"send-{client.name}"
        )

    def send(
        self, batch: Sequence[list[VendorEvent]], *, may_continue: Callable[[], bool] = lambda: True
    ) -> list[Sent]:
        """One Sent per prepared job, in order."""
        results = [Sent()] * len(batch)
        size = self.client.request_size
        backoff = _Backoff(self._clock, self._sleep)
        requests = [list(part) for part in chunks(range(len(batch)), size)]
        futures = [
            self._pool.submit(self._request, batch, indices, results, may_continue, backoff)
            for indices in requests
        ]
        for future in futures:
            future.result()
        return self._paced(results, backoff)

    def _paced(self, results: list[Sent], backoff: _Backoff) -> list[Sent]:
        """Jobs a 429 left unsent come back in waves the size of what the vendor took before it
        (at least one request per slot): the first after Retry-After, the next after twice that,
        …, not all at once, since each return costs one of the receives the queue allows."""
        taken = sum(1 for sent in results if sent.request_id is not None and not _throttled(sent.outcome))
        wave = max(taken, self.client.destination.request_concurrency * self.client.request_size)
        unsent = [i for i, sent in enumerate(results) if sent.request_id is None and sent.outcome is not None]
        for rank, index in enumerate(unsent):
            results[index] = Sent(backoff.not_sent(wave=1 + rank // wave))
        return results

    def _request(
        self,
        batch: Sequence[list[VendorEvent]],
        indices: list[int],
        results: list[Sent],
        may_continue: Callable[[], bool],
        backoff: _Backoff,
    ) -> None:
        if not backoff.clear_to_send(may_continue):
            held = backoff.not_sent()
            if held is not None:
                for index in indices:
                    results[index] = Sent(held)
            return  # held back, or out of time (then retried without a backoff)
        if not may_continue():
            return  # not attempted: retried without a backoff
        request_id = uuid.uuid4().hex[:16]
        outcomes: Sequence[VendorOutcome]
        try:
            outcomes = self.client.post([batch[i] for i in indices])
        except TransientDeliveryError as exc:
            if _throttled(exc):
                # The vendor took nothing: the whole destination waits, then this request goes again.
                backoff.trip(exc)
                self._request(batch, indices, results, may_continue, backoff)
                if results[indices[0]].outcome is not None:
                    return
            outcomes = [exc] * len(indices)
        except PermanentDeliveryError as exc:
            if len(indices) > 1 and exc.status in self.client.split_statuses:
                half = len(indices) // 2
                for part in (indices[:half], indices[half:]):
                    self._request(batch, part, results, may_continue, backoff)
                return
            outcomes = [exc] * len(indices)
        except DeliveryError as exc:
            outcomes = [exc] * len(indices)
        except ConfigError as exc:  # the vendor's secret cannot be read: nothing was sent
            outcomes = [TransientDeliveryError(f"credential unavailable: {exc}")] * len(indices)
        except Exception as exc:  # a fault after the call went out: the vendor may have the events
            logger.exception("vendor answer could not be handled", extra={"destination": self.client.name})
            outcomes = [UnansweredDeliveryError(f"unreadable answer ({type(exc).__name__})")] * len(indices)
        for index, outcome in zip(indices, outcomes, strict=True):
            results[index] = Sent(outcome, request_id)
