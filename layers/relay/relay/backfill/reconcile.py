"""ReconcileFunction: every hour, relay what the providers hold and the webhooks never brought.

For each provider with a read key, the last `window_hours` (26 by default: every event is
looked at by about 26 runs, so an outage of the reconcile itself is covered too) are read
from its API, only what it could not deliver where it says so (Stripe's delivery_success=false,
Paddle's failed notifications), and every event goes through the webhook's own pipeline under
the webhook's claim key (relay.backfill.runner). What was found missing is counted in
`EventsFoundMissing` (dimension source; an alarm fires above 0) and named, ids only, in one log
line per source; `EventsBackfilled` counts what was queued. A provider whose API fails does not
stop the others; the run then fails (Lambda's Errors metric, and EventBridge retries it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel, ConfigDict, Field
from relay.backfill.history import Window
from relay.backfill.runner import Backfill, BackfillPlan, Outcome, sources_of
from relay.errors import BackfillError, RelayError

logger = Logger(child=True)

MAX_LOGGED_IDS = 100
# Missing: the provider has it and the relay had never claimed (or parked) it.
MISSING = (Outcome.RELAYED, Outcome.UNREADABLE)


class ReconcileRequest(BaseModel):
    """The function's event: EventBridge's scheduled event (no fields of ours), or a manual
    invoke narrowing the run, e.g. {"sources": ["stripe"], "window_hours": 72}."""

    model_config = ConfigDict(extra="ignore")

    sources: list[str] = Field(default_factory=list)
    window_hours: float | None = Field(default=None, gt=0, le=24 * 90)


class Reconciler:
    def __init__(
        self,
        backfill: Backfill,
        *,
        window_hours: float,
        metrics: Metrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._backfill = backfill
        self._window_hours = window_hours
        self._metrics = metrics
        self._clock = clock

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self._backfill.readers)

    def run(self, event: dict[str, Any] | None, context: Any = None) -> dict[str, Any]:
        request = ReconcileRequest.model_validate(event or {})
        sources = sources_of(request.sources, self.sources)
        now = self._clock()
        window = Window(now - timedelta(hours=request.window_hours or self._window_hours), now)
        report: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for source in sources:
            plan = BackfillPlan((source,), window=window, failed_only=True)
            try:
                summary = self._backfill.run(plan, context=context)
            except (RelayError, OSError) as exc:  # the provider's API, or AWS: the others go on
                failed[source] = f"{type(exc).__name__}: {exc}"
                logger.exception("reconcile failed", extra={"source": source})
                continue
            missing = summary.ids(source, *MISSING)
            relayed = summary.ids(source, Outcome.RELAYED)
            self._count("EventsFoundMissing", source, len(missing))
            self._count("EventsBackfilled", source, len(relayed))
            report[source] = {
                "missing": len(missing),
                "relayed": len(relayed),
                "counts": dict(summary.counts(source)),
                "listed": summary.listed[source],
                "api_calls": summary.api_calls[source],
                "missing_ids": missing[:MAX_LOGGED_IDS],
            }
            logger.info(
                "reconciled" if not missing else "reconciled: events found missing were relayed",
                extra={"source": source, "since": window.since.isoformat(), **report[source]},
            )
        if failed:
            raise BackfillError(f"reconcile failed for {', '.join(failed)}: {'; '.join(failed.values())}")
        return {"since": window.since.isoformat(), "until": window.until.isoformat(), "sources": report}

    def _count(self, name: str, source: str, value: int) -> None:
        # Its own line per source: the shared Metrics object would merge the dimension.
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=value,
            namespace=self._metrics.namespace,
            default_dimensions={**self._metrics.default_dimensions, "source": source},
        ):
            pass
