"""Stripe's event log: `GET /v1/events` (30 days), the same JSON its webhooks carry.

- A window: `created[gte]`/`created[lte]` (epoch seconds), `types[]` (the event types the
  relay has rules for; at most 20, else every type is listed and filtered here), 100 a page,
  newest first, `starting_after=<the last id>` for the next page.
- Reconcile: `delivery_success=false` too, i.e. the events whose webhook is still being
  retried or failed for good: nothing missing costs one call.
- One event: `GET /v1/events/{id}` (404 once Stripe no longer keeps it).

Key: a restricted key with **Events: Read** (`rk_…`), sent as a bearer token. Limits: 100
reads a second in live mode, 25 in test mode and per endpoint: the reader paces itself to 20
a second and waits out a 429.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from relay.backfill.api import ProviderApi, bearer
from relay.backfill.history import Found, HistoryPage, WebhookShape, Window, epoch
from relay.config import Source
from relay.sources import stripe as source

PAGE_SIZE = 100
MAX_TYPES = 20  # Stripe's limit on types[]
MIN_INTERVAL = 0.05
PERMISSION = "a restricted key with Events: Read"


class StripeHistory:
    provider = "stripe"

    def __init__(self, api: ProviderApi, event_types: frozenset[str]):
        self.api = api
        self._types = event_types
        self._shape = WebhookShape(source.SOURCE)

    def pages(self, window: Window, *, failed_only: bool, cursor: str | None = None) -> Iterator[HistoryPage]:
        params: dict[str, Any] = {
            "limit": PAGE_SIZE,
            "created[gte]": epoch(window.since),
            "created[lte]": epoch(window.until),
        }
        if len(self._types) <= MAX_TYPES:
            params["types[]"] = sorted(self._types)
        if failed_only:
            params["delivery_success"] = "false"
        after = cursor
        while True:
            reply = self.api.get("/v1/events", {**params, **({"starting_after": after} if after else {})})
            assert reply is not None
            listed = reply.body.get("data") or []
            events = [self._event(doc) for doc in listed if doc.get("type") in self._types]
            after = listed[-1]["id"] if listed else None
            more = bool(reply.body.get("has_more")) and after is not None
            yield HistoryPage(events, after if more else None, len(listed))
            if not more:
                return

    def event(self, event_id: str, *, occurred_at: datetime | None = None) -> Found | None:
        if not event_id.startswith("evt_"):
            return None  # a parked body without an id (body:<fingerprint>)
        reply = self.api.get(f"/v1/events/{quote(event_id, safe='')}", missing_ok=True)
        return None if reply is None else self._event(reply.body)

    def _event(self, document: dict[str, Any]) -> Found:
        return self._shape.parse(document, event_id=str(document.get("id")), event_type=document.get("type"))


def build(
    source_config: Source, key: Callable[[], str], event_types: frozenset[str], **api: Any
) -> StripeHistory:
    settings = source.settings_of(source_config)
    http = ProviderApi(
        "stripe",
        settings.api_base,
        bearer(key),
        permission=PERMISSION,
        **{"min_interval": MIN_INTERVAL, **api},
    )
    return StripeHistory(http, event_types)
