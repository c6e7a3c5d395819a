"""`relay parked ls`: authentic webhooks the relay parked because it could not use them.

Each was answered 2xx (the provider stopped retrying) and kept with its reason, without its
payload (relay.parking). After fixing the cause, `relay backfill --parked` relays them.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import get_args

from relay.config import SourceName
from relay.parking import ParkedEvents
from relay.replay.options import parse_moment

from relay_cli.output import age, clip, table
from relay_cli.targets import connect


def parked_ls(args: argparse.Namespace) -> int:
    target = connect(args)
    providers = [args.source] if args.source else list(get_args(SourceName))
    since = parse_moment(args.since) if args.since else None
    events = list(ParkedEvents(target.dynamodb, target.table).list(providers, since=since))[: args.max]
    if args.json:
        print(json.dumps([event.as_json() for event in events], indent=2))
        return 0
    now = datetime.now(UTC)
    if events:
        rows = [
            [
                e.provider,
                e.event_id,
                e.event_type,
                e.reason,
                clip(e.detail, 60),
                e.times,
                age(e.parked_at, now),
            ]
            for e in events
        ]
        print(table(["SOURCE", "EVENT ID", "TYPE", "REASON", "DETAIL", "TIMES", "PARKED"], rows))
        print()
    print(f"{len(events)} parked event(s)" + (" (--max reached)" if len(events) == args.max else ""))
    if events:
        print("fix the cause (config, or the provider's data), then: relay backfill --parked")
    return 0


def add_parser(commands: argparse._SubParsersAction, target: argparse.ArgumentParser) -> None:
    parked = commands.add_parser("parked", help="authentic events parked because they could not be used")
    parked_commands = parked.add_subparsers(dest="parked_command", required=True)
    ls = parked_commands.add_parser("ls", parents=[target], help="list parked events, newest first")
    ls.add_argument("--source", choices=get_args(SourceName), help="only this provider")
    ls.add_argument("--since", metavar="T", help="parked at or after T (ISO 8601, or 30m, 2h, 3d)")
    ls.add_argument("--max", type=int, default=100, metavar="N", help="show at most N (100)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(run=parked_ls)
