"""What a vendor sandbox accepted: its events, the duplicates it did not count again, every request."""

from __future__ import annotations

import copy
import threading
from typing import Any


class AcceptedEvents:
    """Thread-safe: the events a sandbox accepted, the duplicates it did not count, every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._accepted: list[dict[str, Any]] = []
            self._duplicates: list[dict[str, Any]] = []
            self._seen: set[Any] = set()
            self._requests: list[dict[str, Any]] = []

    def record(self, event: dict[str, Any], dedupe_key: Any = None) -> bool:
        """Store an accepted event; False (and kept aside as a duplicate) if its key was seen."""
        with self._lock:
            if dedupe_key is not None and dedupe_key in self._seen:
                self._duplicates.append(event)
                return False
            if dedupe_key is not None:
                self._seen.add(dedupe_key)
            self._accepted.append(event)
            return True

    def log_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)

    def accepted(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._accepted)

    def duplicates(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._duplicates)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._requests)
