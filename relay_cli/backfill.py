"""`relay backfill`: relay what the providers hold and the relay never got, from their APIs.

    relay backfill --local --source stripe --since 2h
    relay backfill --stack conversion-relay --since 30d --destination tiktok_new   # a new vendor
    relay backfill --local --parked                 # after fixing what parked them
    relay backfill --local --source stripe --event evt_1NG8Du2eZvKYlo2CW1lZ9XkE
    relay backfill --local --since 3d --dry-run     # what would be relayed, and why not

Each event runs through the ingest pipeline of its source (relay.backfill.runner): claimed
under its webhook's key (what the webhook relayed is a duplicate), enriched, mapped, queued.
`--destination D` queues to D alone and claims nothing: D's delivery ledger keeps each event
exactly-once while no other destination gets it again. A window is read a page at a time and
checkpointed (relay_cli.checkpoint): run the same command again after an interruption.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Metrics
from relay.backfill.history import Window
from relay.backfill.readers import READERS
from relay.backfill.runner import Backfill, BackfillPlan, BackfillSummary, EventResult, Outcome
from relay.errors import BackfillError
from relay.ledger import RETENTION_SECONDS
from relay.parking import ParkedEvents
from relay.replay.options import parse_moment
from relay.vendors.registry import VENDORS

from relay_cli.checkpoint import FileCheckpoint
from relay_cli.output import age, clip, table
from relay_cli.read_keys import ReadKeys
from relay_cli.targets import Target, connect

# Older than the delivery ledger's records: a backfill to every destination could send again.
LEDGER_DAYS = RETENTION_SECONDS // 86400 - 1
METRICS_NAMESPACE = "ConversionRelay"
EXIT_INTERRUPTED = 130


def run_backfill(args: argparse.Namespace) -> int:
    window = _window(args)
    target = connect(args)
    keys = ReadKeys(target)
    sources = _sources(args, keys, target)
    checkpoint = None
    if window is not None and not args.dry_run:
        identity = _identity(args, target, sources)
        checkpoint = FileCheckpoint(identity, window, restart=args.restart)
        if checkpoint.resumed_at:
            print(
                f"resuming the backfill checkpointed at {checkpoint.resumed_at} (--restart starts over)",
                file=sys.stderr,
            )
        window = checkpoint.window
    plan = BackfillPlan(
        sources,
        window=window,
        event_ids=tuple(args.event or ()),
        parked=args.parked,
        destination=args.destination,
        dry_run=args.dry_run,
    )
    backfill = _backfill(target, keys, sources, dry_run=args.dry_run)
    config = next(iter(backfill.pipelines.values())).config
    if args.destination and args.destination not in config.enabled_destinations:
        raise BackfillError(f"--destination {args.destination}: not enabled in {target.config_path}")
    print(_describe(plan), file=sys.stderr)
    try:
        # The pipeline's metrics are EMF lines on stdout (CloudWatch reads them in Lambda); here
        # the summary is the report, and stdout stays clean for it (--json).
        with _Progress(plan) as progress, contextlib.redirect_stdout(io.StringIO()):
            summary = backfill.run(plan, checkpoint=checkpoint, on_event=progress)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume where it stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    if checkpoint is not None:
        checkpoint.finish()
    if args.json:
        print(json.dumps(summary.as_json(), indent=2))
    else:
        print_summary(summary)
    return 0


# ---- options


def _window(args: argparse.Namespace) -> Window | None:
    chosen = [bool(args.since), bool(args.event), args.parked]
    if sum(chosen) != 1:
        raise BackfillError("give one of --since T, --event ID or --parked")
    if not args.since:
        if args.until:
            raise BackfillError("--until goes with --since")
        return None
    now = datetime.now(UTC)
    try:
        since, until = parse_moment(args.since, now), parse_moment(args.until, now) or now
    except ValueError as exc:
        raise BackfillError(str(exc)) from exc
    assert since is not None
    if since < now - timedelta(days=LEDGER_DAYS) and not args.destination and not args.resend_expired:
        raise BackfillError(
            f"--since reaches back more than {LEDGER_DAYS} days, past the delivery ledger's records: "
            "events delivered then would be sent again. Backfill a destination that never had them "
            "(--destination D), or pass --resend-expired if you know none of them arrived"
        )
    try:
        return Window(since, until)
    except ValueError as exc:
        raise BackfillError(str(exc)) from exc


def _sources(args: argparse.Namespace, keys: ReadKeys, target: Target) -> tuple[str, ...]:
    if args.source:
        for source in args.source:
            keys.key(source)  # fails early, naming what is missing
        return tuple(dict.fromkeys(args.source))
    if args.event:  # a parked event names its provider; any other needs --source
        parked = ParkedEvents(target.dynamodb, target.table)
        named = [p for p in READERS for event_id in args.event if parked.get(p, event_id) is not None]
        if not named:
            raise BackfillError("--event: no parked event has that id; say whose it is with --source")
        return tuple(dict.fromkeys(named))
    found = tuple(source for source in READERS if keys.available(source))
    if not found:
        raise BackfillError("no provider has a read key: see docs/guarantees.md (Keys)")
    return found


def _identity(args: argparse.Namespace, target: Target, sources: tuple[str, ...]) -> dict[str, Any]:
    return {
        "where": "local" if target.local else f"{args.stack}@{target.session.region_name}",
        "table": target.table,
        "sources": list(sources),
        "since": args.since,
        "until": args.until,
        "destination": args.destination,
    }


def _backfill(target: Target, keys: ReadKeys, sources: tuple[str, ...], *, dry_run: bool) -> Backfill:
    # On demand: the ingest pipeline (Powertools idempotency, boto3) is not for check-config.
    from relay.backfill.wiring import assemble

    if not target.config_path:
        raise BackfillError("give the relay config (--config PATH): the backfill maps events with it")
    environ = {
        "RELAY_CONFIG": target.config_path,
        "TABLE_NAME": target.table,
        **{VENDORS[kind].queue_url_variable: pair.queue_url for kind, pair in target.queues.items()},
    }
    if "hubspot" in sources and (token := keys.hubspot_token()):
        environ["HUBSPOT_TOKEN"] = token
    return assemble(
        sources=sources,
        environ=environ,
        dynamodb=target.dynamodb,
        sqs=target.sqs,
        keys={source: keys.key(source) for source in sources},
        metrics=Metrics(namespace=METRICS_NAMESPACE, service="relay-backfill"),
        dry_run=dry_run,
    )


# ---- output


def _describe(plan: BackfillPlan) -> str:
    what = (
        f"{plan.window.since:%Y-%m-%d %H:%M} to {plan.window.until:%Y-%m-%d %H:%M} UTC"
        if plan.window
        else ("parked events" if plan.parked else f"event {', '.join(plan.event_ids)}")
    )
    to = f" to {plan.destination} only" if plan.destination else ""
    dry = " (dry run: nothing is written or sent)" if plan.dry_run else ""
    return f"backfill {', '.join(plan.sources)}: {what}{to}{dry}"


LABELS = {
    Outcome.RELAYED: "relayed (queued)",
    Outcome.DUPLICATE: "already relayed (duplicate)",
    Outcome.IGNORED: "ignored (no rule, or test mode)",
    Outcome.PARKED: "parked (still unusable)",
    Outcome.STILL_PARKED: "parked before: relay backfill --parked",
    Outcome.UNREADABLE: "unreadable: parked",
    Outcome.IN_PROGRESS: "being processed by its webhook",
    Outcome.NOT_FOUND: "no longer held by the provider",
    Outcome.WOULD_RELAY: "would relay",
    Outcome.ALREADY_DELIVERED: "already delivered to the destination",
}


def print_summary(summary: BackfillSummary) -> None:
    plan = summary.plan
    if plan.dry_run and summary.results:
        print(table(*_rows(summary.results)))
        print()
    for source in plan.sources:
        counts = summary.counts(source)
        jobs = sum(r.jobs for r in summary.results if r.source == source and r.outcome is Outcome.RELAYED)
        resumed = f", resumed at {clip(summary.resumed[source], 24)}" if source in summary.resumed else ""
        events = sum(counts.values())
        listed, calls = summary.listed[source], summary.api_calls[source]
        print(f"{source}: {events} event(s), {listed} listed by the provider, {calls} API call(s){resumed}")
        width = max((len(LABELS[Outcome(o)]) for o in counts), default=0)
        for outcome, count in sorted(counts.items()):
            extra = f"  ({jobs} job(s))" if outcome == Outcome.RELAYED else ""
            print(f"  {LABELS[Outcome(outcome)].ljust(width)}  {count}{extra}")


def _rows(results: list[EventResult]) -> tuple[list[str], list[list[Any]]]:
    now = datetime.now(UTC)
    headers = ["SOURCE", "EVENT ID", "TYPE", "AGE", "OUTCOME", "DESTINATIONS", "SKIPPED"]
    rows = [
        [
            r.source,
            clip(r.event_id, 40),
            r.event_type,
            age(r.occurred_at, now),
            str(r.outcome),
            ", ".join(sorted(set(r.destinations))) or "-",
            ", ".join(f"{k} {n}" for k, n in sorted(r.skipped.items())) or clip(r.detail, 40) or "-",
        ]
        for r in results
    ]
    return headers, rows


class _Progress:
    """A rich progress bar on a terminal (like `relay replay`), silent otherwise."""

    def __init__(self, plan: BackfillPlan):
        self._bar: Any = None
        if sys.stderr.isatty():
            try:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
            except ImportError:
                return
            total = len(plan.event_ids) * len(plan.sources) if plan.event_ids else None
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._bar.add_task("dry run" if plan.dry_run else "backfilling", total=total)

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, result: EventResult) -> None:
        if self._bar is not None:
            self._bar.update(
                self._task, advance=1, description=f"{result.source} {clip(result.event_id, 28)}"
            )


# ---- parser


def add_parser(commands: argparse._SubParsersAction, target: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "backfill", parents=[target], help="relay what the providers hold and the relay never got"
    )
    parser.add_argument(
        "--source",
        action="append",
        choices=list(READERS),
        help="this provider (repeat; default: all with a key)",
    )
    parser.add_argument("--since", metavar="T", help="events at or after T (ISO 8601, or 30m, 2h, 3d)")
    parser.add_argument("--until", metavar="T", help="events at or before T (default: now)")
    parser.add_argument(
        "--event", action="append", metavar="ID", help="this event (its webhook's key; repeat)"
    )
    parser.add_argument(
        "--parked", action="store_true", help="every parked event, fetched again from the provider"
    )
    parser.add_argument("--destination", metavar="D", help="only this destination (claims nothing)")
    parser.add_argument("--dry-run", action="store_true", help="show what would be relayed; change nothing")
    parser.add_argument("--restart", action="store_true", help="ignore the checkpoint of an interrupted run")
    parser.add_argument(
        "--resend-expired",
        action="store_true",
        help=f"allow --since beyond {LEDGER_DAYS} days without --destination (may deliver twice)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run_backfill)
