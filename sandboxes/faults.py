"""Injected faults of a sandbox: errors, 429s, latency and hung requests.

They apply before any auth or validation; a faulted request records no event.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class FaultPlan:
    """Failures to inject. The three rates share one random roll, so they must sum to <= 1."""

    error_rate: float = 0.0
    error_status: int = 503
    rate_429: float = 0.0
    retry_after: int = 1
    latency_ms: float = 0.0
    timeout_rate: float = 0.0
    hang_seconds: float = 5.0
    fail_next: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        rates = (self.error_rate, self.rate_429, self.timeout_rate)
        if not all(0 <= rate <= 1 for rate in rates) or sum(rates) > 1:
            raise ValueError("error_rate, rate_429 and timeout_rate must each be in 0..1 and sum to <= 1")
        if not 400 <= self.error_status <= 599:
            raise ValueError("error_status must be a 4xx or 5xx status")
        if min(self.retry_after, self.latency_ms, self.hang_seconds, self.fail_next) < 0:
            raise ValueError("retry_after, latency_ms, hang_seconds and fail_next must not be negative")

    @classmethod
    def from_json(cls, data: Any) -> FaultPlan:
        if not isinstance(data, dict):
            raise ValueError("the fault plan must be a JSON object")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault plan fields: {', '.join(sorted(unknown))}")
        return cls(**data)


class Fault(Enum):
    TIMEOUT = "timeout"
    THROTTLE = "rate_429"
    ERROR = "error"


class FaultInjector:
    """Decides, per request, which fault (if any) the current plan injects."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.set(FaultPlan())

    def set(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plan = plan
            self._rng = random.Random(plan.seed)
            self._fail_next = plan.fail_next

    def draw(self) -> tuple[FaultPlan, Fault | None]:
        with self._lock:
            plan = self.plan
            if self._fail_next > 0:
                self._fail_next -= 1
                return plan, Fault.ERROR
            if not (plan.timeout_rate or plan.rate_429 or plan.error_rate):
                return plan, None  # leave the seeded sequence untouched when nothing is random
            roll = self._rng.random()
            threshold = 0.0
            for fault, rate in (
                (Fault.TIMEOUT, plan.timeout_rate),
                (Fault.THROTTLE, plan.rate_429),
                (Fault.ERROR, plan.error_rate),
            ):
                threshold += rate
                if roll < threshold:
                    return plan, fault
            return plan, None
