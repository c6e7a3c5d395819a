"""`relay try FILE`: what the relay would send for a payload, with no AWS and nothing sent.

    relay try events/stripe/checkout_session_completed.json
    relay try my-payload.json --source paddle --config config/deploy/relay.yaml
    relay try events/stripe/invoice_paid.json --secret whsec_… --json

FILE is an `events/` sample (an API Gateway event, or an SQS event of delivery jobs) or a raw
provider payload (`--source`, else guessed from its folder or its shape). The signature is
checked only with `--secret`. The output is the conversion(s), identity hashed as it leaves
the ingest function, and per destination the exact vendor request (credentials redacted) or
the reason it is skipped and what would fix it (relay_cli.preview).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from relay.config import RelayConfig, Source, load_config
from relay.errors import RelayError, RequestError
from relay.ingest.edge import WebhookRequest, webhook_request
from relay.sources.spec import SourceSpec, load_source

from local.client import guess_provider
from local.world import load_template
from relay_cli.preview import EventPreview, pretty, preview_jobs, preview_webhook, refused
from testkit.secrets import LOCAL_HUBSPOT_TOKEN

DEFAULT_CONFIG = "config/relay.local.yaml"
# Sources that read a provider API at ingest (HubSpot's CRM: its webhooks carry ids only) are
# read from the local stack's stub when the config points there: the stub, and its token inline.
_LOCAL_PROVIDER_API = {"hubspot": ("hubspot_api", {"HUBSPOT_TOKEN": LOCAL_HUBSPOT_TOKEN})}


@dataclass
class Input:
    kind: str  # "webhook" | "jobs"
    source: str | None = None
    request: WebhookRequest | None = None
    records: list[dict[str, Any]] | None = None


def route_sources() -> dict[str, str]:
    """HTTP path → provider, from template.yaml (functions/ingest_<provider> on each route)."""
    routes = {}
    for resource in load_template()["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        folder = Path(str(resource["Properties"].get("CodeUri", ""))).name
        for event in resource["Properties"].get("Events", {}).values():
            if event.get("Type") == "HttpApi" and folder.startswith("ingest_"):
                routes[event["Properties"]["Path"]] = folder.removeprefix("ingest_")
    return routes


def read_input(path: Path, source: str | None) -> Input:
    raw = path.read_bytes()
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise RelayError(f"{path} is not JSON: {exc}") from exc
    if isinstance(document, dict) and isinstance(document.get("Records"), list):
        if all(r.get("eventSource") == "aws:sqs" for r in document["Records"]):
            return Input("jobs", records=document["Records"])
        raise RelayError(f"{path}: only SQS events of delivery jobs are understood among Lambda events")
    routes = route_sources()
    if isinstance(document, dict) and "rawPath" in document and "requestContext" in document:
        provider = source or routes.get(document["rawPath"])
        if provider is None:
            raise RelayError(f"{path}: no source answers {document['rawPath']}: give --source")
        request = webhook_request(document, max_body_bytes=10 * 1024 * 1024)
        # A signature's age is judged as if the request were sent now, not when it was recorded.
        return Input("webhook", provider, replace(request, received_at=None))
    provider = source or guess_provider(path.parent, document, set(routes.values()))
    if provider is None:
        raise RelayError(
            f"{path}: a raw payload of which provider? give --source ({', '.join(routes.values())})"
        )
    route = next(p for p, name in routes.items() if name == provider)
    headers = {"content-type": "application/json"}
    return Input("webhook", provider, WebhookRequest(method="POST", path=route, headers=headers, body=raw))


@contextlib.contextmanager
def bound_source(
    name: str, config: RelayConfig, config_path: str
) -> Iterator[tuple[SourceSpec, Source, list[str]]]:
    """The source spec as its function binds it at cold start. A provider API it reads at ingest
    is read only from the local stack's stub (started here on a free loopback port)."""
    from local.stack.sandboxes import AVAILABLE, plan_sandboxes

    spec, source, notes = load_source(name), config.source(name), []
    environ = {"RELAY_CONFIG": config_path, "TABLE_NAME": "relay-try"}
    stub_name, stub_env = _LOCAL_PROVIDER_API.get(name, (None, {}))
    planned = any(plan.name == stub_name and plan.available for plan in plan_sandboxes(config))
    with contextlib.ExitStack() as stack:
        if planned:
            stub = stack.enter_context(AVAILABLE[stub_name]().start("127.0.0.1", 0))
            source = source.model_copy(update={"settings": {**source.settings, "api_base": stub.url}})
            environ.update(stub_env)
            notes.append(f"{name}: the provider API reads were answered by the local stub ({stub_name})")
        if spec.configure is not None:
            spec = spec.configure(source, environ)
        if spec.enrich is not None and not planned:
            spec = replace(spec, enrich=None)
            notes.append(
                f"{name} events are completed from the provider's API at ingest; relay try reads it only "
                "from the local stub (a loopback api_base in the config): rules that need it make nothing"
            )
        yield spec, source, notes


# --------------------------------------------------------------------------- output


def render(file: str, what: Input, signature: str, events: list[EventPreview], config_path: str) -> str:
    lines = []
    if what.kind == "jobs":
        lines.append(f"{file}: {len(events)} delivery job(s) (an SQS event), config {config_path}")
    else:
        lines.append(f"{file}: {what.source} webhook (POST {what.request.path}), config {config_path}")  # type: ignore[union-attr]
        lines.append(f"signature: {signature}")
    for event in events:
        lines.append("")
        title = f"{event.event_type} {event.event_id}".strip()
        lines.append(f"{title}: {event.status}" + (f" ({event.reason})" if event.reason else ""))
        if event.fix:
            lines.append(f"  fix: {event.fix}")
        lines += [f"  note: {note}" for note in event.notes]
        for conversion in event.conversions:
            c = conversion.conversion
            value = f", {c.value.amount_minor} {c.value.currency} (minor units)" if c.value else ""
            lines.append(f"  conversion {c.name} {c.conversion_id}{value}")
            lines += [
                "    " + line
                for line in pretty(c.model_dump(mode="json", exclude_defaults=True)).splitlines()
            ]
            for target in conversion.destinations:
                lines.append(f"  → {target.destination} ({target.vendor}): {_outcome(target)}")
                if target.fix:
                    lines.append(f"      fix: {target.fix}")
                if target.request is not None:
                    request = target.request
                    query = "&".join(f"{k}={v}" for k, v in request.params.items())
                    lines.append(f"      {request.method} {request.url}{'?' + query if query else ''}")
                    lines += [f"      {name}: {value}" for name, value in request.headers.items()]
                    if request.body is not None:
                        lines += ["      " + line for line in pretty(request.body).splitlines()]
                    if target.batch > 1 and target.outcome == "request":
                        lines.append(f"      (at delivery, up to {target.batch} jobs share one request)")
    return "\n".join(lines)


def _outcome(target: Any) -> str:
    if target.outcome == "request":
        return "would send"
    if target.outcome == "needs_provider_api":
        return "needs a provider API read first (not made)"
    return f"{target.outcome} ({target.reason})"


# --------------------------------------------------------------------------- command


def try_file(args: argparse.Namespace) -> int:
    config_path = args.config or DEFAULT_CONFIG
    config = load_config(config_path)
    what = read_input(Path(args.file), args.source)
    signature = "not checked (give --secret to verify it)"
    if what.kind == "jobs":
        events = preview_jobs(config, what.records or [])
    else:
        assert what.source is not None and what.request is not None
        with bound_source(what.source, config, str(Path(config_path).resolve())) as (spec, source, notes):
            events = []
            if args.secret is not None:
                try:
                    spec.verify(what.request, [args.secret], source)
                    signature = "valid"
                except RequestError as exc:
                    signature = f"refused: {exc.code} ({exc.reason})"
                    events = [refused(exc)]
            if not events:
                events = preview_webhook(spec, source, config, what.request)
            for event in events:
                event.notes += notes
    if args.json:
        document = {
            "file": args.file,
            "config": config_path,
            "kind": what.kind,
            "source": what.source,
            "signature": signature,
            "events": [event.as_json() for event in events],
        }
        print(pretty(document))
    else:
        print(render(args.file, what, signature, events, config_path))
    return 0


def add_parser(commands: argparse._SubParsersAction, target: argparse.ArgumentParser) -> None:
    del target  # no stack: everything happens in this process
    command = commands.add_parser(
        "try",
        help="show what a payload would become and the exact vendor requests (no AWS, nothing sent)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("file", metavar="FILE", help="an events/ sample or a provider payload (JSON)")
    command.add_argument("--source", help="the provider of a raw payload (default: from its path or shape)")
    command.add_argument("--config", metavar="PATH", help=f"relay config (default {DEFAULT_CONFIG})")
    command.add_argument("--secret", metavar="VALUE", help="verify the signature with this signing secret")
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.set_defaults(run=try_file)
