"""EventBridge schedules for the local stack: each scheduled function invoked on its rate, scaled.

A template function with an enabled `Schedule` event (ReconcileFunction's `rate(1 hour)`) is
invoked every rate times `scale` seconds (the stack's default makes an hour a minute), with the
event EventBridge sends ("detail-type": "Scheduled Event"), or the schedule's own Input.
`cron(…)` expressions are not emulated: such a schedule is reported and left alone. A scale of
0 runs no schedule (the e2e tests invoke the function themselves: POST /_local/invoke).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local.runtime import FunctionRuntime
from local.world import Schedule, World

_RATE = re.compile(r"^rate\((\d+)\s+(minutes?|hours?|days?)\)$")
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def interval_seconds(expression: str) -> float | None:
    """rate(N unit) in seconds; None for what is not a rate (cron)."""
    found = _RATE.match(expression.strip())
    if not found:
        return None
    return int(found.group(1)) * _SECONDS[found.group(2).rstrip("s")]


def scheduled_event(rule_arn: str, region: str, account_id: str) -> dict[str, Any]:
    """The event an EventBridge schedule sends a Lambda function."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class ScheduleRunner:
    """Invokes one function on one schedule until stopped (the first run after one interval)."""

    def __init__(
        self,
        function: str,
        runtime: FunctionRuntime,
        schedule: Schedule,
        *,
        interval: float,
        region: str,
        account_id: str,
        log: Callable[[str], None],
    ):
        self.function = function
        self.interval = interval
        self._runtime = runtime
        self._schedule = schedule
        self._rule_arn = f"arn:aws:events:{region}:{account_id}:rule/{function}-{schedule.name}"
        self._region = region
        self._account_id = account_id
        self._log = log
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{function}", daemon=True)

    def start(self) -> ScheduleRunner:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            event = (
                json.loads(self._schedule.input)
                if self._schedule.input
                else scheduled_event(self._rule_arn, self._region, self._account_id)
            )
            invocation = self._runtime.invoke(event)
            outcome = "ok" if invocation.ok else f"failed ({(invocation.error or {}).get('errorType')})"
            self._log(f"schedule → {self.function}: {outcome} ({invocation.duration_ms:.0f} ms)")


def start_schedules(
    world: World,
    runtimes: dict[str, FunctionRuntime],
    *,
    scale: float,
    log: Callable[[str], None],
) -> list[ScheduleRunner]:
    """A runner for each enabled rate() schedule of a running function (none when scale is 0)."""
    runners = []
    for logical_id, spec in world.functions.items():
        for schedule in spec.schedules if logical_id in runtimes and scale else ():
            interval = interval_seconds(schedule.expression)
            if not schedule.enabled:
                continue
            if interval is None:
                log(f"schedule {schedule.expression} of {logical_id} is not emulated (rate() only)")
                continue
            runner = ScheduleRunner(
                logical_id,
                runtimes[logical_id],
                schedule,
                interval=interval * scale,
                region=world.region,
                account_id=world.account_id,
                log=log,
            )
            runners.append(runner.start())
    return runners
