"""Per-key rate limits of the vendor sandboxes (rejected requests use up no budget)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque

RATE_WINDOW_SECONDS = 60.0


class RateLimiter:
    """Sliding-window limiter: at most `limit` units per key in any `window` seconds.

    A unit is whatever the vendor counts: a request, or (Scanova) an event. A request
    that does not fit is refused whole and consumes nothing.
    """

    def __init__(self, limit: int | None, window: float = RATE_WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._spent: dict[str, deque[tuple[float, int]]] = {}

    def reset(self) -> None:
        with self._lock:
            self._spent.clear()

    def used(self, key: str) -> int:
        """Units `key` spent in the current window."""
        now = time.monotonic()
        with self._lock:
            return sum(units for at, units in self._spent.get(key, ()) if at > now - self.window)

    def acquire(self, key: str, cost: int = 1) -> int | None:
        """Spend `cost` units; None if allowed, else the whole seconds to wait (Retry-After)."""
        if self.limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            spent = self._spent.setdefault(key, deque())
            while spent and spent[0][0] <= now - self.window:
                spent.popleft()
            used = sum(units for _, units in spent)
            if used + cost <= self.limit:
                spent.append((now, cost))
                return None
            return max(1, math.ceil(self._wait(spent, used, cost, now)))

    def _wait(self, spent: deque[tuple[float, int]], used: int, cost: int, now: float) -> float:
        if cost > self.limit:
            return self.window  # never fits; tell the client to back off a full window
        for at, units in spent:
            used -= units
            if used + cost <= self.limit:
                return at + self.window - now
        return self.window
