"""`relay-local`: run the local stack, send it signed events, show what it delivered.

relay-local run [--port 3000] [--config config/relay.local.yaml]   (make run)
relay-local send events/stripe/checkout_session_completed.json      (make send EVENT=…)
relay-local status                                                   (make status)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError

from local.client import HTTP_TIMEOUT, StackNotRunning, guess_provider, stack_get

DEFAULT_PORT = 3000
# Headers a re-signed request must not carry over from the recorded one.
_STALE_HEADERS = {"content-length", "host", "stripe-signature", "connection", "transfer-encoding"}


def _env_float(name: str, default: float | None) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else default


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


# --------------------------------------------------------------------------- run


def _parse_secret(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name, value


def _run(args: argparse.Namespace) -> int:
    from relay.errors import ConfigError

    from local.stack import LocalStack, PortInUseError, RemoteHostError, StackOptions

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    options = StackOptions(
        config_path=Path(args.config),
        host=args.host,
        allow_remote=args.allow_remote,
        port=args.port,
        moto_port=args.moto_port,
        retry_delay_scale=args.retry_delay_scale,
        batching_window=args.batching_window,
        schedule_scale=args.schedule_scale,
        secret_overrides=dict(args.secret),
        function_logs=not args.quiet,
        warm=not args.no_warm,
        json_logs=args.json_logs,
    )
    stack = LocalStack(options)
    if args.allow_remote:
        print(
            f"WARNING: --allow-remote: the embedded AWS (with every secret it holds), the API and the "
            f"sandboxes listen on {args.host}, reachable from the network",
            file=sys.stderr,
        )
    try:
        stack.start()
    except ConfigError as exc:
        print(f"relay config {args.config} is invalid: {exc}", file=sys.stderr)
        return 2
    except RemoteHostError as exc:
        print(f"relay-local run: {exc}", file=sys.stderr)
        return 2
    except PortInUseError as exc:
        print(f"{exc}; is another `make run` still running?", file=sys.stderr)
        return 1
    try:
        print(stack.banner(), flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stopping.wait(0.5):
            pass
        print("stopping the local stack…", flush=True)
    finally:
        stack.stop()
    print("stopped", flush=True)
    return 0


# --------------------------------------------------------------------------- send


def recorded_request(document: Any, raw: bytes) -> tuple[str | None, str, bytes, dict[str, str]]:
    """(path or None, method, body, headers) of an events/ file: an HTTP API event or a raw payload."""
    if isinstance(document, dict) and "rawPath" in document and "requestContext" in document:
        body_text = document.get("body") or ""
        body = base64.b64decode(body_text) if document.get("isBase64Encoded") else body_text.encode("utf-8")
        headers = {
            k: v for k, v in (document.get("headers") or {}).items() if k.lower() not in _STALE_HEADERS
        }
        method = document["requestContext"].get("http", {}).get("method", "POST")
        return document["rawPath"], method, body, headers
    return None, "POST", raw, {"content-type": "application/json"}


def sign(provider: str, body: bytes, secret: str, *, url: str, method: str) -> dict[str, str]:
    """The headers with which `provider` would sign this request now (the test kit's signers)."""
    from testkit.signers import SIGNATURE_HEADERS

    signer = SIGNATURE_HEADERS.get(provider)
    if signer is None:
        raise ValueError(f"relay-local send cannot sign {provider} requests (no signer in testkit.signers)")
    return signer(body, secret, url=url, method=method, timestamp=int(time.time()))


def _secret_value(info: dict[str, Any], secret_name: str) -> str:
    """The current signing secret, read where the function reads it (the stack's Secrets Manager)."""
    import boto3
    from relay.secrets import split_values

    from local.stack.aws import LOCAL_CREDENTIALS

    client = boto3.client(
        "secretsmanager",
        endpoint_url=info["aws_endpoint"],
        region_name=info["region"],
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    return split_values(client.get_secret_value(SecretId=secret_name)["SecretString"])[0]


def send_event(
    file: Path, *, base_url: str, path: str | None = None, fresh: bool = False
) -> requests.Response:
    """Re-sign an events/ file with the stack's signing secret and the current time, and POST it."""
    raw = file.read_bytes()
    return send_document(
        json.loads(raw), raw=raw, base_url=base_url, path=path, folder=file.parent, fresh=fresh
    )


def send_document(
    document: Any,
    *,
    base_url: str,
    raw: bytes | None = None,
    path: str | None = None,
    folder: Path | None = None,
    fresh: bool = False,
) -> requests.Response:
    """POST an HTTP API event (or a raw provider payload, sent as `raw`) signed as its provider would.

    `fresh`: new event and order ids first (testkit.fresh), so a used stack takes it as new."""
    if isinstance(document, dict) and isinstance(document.get("Records"), list):
        raise ValueError(
            "this is an SQS event (events/sqs/: the jobs a deliver function receives, for `sam local "
            "invoke`), not a webhook: send a webhook sample (events/stripe/…), or see its vendor "
            "requests with `.venv/bin/relay try FILE`"
        )
    info = stack_get(base_url, "info")
    body = raw if raw is not None else json.dumps(document).encode()
    recorded_path, method, body, headers = recorded_request(document, body)
    if fresh:
        from testkit.fresh import freshen

        body, headers = freshen(body, headers)
    routes = [route for route in info["routes"] if route["method"] == method]
    wanted = path or recorded_path
    if wanted:
        route = next((r for r in routes if r["path"] == wanted), None)
    else:
        by_provider = {route["provider"]: route for route in routes}
        provider = guess_provider(folder, document, by_provider)
        route = by_provider[provider] if provider else None
    if route is None:
        known = ", ".join(r["path"] for r in routes)
        raise ValueError(f"no {method} route for {wanted or 'this payload'}: give --path (one of {known})")
    url = f"{base_url}{route['path']}"
    if route.get("secret_name"):
        secret = _secret_value(info, route["secret_name"])
        headers.update(sign(route["provider"], body, secret, url=url, method=method))
    return requests.request(method, url, data=body, headers=headers, timeout=HTTP_TIMEOUT)


def _send(args: argparse.Namespace) -> int:
    base_url = f"http://{args.host}:{args.port}"
    try:
        answer = send_event(Path(args.event), base_url=base_url, path=args.path, fresh=args.fresh)
    except (
        StackNotRunning,
        ValueError,
        OSError,
        BotoCoreError,
        ClientError,
    ) as exc:  # OSError: requests' too
        print(f"relay-local send: {exc}", file=sys.stderr)
        return 1
    print(f"{answer.request.method} {answer.url} → {answer.status_code} {answer.reason}")
    try:
        print(json.dumps(answer.json(), indent=2))
    except ValueError:
        print(answer.text)
    return 0 if answer.ok else 1


# --------------------------------------------------------------------------- status


def render_status(status: dict[str, Any]) -> None:
    """The same plain tables as `relay status --local` (never cut to the terminal's width)."""
    from relay_cli.status import render

    print(render({"where": "local stack", **status}))


def _status(args: argparse.Namespace) -> int:
    try:
        status = stack_get(f"http://{args.host}:{args.port}", "status")
    except (StackNotRunning, requests.RequestException) as exc:
        print(f"relay-local status: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        render_status(status)
    return 0


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay-local", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def common(command: argparse.ArgumentParser) -> None:
        command.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
        command.add_argument(
            "--port",
            type=int,
            default=_env_int("PORT", DEFAULT_PORT),
            help="HTTP API port ($PORT, default 3000)",
        )

    run = commands.add_parser("run", help="start the whole relay on loopback until Ctrl-C")
    common(run)
    run.add_argument(
        "--config",
        default=os.environ.get("RELAY_CONFIG") or "config/relay.local.yaml",
        help="relay config ($RELAY_CONFIG, default config/relay.local.yaml)",
    )
    run.add_argument(
        "--moto-port",
        type=int,
        default=_env_int("MOTO_PORT", 4566),
        help="embedded AWS port ($MOTO_PORT, 4566)",
    )
    run.add_argument(
        "--retry-delay-scale",
        type=float,
        default=_env_float("RETRY_DELAY_SCALE", 0.01),
        help="multiplies the deliver functions' retry delays ($RETRY_DELAY_SCALE, default 0.01)",
    )
    run.add_argument(
        "--batching-window",
        type=float,
        default=_env_float("BATCHING_WINDOW", None),
        help="seconds; overrides the template's MaximumBatchingWindowInSeconds ($BATCHING_WINDOW)",
    )
    run.add_argument(
        "--schedule-scale",
        type=float,
        default=_env_float("SCHEDULE_SCALE", 1 / 60),
        help="multiplies the template's schedules, e.g. ReconcileFunction's hour ($SCHEDULE_SCALE, "
        "default 1/60: a minute; 0: none, POST /_local/invoke runs a function)",
    )
    run.add_argument(
        "--secret",
        type=_parse_secret,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="put this value in the named secret (e.g. a real vendor's key); repeatable",
    )
    run.add_argument(
        "--allow-remote",
        action="store_true",
        help="accept a non-loopback --host (exposes moto with its secrets, the API and the sandboxes)",
    )
    run.add_argument(
        "--no-warm",
        action="store_true",
        help="start no function at startup: cold starts on first use",
    )
    run.add_argument("--quiet", action="store_true", help="do not print the functions' log lines")
    run.add_argument(
        "--json-logs", action="store_true", help="print the functions' log lines as the JSON they write"
    )
    run.set_defaults(handler=_run)

    send = commands.add_parser("send", help="sign an events/ file with the local secret and POST it")
    common(send)
    send.add_argument("event", help="an API Gateway v2 event or a raw provider payload (JSON)")
    send.add_argument("--path", help="route to post to (default: the event's rawPath, or guessed)")
    send.add_argument(
        "--fresh",
        action="store_true",
        default=os.environ.get("FRESH", "") not in ("", "0"),
        help="new event and order ids, so a stack that already has the sample takes it as new ($FRESH=1)",
    )
    send.set_defaults(handler=_send)

    status = commands.add_parser("status", help="per-destination delivery status of the running stack")
    common(status)
    status.add_argument("--json", action="store_true", help="print the raw JSON of GET /_local/status")
    status.set_defaults(handler=_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
