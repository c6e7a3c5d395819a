"""`relay`: the operator's command line (config checks; DLQ inspection and replay).

    relay check-config config/deploy/relay.yaml
    relay dlq ls --local [--destination scanova]
    relay dlq show CONVERSION_ID --stack conversion-relay
    relay replay --local --destination scanova [--dry-run] [--force] [--since 2h] [--rate 5]
    relay parked ls --local [--source stripe]
    relay backfill --local --source stripe --since 2h [--destination D] [--parked] [--dry-run]

`--local` works against the local stack (`make run`: moto on 127.0.0.1:$MOTO_PORT, 4566
by default); `--stack NAME` against a deployed stack, found by its CloudFormation outputs.
The replay logic is relay.replay (in the Lambda layer, shared with ReplayFunction); this
package is the operator tooling, installed in the venv and never shipped to Lambda.
See docs/replay.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from relay.config import DEFAULT_SECRETS_PREFIX, load_config
from relay.dlq import FailureReason
from relay.errors import ConfigError, RelayError, validation_problems
from relay.replay.options import ReplayRequest
from relay.sources.spec import load_source

from relay_cli import backfill, parked, status, try_
from relay_cli.output import Progress, print_listing, print_summary
from relay_cli.targets import replayer_for

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


# --------------------------------------------------------------------------- commands


def _dlq_ls(args: argparse.Namespace) -> int:
    listing = replayer_for(args).list_parked(args.destination, max_jobs=args.max)
    if args.json:
        print(listing.model_dump_json(indent=2))
    else:
        print_listing(listing)
    return 0


def _dlq_show(args: argparse.Namespace) -> int:
    print(json.dumps(replayer_for(args).find(args.id, args.destination, max_jobs=args.max), indent=2))
    return 0


def _replay(args: argparse.Namespace) -> int:
    options = {
        "destination": args.destination,
        "name": args.name,
        "reason": args.reason,
        "request": args.request,
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
        for where, why in validation_problems(exc, top_level=""):
            print(f"relay replay: {where + ': ' if where else ''}{why}", file=sys.stderr)
        return 2
    replayer = replayer_for(args)
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
        with Progress(total, request.dry_run) as progress:
            summary = replayer.replay(request, progress=progress)
        print_summary(summary)
    return 0 if summary.ok else EXIT_FAILED


# --------------------------------------------------------------------------- parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("conversion-relay")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown (not installed: pip install -e .)"


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
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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
    replay.add_argument(
        "--reason", choices=[str(reason) for reason in FailureReason], help="only jobs parked for this reason"
    )
    replay.add_argument("--request", metavar="ID", help="only in-doubt jobs that shared this vendor request")
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

    parked.add_parser(commands, target)
    try_.add_parser(commands, target)
    status.add_parser(commands, target)
    backfill.add_parser(commands, target)
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
