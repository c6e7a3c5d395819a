"""Run all four vendor sandboxes until Ctrl-C or SIGTERM.

    python -m sandboxes [--host 127.0.0.1] [--port-base 4100]

With `--port-base N` the sandboxes listen on N (scanova), N+1 (pagent), N+2 (scalev)
and N+3 (quicklizard); without it each gets an ephemeral port. One `name url` line per
sandbox is printed (and flushed) so a parent process can read the addresses.
"""

from __future__ import annotations

import argparse
import signal
import threading

from . import SANDBOXES, start_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandboxes", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port-base", type=int, default=0, help="first port; 0 = ephemeral ports")
    args = parser.parse_args(argv)

    ports = None
    if args.port_base:
        ports = {name: args.port_base + offset for offset, name in enumerate(SANDBOXES)}
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    sandboxes = start_all(args.host, ports)
    try:
        for name, sandbox in sandboxes.items():
            print(f"{name:<12} {sandbox.url}", flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stopping.wait(0.5):
            pass
    finally:
        for sandbox in sandboxes.values():
            sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
