"""What the relay would do with one input, without AWS and without sending (`relay try`).

A webhook goes through the same steps as in the ingest function (relay.ingest.pipeline):
verify (only with a secret), parse, the test-mode and event-type checks, the mapping, and
per destination its skip reason; a delivery job (an SQS event of events/sqs) starts at the
deliver step. Each job's vendor request is then built by the vendor's real client
(relay.vendors.<kind>, through the registry) over a transport that records the request and
stops it before anything leaves the process. A read of a provider API the vendor needs at
delivery (QuickLizard: a Stripe Checkout's line items) is reported, not made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from relay.config import RelayConfig, Source
from relay.errors import DeliveryError, MappingError, MissingRequirementError, PayloadError, RequestError
from relay.ingest.edge import WebhookRequest

# Not relay.ingest.pipeline: its module logger would bind to this process's service name.
from relay.ingest.mapping import ProviderEvent, handled_event_types, ignore_reason, map_event, routes
from relay.models import Conversion, DeliveryJob
from relay.sources.spec import SourceSpec
from relay.vendors.http import Transport
from relay.vendors.registry import vendor_spec
from relay.vendors.spec import Destination

from relay_cli.hints import fix_for

REDACTED = "<redacted: {name}>"


# --------------------------------------------------------------------------- results


@dataclass
class VendorRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    params: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"method": self.method, "url": self.url, "headers": self.headers}
        if self.params:
            shown["params"] = self.params
        shown["body"] = self.body
        return shown


@dataclass
class DestinationPreview:
    destination: str
    vendor: str
    outcome: str  # "request" | "skipped" | "needs_provider_api" | "error"
    request: VendorRequest | None = None
    reason: str | None = None
    fix: str | None = None
    batch: int = 1  # jobs per vendor request at delivery (this one may share a request)

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "destination": self.destination,
            "vendor": self.vendor,
            "outcome": self.outcome,
        }
        if self.request is not None:
            shown["request"] = self.request.as_json()
        if self.reason:
            shown["reason"] = self.reason
        if self.fix:
            shown["fix"] = self.fix
        return shown


@dataclass
class ConversionPreview:
    conversion: Conversion
    destinations: list[DestinationPreview]

    def as_json(self) -> dict[str, Any]:
        return {
            "conversion": self.conversion.model_dump(mode="json"),
            "destinations": [d.as_json() for d in self.destinations],
        }


@dataclass
class EventPreview:
    """One provider event: accepted (0..n conversions), ignored or parked, as the webhook answers."""

    event_id: str
    event_type: str
    status: str  # "accepted" | "ignored" | "parked"
    reason: str | None = None
    fix: str | None = None
    conversions: list[ConversionPreview] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status,
        }
        if self.reason:
            shown.update(reason=self.reason, fix=self.fix)
        if self.notes:
            shown["notes"] = self.notes
        shown["conversions"] = [c.as_json() for c in self.conversions]
        return shown


# --------------------------------------------------------------------------- the transport


class _Stopped(Exception):
    """Raised by the recording session: the request was recorded, nothing was sent."""


class _RecordingSession:
    """Stands in for requests.Session under the real Transport: records, then stops the call."""

    def __init__(self) -> None:
        self.requests: list[VendorRequest] = []

    def request(
        self,
        method: str,
        url: str,
        *,
        data: bytes | None = None,
        headers: Any = None,
        params: Any = None,
        **_options: Any,
    ) -> Any:
        self.requests.append(
            VendorRequest(
                method=method,
                url=url,
                headers={str(k): str(v) for k, v in (headers or {}).items()},
                body=None if data is None else json.loads(data),  # the JSON bytes Transport sends
                params={str(k): str(v) for k, v in (params or {}).items()},
            )
        )
        raise _Stopped


def vendor_request(name: str, destination: Destination, conversion: Conversion) -> DestinationPreview:
    """The exact request the deliver function would make for this one job (or why none)."""
    spec = vendor_spec(destination.kind)
    # Every secret reads as "<redacted: its name>", wherever the client puts it (a header, or
    # QuickLizard's client_key in the body): no credential is ever read, none can be shown.
    session = _RecordingSession()
    client = spec.client(name, destination, Transport(session), lambda secret: REDACTED.format(name=secret))
    shown = DestinationPreview(name, destination.kind, "request", batch=client.max_batch)
    try:
        events = client.prepare(conversion)
    except _Stopped:
        read = session.requests[-1]
        shown.outcome = "needs_provider_api"
        shown.reason = "provider_api_read"
        shown.fix = (
            "the conversion lacks what this vendor needs (e.g. product lines); at delivery the relay reads "
            "it from the provider's API with the request below; relay try does not call it"
        )
        shown.request = read
        return shown
    except MissingRequirementError as exc:
        return DestinationPreview(
            name, destination.kind, "skipped", reason=exc.reason, fix=fix_for(exc.reason)
        )
    except DeliveryError as exc:
        return DestinationPreview(name, destination.kind, "error", reason=str(exc))
    try:
        client.post([events])
    except _Stopped:
        shown.request = session.requests[-1]
        return shown
    return DestinationPreview(name, destination.kind, "error", reason="the client sent no request")


# --------------------------------------------------------------------------- a webhook


def preview_webhook(
    spec: SourceSpec,
    source: Source,
    config: RelayConfig,
    request: WebhookRequest,
) -> list[EventPreview]:
    """Parse, check and map a verified request; per conversion, each destination's outcome."""
    rules = spec.builtin_rules(source)
    handled = handled_event_types(source, rules)
    try:
        events = spec.parse(request)
    except PayloadError as exc:
        return [EventPreview("", "unreadable", "parked", exc.code, fix_for(exc.code))]
    return [_event(spec, source, config, rules, handled, event) for event in events]


def _event(
    spec: SourceSpec,
    source: Source,
    config: RelayConfig,
    rules: Sequence[Any],
    handled: set[str],
    event: ProviderEvent,
) -> EventPreview:
    shown = EventPreview(event.event_id, event.event_type, "accepted")
    if reason := ignore_reason(event, source, handled):
        shown.status, shown.reason, shown.fix = "ignored", reason, fix_for(reason)
        return shown
    try:
        if spec.enrich is not None:
            event = spec.enrich(event)
        mapped = map_event(event, source, rules, spec.defaults)
    except MappingError as exc:
        shown.status, shown.reason, shown.fix = "parked", exc.code, f"{exc}; {fix_for(exc.code)}"
        return shown
    paths = {**spec.defaults.attribution, **source.attribution}
    for item in mapped:
        previews = [
            DestinationPreview(
                route.name,
                route.destination.kind,
                "skipped",
                reason=route.skip_reason,
                fix=fix_for(route.skip_reason, paths),
            )
            if route.skip_reason
            else vendor_request(route.name, route.destination, item.conversion)
            for route in routes(config, source, item)
        ]
        shown.conversions.append(ConversionPreview(item.conversion, previews))
    if not mapped:
        shown.notes.append("no rule made a conversion of this event (a rule's `when` did not hold)")
    return shown


def refused(exc: RequestError) -> EventPreview:
    return EventPreview("", "", "refused", exc.code, f"{exc.reason}; {fix_for(exc.code)}")


# --------------------------------------------------------------------------- delivery jobs


def preview_jobs(config: RelayConfig, records: Sequence[Mapping[str, Any]]) -> list[EventPreview]:
    """The vendor request of each delivery job of an SQS event (what a deliver function sends)."""
    shown = []
    for record in records:
        job = DeliveryJob.model_validate_json(record.get("body") or "")
        destination = config.destinations.get(job.destination)
        preview = EventPreview(str(record.get("messageId", "")), "delivery job", "accepted")
        if destination is None:
            preview.status, preview.reason = "parked", "unknown_destination"
            preview.fix = f"{job.destination!r} is not a destination of this config (--config)"
        else:
            reason = destination.skip_reason(job.conversion)
            target = (
                DestinationPreview(
                    job.destination, destination.kind, "skipped", reason=reason, fix=fix_for(reason)
                )
                if reason
                else vendor_request(job.destination, destination, job.conversion)
            )
            preview.conversions.append(ConversionPreview(job.conversion, [target]))
        shown.append(preview)
    return shown


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
