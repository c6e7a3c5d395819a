"""Feed what the providers hold through the ingest pipeline: `relay backfill` and reconcile.

For each event a reader yields (a window's pages, `--event` ids, or `--parked` records):
1 an event its source cannot parse is parked (once) for an operator;
2 an event already claimed is a duplicate, and one already parked stays parked (after the
  fix, `--parked` retries it): both cost one read, no API call and no second park;
3 the rest goes through IngestPipeline.relay_event: claimed under its webhook's key (or, for
  `--destination D`, unclaimed and only to D, whose delivery ledger keeps it exactly-once),
  enriched, mapped and queued; an unmappable one is parked, as its webhook would have been.
A dry run does all of it against read-only clients (relay.backfill.dryrun) and reports what
would happen. After each page the checkpoint keeps the provider's cursor, so an interrupted
run resumes there; the claims make any overlap harmless.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger
from relay.backfill.dryrun import RecordingSqs
from relay.backfill.history import Found, HistoryReader, Unreadable, Window
from relay.errors import BackfillError, ClaimInProgressError
from relay.ledger import Ledger, Status
from relay.parking import ParkedEvent, ParkedEvents

if TYPE_CHECKING:  # imported by whoever builds the pipelines (relay.backfill.wiring)
    from relay.ingest.pipeline import IngestPipeline

logger = Logger(child=True)

CLAIM_BUDGET_SECONDS = 30  # an interrupted run's in-progress claim blocks its event this long


class Outcome(StrEnum):
    RELAYED = "relayed"  # claimed and queued now: the webhook never made it (or no claim: --destination)
    DUPLICATE = "duplicate"  # claimed already, by its webhook or an earlier run
    IGNORED = "ignored"  # no rule for its type, or a test-mode event not allowed
    PARKED = "parked"  # authentic but unusable: parked with its reason
    STILL_PARKED = "still_parked"  # parked before; `--parked` retries it after the fix
    UNREADABLE = "unreadable"  # its source cannot parse what the provider holds: parked
    IN_PROGRESS = "in_progress"  # its webhook is being processed right now
    NOT_FOUND = "not_found"  # `--event`/`--parked`: the provider no longer has it
    WOULD_RELAY = "would_relay"  # dry run
    ALREADY_DELIVERED = "already_delivered"  # dry run with --destination: its ledger has it


@dataclass(frozen=True)
class BackfillPlan:
    sources: tuple[str, ...]
    window: Window | None = None
    event_ids: tuple[str, ...] = ()
    parked: bool = False
    destination: str | None = None
    dry_run: bool = False
    failed_only: bool = False  # reconcile: only what the provider could not deliver, where it says

    def __post_init__(self) -> None:
        chosen = sum((self.window is not None, bool(self.event_ids), self.parked))
        if chosen != 1:
            raise BackfillError("give exactly one of a window (--since), --event or --parked")


@dataclass
class EventResult:
    source: str
    event_id: str
    event_type: str | None
    occurred_at: datetime | None
    outcome: Outcome
    jobs: int = 0
    destinations: tuple[str, ...] = ()  # dry run: where the jobs would go
    skipped: dict[str, int] = field(default_factory=dict)
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "outcome": str(self.outcome),
            "jobs": self.jobs,
            "destinations": list(self.destinations),
            "skipped": self.skipped,
            "detail": self.detail,
        }


@dataclass
class BackfillSummary:
    plan: BackfillPlan
    results: list[EventResult] = field(default_factory=list)
    listed: Counter[str] = field(default_factory=Counter)  # what the providers returned, per source
    api_calls: Counter[str] = field(default_factory=Counter)
    resumed: dict[str, str] = field(default_factory=dict)  # source → the cursor it resumed at

    def counts(self, source: str | None = None) -> Counter[str]:
        return Counter(str(r.outcome) for r in self.results if source is None or r.source == source)

    def ids(self, source: str, *outcomes: Outcome) -> list[str]:
        return [r.event_id for r in self.results if r.source == source and r.outcome in outcomes]

    def as_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "dry_run": plan.dry_run,
            "destination": plan.destination,
            "since": plan.window.since.isoformat() if plan.window else None,
            "until": plan.window.until.isoformat() if plan.window else None,
            "sources": list(plan.sources),
            "counts": {source: dict(self.counts(source)) for source in plan.sources},
            "listed": dict(self.listed),
            "api_calls": dict(self.api_calls),
            "resumed": self.resumed,
            "events": [r.as_json() for r in self.results],
        }


class Checkpoint(Protocol):
    def cursor(self, source: str) -> str | None: ...

    def done(self, source: str) -> bool: ...

    def save(self, source: str, cursor: str | None) -> None:
        """After a page: where the next starts (None: the source is finished)."""


class CallBudget:
    """A Lambda-context stand-in for runs outside Lambda: an interrupted claim expires soon."""

    def __init__(self, seconds: float = CLAIM_BUDGET_SECONDS):
        self._millis = int(seconds * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return self._millis


class Backfill:
    def __init__(
        self,
        *,
        pipelines: Mapping[str, IngestPipeline],
        readers: Mapping[str, HistoryReader],
        parked: ParkedEvents,
        ledger: Ledger,
        recorder: RecordingSqs | None = None,  # a dry run's SQS client
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.pipelines = pipelines
        self.readers = readers
        self._parked = parked
        self._ledger = ledger
        self._recorder = recorder
        self._clock = clock

    @property
    def dry_run(self) -> bool:
        return self._recorder is not None

    def run(
        self,
        plan: BackfillPlan,
        *,
        context: Any = None,
        checkpoint: Checkpoint | None = None,
        on_event: Callable[[EventResult], None] | None = None,
    ) -> BackfillSummary:
        if plan.dry_run != self.dry_run:
            raise BackfillError("a dry run needs the dry-run wiring (and a real run the real one)")
        unknown = [s for s in plan.sources if s not in self.readers]
        if unknown:
            raise BackfillError(f"no reader for {', '.join(unknown)} (is its read key configured?)")
        summary = BackfillSummary(plan)
        context = context or CallBudget()
        calls_before = {source: self.readers[source].api.calls for source in plan.sources}

        def record(result: EventResult) -> None:
            summary.results.append(result)
            if on_event is not None:
                on_event(result)

        try:
            for source in plan.sources:
                if plan.window is not None:
                    self._window(source, plan, summary, context, checkpoint, record)
                elif plan.parked:
                    self._parked_events(source, plan, context, record)
                else:
                    self._event_ids(source, plan, context, record)
        finally:
            for source in plan.sources:
                summary.api_calls[source] = self.readers[source].api.calls - calls_before[source]
        return summary

    # ---- what to read

    def _window(self, source, plan, summary, context, checkpoint, record) -> None:
        if checkpoint is not None and checkpoint.done(source):
            summary.resumed[source] = "done"
            return
        cursor = checkpoint.cursor(source) if checkpoint is not None else None
        if cursor:
            summary.resumed[source] = cursor
        for page in self.readers[source].pages(plan.window, failed_only=plan.failed_only, cursor=cursor):
            summary.listed[source] += page.listed
            for found in page.events:
                record(self._one(source, found, plan, context, retry_parked=False))
            if checkpoint is not None:
                checkpoint.save(source, page.next_cursor)

    def _parked_events(self, source, plan, context, record) -> None:
        for parked in list(self._parked.list([source])):
            self._by_id(source, parked.event_id, parked, plan, context, record, listed=True)

    def _event_ids(self, source, plan, context, record) -> None:
        for event_id in plan.event_ids:
            known = self._parked.get(source, event_id)
            self._by_id(source, event_id, known, plan, context, record, listed=False)

    def _by_id(
        self, source, event_id: str, parked: ParkedEvent | None, plan, context, record, *, listed: bool
    ) -> None:
        """One event read again by its id, parked or not; once relayed, its parked record is
        forgotten. Not found: described by the parked record when it was listed (`--parked`)."""
        found = self.readers[source].event(event_id, occurred_at=parked.occurred_at if parked else None)
        if found is None:
            shown = parked if listed else None  # an --event id is reported as given
            event_type, occurred_at = (shown.event_type, shown.occurred_at) if shown else (None, None)
            record(_not_found(source, event_id, event_type, occurred_at))
            return
        result = self._one(source, found, plan, context, retry_parked=True)
        if parked and result.outcome in (Outcome.RELAYED, Outcome.DUPLICATE) and not self.dry_run:
            self._parked.forget(source, event_id)
        record(result)

    # ---- one event

    def _one(
        self, source: str, found: Found, plan: BackfillPlan, context: Any, *, retry_parked: bool
    ) -> EventResult:
        result = EventResult(source, found.event_id, found.event_type, found.occurred_at, Outcome.RELAYED)
        pipeline = self.pipelines[source]
        # A claim means relayed (a parked event's claim was released): one read for most events.
        if plan.destination is None and not isinstance(found, Unreadable) and pipeline.seen(found):
            result.outcome = Outcome.DUPLICATE
            return result
        if not retry_parked and self._parked.get(source, found.event_id) is not None:
            result.outcome = Outcome.STILL_PARKED
            return result
        if isinstance(found, Unreadable):
            self._park_unreadable(found, pipeline.spec.event_log_days)
            result.outcome, result.detail = Outcome.UNREADABLE, found.reason
            return result
        destinations = [plan.destination] if plan.destination else None
        if self.dry_run:  # unclaimed, against read-only clients: what would happen
            destinations = destinations or list(pipeline.config.enabled_destinations)
        try:
            outcome, answer = pipeline.relay_event(found, destinations=destinations, context=context)
        except ClaimInProgressError:
            result.outcome = Outcome.IN_PROGRESS
            return result
        result.jobs = int(answer.get("jobs") or 0)
        result.skipped = dict(answer.get("skipped") or {})
        result.detail = answer.get("reason")
        result.outcome = Outcome(outcome)
        if self.dry_run:
            self._preview(result, answer, plan.destination)
        return result

    def _preview(self, result: EventResult, answer: dict[str, Any], destination: str | None) -> None:
        assert self._recorder is not None
        result.destinations = tuple(self._recorder.take())
        if result.outcome is not Outcome.RELAYED:
            return
        result.outcome = Outcome.WOULD_RELAY
        if (
            destination
            and result.jobs
            and all(
                self._ledger.status(destination, cid) == Status.DELIVERED
                for cid in answer.get("conversions", [])
            )
        ):
            result.outcome = Outcome.ALREADY_DELIVERED

    def _park_unreadable(self, found: Unreadable, retention_days: int) -> None:
        if self.dry_run:
            return
        self._parked.park(
            ParkedEvent(
                provider=found.provider,
                event_id=found.event_id,
                event_type=found.event_type,
                reason="malformed_payload",
                detail=found.reason,
                fingerprint=found.fingerprint,
                parked_at=self._clock(),
                occurred_at=found.occurred_at,
            ),
            retention_days=retention_days,
        )
        logger.warning(
            "event parked: the provider holds what its source cannot read",
            extra={"provider": found.provider, "event_id": found.event_id, "event_type": found.event_type},
        )


def _not_found(
    source: str, event_id: str, event_type: str | None, occurred_at: datetime | None
) -> EventResult:
    return EventResult(
        source,
        event_id,
        event_type,
        occurred_at,
        Outcome.NOT_FOUND,
        detail="the provider no longer holds it (or never sends it by that key)",
    )


def sources_of(names: Iterable[str], available: Iterable[str]) -> tuple[str, ...]:
    """The named sources in a stable order, each one a provider with a reader."""
    known = list(available)
    wanted = list(dict.fromkeys(names)) or known
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise BackfillError(f"no reader for {', '.join(unknown)}: readable sources are {', '.join(known)}")
    return tuple(wanted)
