"""`relay status`: what was delivered where, what is retrying or stuck, and why (local or AWS).

    relay status --local                    (make status: the running local stack)
    relay status --stack conversion-relay [--since 6h] [--json]

Both print one document (the local stack's GET /_local/status; relay_cli.status_aws builds the
same from CloudWatch, SQS and the DLQs of a deployed stack):

- destinations: delivered, rejected, retried (attempts that failed and were retried), in doubt
  (parked, not resent), skipped by reason, jobs queued and retrying, dead letters by reason;
- queues: depth (visible, in flight, delayed), age of the oldest message, dead letters;
- sources: requests answered, events refused / ignored / parked by reason;
- last errors: the functions' latest warnings and errors with their reasons;
- locally also the latest ledger updates and the webhook answers by route and status.

Tables are plain text at full width (never cut to the terminal), so they read the same in a
terminal, a pipe or CI. See docs/operations.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from typing import Any

from relay.errors import RelayError
from relay.replay.options import parse_moment

from local.client import StackNotRunning, stack_get
from relay_cli.output import clip, table

DEFAULT_LOCAL_PORT = "3000"
DEFAULT_SINCE = "24h"


def counts(values: Mapping[str, int] | None) -> str:
    return ", ".join(f"{why} {n}" for why, n in sorted((values or {}).items()) if n) or "-"


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def render(status: Mapping[str, Any]) -> str:
    """The status document as plain tables."""
    out = [f"{status.get('where', 'local stack')}: {status.get('window', '')}".rstrip(": "), ""]
    rows = [
        [
            d["destination"] + ("" if d.get("enabled", True) else " (disabled)"),
            d["vendor"],
            _cell(d.get("delivered")),
            _cell(d.get("rejected")),
            _cell(d.get("retried")),
            _cell(d.get("in_doubt")),
            counts(d.get("skipped")),
            _cell(d.get("queued")),
            _cell(d.get("retrying")),
            counts(d.get("dead_letters")),
        ]
        for d in status.get("destinations", [])
    ]
    headers = ["DESTINATION", "VENDOR", "DELIVERED", "REJECTED", "RETRIED", "IN DOUBT", "SKIPPED"]
    out += ["Destinations", table([*headers, "QUEUED", "RETRYING", "DEAD LETTERS"], rows), ""]
    rows = [
        [
            q["queue"],
            _cell(q.get("visible")),
            _cell(q.get("not_visible")),
            _cell(q.get("delayed")),
            _age(q.get("oldest_age_seconds")),
            q.get("dead_letter_queue", ""),
            _cell(q.get("dead_letters")),
        ]
        for q in status.get("queues", [])
    ]
    headers = ["QUEUE", "WAITING", "IN FLIGHT", "DELAYED", "OLDEST", "DEAD-LETTER QUEUE", "DEAD LETTERS"]
    out += ["Queues", table(headers, rows), ""]
    rows = [
        [
            s["source"],
            _cell(s.get("requests")),
            counts(s.get("refused")),
            counts(s.get("ignored")),
            counts(s.get("parked")),
        ]
        for s in status.get("sources", [])
    ]
    out += ["Sources", table(["SOURCE", "REQUESTS", "REFUSED", "IGNORED", "PARKED"], rows), ""]
    if "recent" in status:
        rows = [
            [
                r.get("updated_at"),
                r.get("destination"),
                r.get("conversion_id"),
                r.get("status"),
                _cell(r.get("attempts")),
                _cell(r.get("vendor_status")),
                clip(r.get("reason"), 60),
            ]
            for r in status["recent"]
        ]
        headers = ["UPDATED", "DESTINATION", "CONVERSION", "STATUS", "ATTEMPTS", "VENDOR STATUS", "REASON"]
        out += ["Last conversions (delivery ledger)"]
        out += [table(headers, rows) if rows else "No conversions in the ledger yet.", ""]
    if "webhooks" in status:
        rows = [[w["route"], w["status"], w["count"]] for w in status["webhooks"]]
        out += ["Webhooks answered", table(["ROUTE", "STATUS", "COUNT"], rows) if rows else "None yet.", ""]
    errors = status.get("errors", [])
    rows = [
        [e.get("time"), e.get("function"), e.get("level"), clip(e.get("message"), 50), _why(e)]
        for e in errors
    ]
    out += ["Last errors", table(["TIME", "FUNCTION", "LEVEL", "MESSAGE", "WHY"], rows) if rows else "None."]
    return "\n".join(out)


def _why(error: Mapping[str, Any]) -> str:
    keys = ("destination", "reason", "failure_reason", "error", "vendor_status", "vendor_message", "event_id")
    return clip(" ".join(f"{k}={error[k]}" for k in keys if error.get(k) not in (None, "")), 90)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


# --------------------------------------------------------------------------- the command


def local_status(port: str, host: str = "127.0.0.1") -> dict[str, Any]:
    url = f"http://{host}:{port}"
    try:
        document = stack_get(url, "status")
    except StackNotRunning as exc:
        raise RelayError(str(exc)) from exc
    return {"where": f"local stack {url}", **document}


def status(args: argparse.Namespace) -> int:
    if args.local:
        document = local_status(args.port or os.environ.get("PORT") or DEFAULT_LOCAL_PORT)
    else:
        from relay_cli.status_aws import stack_status
        from relay_cli.targets import connect

        since = parse_moment(args.since)
        document = stack_status(connect(args), args.stack, since=since, window=args.since)
    print(json.dumps(document, indent=2, default=str) if args.json else render(document))
    return 0


def add_parser(commands: argparse._SubParsersAction, target: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "status",
        parents=[target],
        help="delivered / rejected / retried per destination, queues, dead letters, sources, last errors",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "--since",
        default=DEFAULT_SINCE,
        metavar="T",
        help="AWS: the window of the counts (24h; 30m, 3d, ISO)",
    )
    command.add_argument("--port", help="local: the stack's HTTP API port ($PORT, 3000)")
    command.add_argument("--json", action="store_true", help="the document, as JSON")
    command.set_defaults(run=status)
