"""What a provider's history reader is, and how what it reads becomes the webhook's event.

A reader lists, a page at a time, the events of a time window that its webhook would have
sent (Stripe and Paddle keep the events themselves; Shopify, HubSpot and Pipedrive keep the
orders and deals, from which the reader builds the event the webhook would have carried), or
fetches one event by the key its webhook is claimed under (`relay backfill --event`,
`--parked`). Either way the event comes out of the source's own `parse`, given the body and
headers the webhook would have had, so the rules read the same shape and the claim key is
the webhook's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from relay.backfill.api import ProviderApi
from relay.errors import MappingError, PayloadError
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import ProviderEvent, parse_time
from relay.parking import FINGERPRINT_CHARS
from relay.sources.payloads import content_key
from relay.sources.spec import SourceSpec


@dataclass(frozen=True)
class Window:
    """[since, until], both aware datetimes."""

    since: datetime
    until: datetime

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("a window's bounds must be timezone-aware")
        if self.since > self.until:
            raise ValueError("--since must be before --until")

    def holds(self, moment: datetime | None) -> bool:
        return moment is not None and self.since <= moment <= self.until


@dataclass(frozen=True)
class Unreadable:
    """An event the provider holds that its source cannot parse (the webhook would have been
    parked as malformed): kept, with its id, so the runner can park it for an operator."""

    provider: str
    event_id: str
    event_type: str | None
    reason: str
    fingerprint: str
    occurred_at: datetime | None = None


Found = ProviderEvent | Unreadable


@dataclass(frozen=True)
class HistoryPage:
    events: list[Found]
    next_cursor: str | None = None  # where the next page starts; None after the last one
    listed: int = 0  # what the provider returned, before the reader's own filters


class HistoryReader(Protocol):
    provider: str
    api: ProviderApi

    def pages(self, window: Window, *, failed_only: bool, cursor: str | None = None) -> Iterator[HistoryPage]:
        """The window's events a page at a time, newest or oldest first as the provider lists.

        `failed_only`: only what the provider could not deliver, where it says so (Stripe's
        delivery_success=false, Paddle's failed notifications); the others list everything.
        `cursor`: a page's `next_cursor` from an earlier, interrupted run.
        """
        ...

    def event(self, event_id: str, *, occurred_at: datetime | None = None) -> Found | None:
        """The event its webhook claims as `event_id`, or None if the provider no longer has it."""
        ...


@dataclass(frozen=True)
class WebhookShape:
    """How a source's webhook would have carried a document: its body and headers."""

    spec: SourceSpec
    headers: Mapping[str, str] = field(default_factory=dict)

    def parse(self, document: Any, *, event_id: str, event_type: str | None, **headers: str) -> Found:
        """The source's own parse of the document, or Unreadable with the parse's reason."""
        body = json.dumps(document, separators=(",", ":")).encode()
        given = {name.replace("_", "-"): value for name, value in headers.items()}  # x_shopify_topic=…
        sent = {k.lower(): v for k, v in {**self.headers, **given}.items()}
        request = WebhookRequest(method="POST", path=f"/backfill/{self.spec.name}", headers=sent, body=body)
        try:
            (event,) = self.spec.parse(request)
        except PayloadError as exc:
            return Unreadable(
                provider=self.spec.name,
                event_id=event_id,
                event_type=event_type,
                reason=exc.reason,
                fingerprint=content_key(document, FINGERPRINT_CHARS),
            )
        return event


def first_time(*values: Any) -> datetime | None:
    """The first of these provider times that reads as one (epoch or ISO 8601), else None."""
    for value in values:
        try:
            moment = parse_time(value)
        except MappingError:
            moment = None
        if moment is not None:
            return moment
    return None


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
