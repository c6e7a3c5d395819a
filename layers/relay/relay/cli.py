"""`relay`: the operator's command line (config checks; DLQ inspection and replay).

    relay check-config config/deploy/relay.yaml
    relay dlq ls --local [--destination scanova]
    relay dlq show CONVERSION_ID --stack conversion-relay
    relay replay --local --destination scanova [--dry-run] [--force] [--since 2h] [--rate 5]

`--local` works against the local stack (`make run`: moto on 127.0.0.1:$MOTO_PORT, 4566
by default); `--stack NAME` against a deployed stack, found by its CloudFormation outputs.
The replay logic is relay.replay, shared with ReplayFunction; see docs/replay.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError
from relay.config import DEFAULT_SECRETS_PREFIX, load_config
from relay.exceptions import ConfigError, RelayError
from relay.replay import (
    FailureReason,
    JobRef,
    Listing,
    Outcome,
    ParkedJob,
    Replayer,
    ReplayRequest,
    ReplaySummary,
    build_replayer,
    local_queues,
    stack_queues,
)
from relay.sources import load_source

# local.world.build_world's default stack name: the local stack's queues are named <it>-<LogicalId>.
LOCAL_STACK_NAME = "conversion-relay-local"
DEFAULT_MOTO_PORT = "4566"
# Used when --config is not given and the file exists (run from the repository root).
DEFAULT_CONFIGS = {"local": "config/relay.local.yaml", "aws": "config/deploy/relay.yaml"}
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


# --------------------------------------------------------------------------- check-config


def _check_config(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.paths:
        try:
            config = load_config(path)
            for name, source in config.sources.items():
                # Built-in rules read the source's `settings:` block: a bad one fails here,
                # not at the function's cold start.
                load_source(name).builtin_rules(source)
            if misplaced := config.misplaced_secrets(args.secrets_prefix):
                raise ConfigError("secrets the deliver functions cannot read", misplaced)
        except ConfigError as exc:
            failed += 1
            print(f"{path}: invalid", file=sys.stderr)
            for where, why in exc.problems or [("", str(exc))]:
                print(f"  {where}: {why}" if where else f"  {why}", file=sys.stderr)
            continue
        names = ", ".join(f"{n} ({d.kind})" for n, d in config.destinations.items()) or "none"
        print(
            f"{path}: ok — destinations: {names}; sources: {', '.join(config.sources) or 'built-in defaults'}"
        )
    return 1 if failed else 0


# --------------------------------------------------------------------------- targets


def _replayer(args: argparse.Namespace) -> Replayer:
    """Clients, queues and ledger of the stack the command names (--local or --stack)."""
    import boto3  # not needed by check-config

    config_path = args.config or DEFAULT_CONFIGS["local" if args.local else "aws"]
    if not args.config and not Path(config_path).is_file():
        config_path = None  # vendor kinds still work as --destination
    if args.local:
        endpoint = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', DEFAULT_MOTO_PORT)}"
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto accepts any credentials
            region_name=args.region or os.environ.get("AWS_REGION", "us-east-1"),
        )
        sqs = session.client("sqs", endpoint_url=endpoint)
        dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        queues, table = local_queues(sqs, LOCAL_STACK_NAME)
    else:
        session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
        sqs, dynamodb = session.client("sqs"), session.client("dynamodb")
        queues, table = stack_queues(session.client("cloudformation"), args.stack)
    return build_replayer(
        sqs=sqs,
        dynamodb=dynamodb,
        queues=queues,
        table_name=table,
        config_path=config_path,
        # One moto server answers at once; AWS samples a subset of hosts, so it gets a short poll.
        wait_seconds=0 if args.local else 1,
        native_supported=not args.local,
    )


# --------------------------------------------------------------------------- output


def _age(moment: datetime | None, now: datetime) -> str:
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


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _clip(text: str | None, limit: int = 48) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _job_rows(jobs: Sequence[JobRef], now: datetime, *, ledger: bool) -> tuple[list[str], list[list[Any]]]:
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
            _clip(job.message),
            job.attempts,
            _age(job.parked_since, now),
        ]
        if ledger:
            row.append(job.ledger or "-")
        rows.append(row)
    return headers, rows


def _print_listing(listing: Listing) -> None:
    now = datetime.now(UTC)
    if listing.jobs:
        print(_table(*_job_rows(listing.jobs, now, ledger=True)))
        print()
    counts = ", ".join(f"{reason} {count}" for reason, count in sorted(listing.by_reason.items()))
    print(f"{len(listing.jobs)} parked job(s) listed" + (f": {counts}" if counts else ""))
    totals = ", ".join(f"{vendor} ~{count}" for vendor, count in listing.approximate_total.items())
    print(f"messages in the dead-letter queues (SQS's approximate count): {totals}")
    if listing.truncated:
        print("(--max reached: more may be parked; raise --max to see them)")


def _print_summary(summary: ReplaySummary) -> None:
    now = datetime.now(UTC)
    if summary.dry_run and summary.selected:
        print(_table(*_job_rows(summary.selected, now, ledger=False)))
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


class _Progress:
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

    def __enter__(self) -> Callable[[Outcome, ParkedJob], None]:
        if self._bar is not None:
            self._bar.start()
        return self.advance

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, outcome: Outcome, parked: ParkedJob) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)
        elif outcome is not Outcome.NOT_MATCHING and not self._dry_run:  # a dry run ends with a table
            print(f"{outcome.value:<18} {parked.conversion_id} {parked.conversion_name} {parked.destination}")


# --------------------------------------------------------------------------- commands


def _dlq_ls(args: argparse.Namespace) -> int:
    listing = _replayer(args).list_parked(args.destination, max_jobs=args.max)
    if args.json:
        print(listing.model_dump_json(indent=2))
    else:
        _print_listing(listing)
    return 0


def _dlq_show(args: argparse.Namespace) -> int:
    print(json.dumps(_replayer(args).find(args.id, args.destination, max_jobs=args.max), indent=2))
    return 0


def _replay(args: argparse.Namespace) -> int:
    options = {
        "destination": args.destination,
        "name": args.name,
        "reason": args.reason,
        "since": args.since,
        "until": args.until,
        "max": args.max,
        "rate": args.rate,
        "dry_run": args.dry_run,
        "force": args.force,
        "native": args.native,
    }
    try:
        request = ReplayRequest.model_validate({k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"])
            print(f"relay replay: {where + ': ' if where else ''}{error['msg']}", file=sys.stderr)
        return 2
    replayer = _replayer(args)
    if request.native:
        move = replayer.start_native_move(request)
        print(
            f"started SQS move task for the {move.vendor} DLQ: ~{move.approximate_messages} message(s)"
            f"{f' at {move.rate}/s' if move.rate else ''}\n  task handle: {move.task_handle}\n"
            f"  follow it: aws sqs list-message-move-tasks --source-arn {move.source_arn}"
        )
        return 0
    if args.json:
        summary = replayer.replay(request)
        print(summary.model_dump_json(indent=2))
    else:
        total = min(request.max_jobs, replayer.approximate_count(replayer.select(request.destination).pair))
        with _Progress(total, request.dry_run) as progress:
            summary = replayer.replay(request, progress=progress)
        _print_summary(summary)
    return 0 if summary.ok else EXIT_FAILED


# --------------------------------------------------------------------------- parser


def _target_parser() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    where = parent.add_argument_group("where").add_mutually_exclusive_group(required=True)
    where.add_argument("--local", action="store_true", help="the local stack (make run; moto on $MOTO_PORT)")
    where.add_argument("--stack", metavar="NAME", help="a deployed stack (its CloudFormation outputs)")
    parent.add_argument("--region", help="AWS region (default: your AWS configuration; local: us-east-1)")
    parent.add_argument("--profile", help="AWS profile (--stack only)")
    parent.add_argument(
        "--config",
        metavar="PATH",
        help="relay config, to resolve destination names (default: config/relay.local.yaml with --local, "
        "config/deploy/relay.yaml with --stack)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-config", help="validate relay config files")
    check.add_argument("paths", nargs="+", metavar="CONFIG")
    check.add_argument(
        "--secrets-prefix",
        default=DEFAULT_SECRETS_PREFIX,
        metavar="PREFIX",
        help=f"the stack's SecretsPrefix (default {DEFAULT_SECRETS_PREFIX}): a destination's secrets "
        "must be named PREFIX<kind>/…",
    )
    check.set_defaults(run=_check_config)

    target = _target_parser()
    dlq = commands.add_parser("dlq", help="inspect the dead-letter queues (moves nothing)")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    ls = dlq_commands.add_parser("ls", parents=[target], help="list parked jobs and counts by reason")
    ls.add_argument("--destination", metavar="D", help="a destination of the config or a vendor kind")
    ls.add_argument("--max", type=int, default=100, metavar="N", help="read at most N messages (100)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(run=_dlq_ls)
    show = dlq_commands.add_parser("show", parents=[target], help="one parked job in full")
    show.add_argument("id", metavar="ID", help="conversion id (or SQS message id)")
    show.add_argument("--destination", metavar="D", help="look only in this destination's DLQ")
    show.add_argument("--max", type=int, default=1000, metavar="N", help="read at most N messages per DLQ")
    show.set_defaults(run=_dlq_show)

    replay = commands.add_parser(
        "replay", parents=[target], help="move parked jobs back to their vendor queue"
    )
    replay.add_argument("--destination", required=True, metavar="D", help="a destination or a vendor kind")
    replay.add_argument("--name", metavar="N", help="only this conversion name (purchase, signup, …)")
    replay.add_argument("--reason", choices=get_args(FailureReason), help="only jobs parked for this reason")
    replay.add_argument("--since", metavar="T", help="event time at or after T (ISO 8601, or 30m, 2h, 3d)")
    replay.add_argument("--until", metavar="T", help="event time before T (ISO 8601, or 30m, 2h, 3d)")
    replay.add_argument("--max", type=int, metavar="N", help="read at most N messages (1000)")
    replay.add_argument("--rate", metavar="R/s", help="at most R messages a second to the vendor queue")
    replay.add_argument("--dry-run", action="store_true", help="show what would move; change nothing")
    replay.add_argument("--force", action="store_true", help="also re-deliver rejected and in_doubt jobs")
    replay.add_argument(
        "--native", action="store_true", help="AWS only: SQS StartMessageMoveTask, no filters"
    )
    replay.add_argument("--json", action="store_true", help="print the summary as JSON")
    replay.set_defaults(run=_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except RelayError as exc:
        print(f"relay {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(
            "interrupted: jobs not moved yet are back in the DLQ; run the same command again",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
