"""What the operator reads: tables, ages, replay summaries, a progress bar."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from relay.dlq import FailureReason
from relay.replay.results import JobRef, Listing, ReplayOutcome, ReplaySummary
from relay.replay.scan import ParkedJob


def age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "?"
    minutes, seconds = divmod(max(0, int((now - moment).total_seconds())), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def clip(text: str | None, limit: int = 48) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def job_rows(jobs: Sequence[JobRef], now: datetime, *, ledger: bool) -> tuple[list[str], list[list[Any]]]:
    headers = [
        "CONVERSION ID",
        "NAME",
        "DESTINATION",
        "REASON",
        "STATUS",
        "VENDOR MESSAGE",
        "ATTEMPTS",
        "AGE",
    ]
    if ledger:
        headers.append("LEDGER")
    rows = []
    for job in jobs:
        row = [
            job.conversion_id or f"(message {job.message_id})",
            job.name,
            job.destination,
            job.reason,
            job.status,
            clip(job.message),
            job.attempts,
            age(job.parked_since, now),
        ]
        if ledger:
            row.append(job.ledger or "-")
        rows.append(row)
    return headers, rows


def print_listing(listing: Listing) -> None:
    now = datetime.now(UTC)
    if listing.jobs:
        print(table(*job_rows(listing.jobs, now, ledger=True)))
        print()
    print_in_doubt_requests(listing.jobs, now)
    counts = ", ".join(f"{reason} {count}" for reason, count in sorted(listing.by_reason.items()))
    print(f"{len(listing.jobs)} parked job(s) listed" + (f": {counts}" if counts else ""))
    totals = ", ".join(f"{vendor} ~{count}" for vendor, count in listing.approximate_total.items())
    print(f"messages in the dead-letter queues (SQS's approximate count): {totals}")
    if listing.truncated:
        print("(--max reached: more may be parked; raise --max to see them)")


def in_doubt_requests(jobs: Sequence[JobRef]) -> dict[str | None, list[JobRef]]:
    """In-doubt jobs by the vendor request they shared (None: no request recorded)."""
    groups: dict[str | None, list[JobRef]] = defaultdict(list)
    for job in jobs:
        if job.reason is FailureReason.IN_DOUBT:
            groups[job.request_id].append(job)
    return dict(groups)


def print_in_doubt_requests(jobs: Sequence[JobRef], now: datetime) -> None:
    """One line per vendor request that left jobs in doubt: one request reached the vendor whole
    or not at all, so one look at the vendor decides all of its jobs."""
    groups = in_doubt_requests(jobs)
    if not groups:
        return
    rows = []
    for request_id, shared in sorted(groups.items(), key=lambda item: (item[0] is None, -len(item[1]))):
        first = shared[0]
        rows.append(
            [
                request_id or "(none: decide each)",
                ", ".join(sorted({j.destination or "?" for j in shared})),
                len(shared),
                first.status,
                clip(first.message),
                age(min((j.parked_since for j in shared if j.parked_since), default=None), now),
            ]
        )
    print("in doubt, by the vendor request they shared (the vendor took all of a request or none of it):")
    print(table(["REQUEST", "DESTINATION", "JOBS", "STATUS", "VENDOR MESSAGE", "AGE"], rows))
    print(
        "check one conversion of a request at the vendor; if it did not arrive: relay replay "
        "--destination D --reason in_doubt --request ID --force; if it did, leave them (docs/replay.md)"
    )
    print()


def print_summary(summary: ReplaySummary) -> None:
    now = datetime.now(UTC)
    if summary.dry_run and summary.selected:
        print(table(*job_rows(summary.selected, now, ledger=False)))
        print()
    title = f"replay {summary.destination} ({summary.vendor} DLQ)" + (
        " — dry run, nothing changed" if summary.dry_run else ""
    )
    lines = [
        (
            "would move" if summary.dry_run else "moved to the vendor queue",
            summary.would_move or summary.moved,
        ),
        (
            "skipped, already delivered" + (" (would delete)" if summary.dry_run else ""),
            summary.already_delivered,
        ),
        ("skipped, second copy of a job", summary.duplicates),
        ("skipped, not matching", summary.not_matching),
    ]
    lines += [(f"left in the DLQ: {reason}", count) for reason, count in sorted(summary.left.items())]
    print(f"{title}: {summary.scanned} read")
    width = max(len(label) for label, _ in lines)
    for label, count in lines:
        print(f"  {label.ljust(width)}  {count}")
    held = {r: n for r, n in summary.left.items() if r in ("rejected", "in_doubt")}
    if held and not summary.force:
        print("  (rejected and in_doubt jobs move only with --force; see docs/replay.md)")
    if summary.stopped == "max":
        print("stopped at --max: run again (or raise --max) for the rest")
    elif summary.stopped == "deadline":
        print("stopped before the time limit: run again for the rest")
    for error in summary.errors:
        print(f"error: {error}", file=sys.stderr)


class Progress:
    """A rich progress bar on a terminal; plain lines otherwise (rich is optional: the `local` extra)."""

    def __init__(self, total: int, dry_run: bool):
        self._dry_run = dry_run
        self._bar: Any = None
        if sys.stdout.isatty():
            try:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
            except ImportError:
                return
            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), transient=True
            )
            self._task = self._bar.add_task("dry run" if dry_run else "replaying", total=total)

    def __enter__(self) -> Callable[[ReplayOutcome, ParkedJob], None]:
        if self._bar is not None:
            self._bar.start()
        return self.advance

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, outcome: ReplayOutcome, parked: ParkedJob) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)
        elif outcome is not ReplayOutcome.NOT_MATCHING and not self._dry_run:  # a dry run ends with a table
            print(f"{outcome.value:<18} {parked.conversion_id} {parked.conversion_name} {parked.destination}")
