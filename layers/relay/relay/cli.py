"""`relay`: the operator's command line (config checks; DLQ inspection and replay)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from relay.config import load_config
from relay.exceptions import ConfigError


def _check_config(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.paths:
        try:
            config = load_config(path)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-config", help="validate relay config files")
    check.add_argument("paths", nargs="+", metavar="CONFIG")
    check.set_defaults(run=_check_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
