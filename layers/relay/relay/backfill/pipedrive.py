"""Pipedrive's deals (API v2): the won deal's webhooks v2 notification, rebuilt.

Pipedrive keeps deals, not webhook deliveries; webhooks v2 carry the API v2 deal as `data`.
The reader lists `GET /api/v2/deals?status=won&updated_since=…&sort_by=update_time&limit=500`
(cursor paging: `additional_data.next_cursor`), keeps the deals whose `won_time` is in the
window, and builds the `change.deal` notification of each one's becoming won (`previous` holds
the status it left: the API keeps only the current one). The source's parse claims it under the
deal (`deal:<id>:won`), the key its webhook is claimed under. Pipedrive says nothing about
failed deliveries, so a reconcile lists the window's won deals (one call for up to 500).

Key: an API token (`x-api-token`) of a user who sees the deals. Limits: a daily token budget
and a burst limit per 2 seconds: the reader paces itself to 5 a second and waits out a 429
(`Retry-After`, else `x-ratelimit-reset`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from relay.backfill.api import ProviderApi
from relay.backfill.history import Found, HistoryPage, WebhookShape, Window, first_time, rfc3339
from relay.config import Source
from relay.sources import pipedrive as source

PAGE_SIZE = 500
MIN_INTERVAL = 0.2
PERMISSION = "an API token of a user who can see the deals"


class PipedriveHistory:
    provider = "pipedrive"

    def __init__(self, api: ProviderApi):
        self.api = api
        self._shape = WebhookShape(source.SOURCE)

    def pages(self, window: Window, *, failed_only: bool, cursor: str | None = None) -> Iterator[HistoryPage]:
        params: dict[str, Any] = {
            "status": source.WON,
            "updated_since": rfc3339(window.since),  # a deal won in the window changed in it
            "sort_by": "update_time",
            "sort_direction": "asc",
            "limit": PAGE_SIZE,
        }
        after = cursor
        while True:
            reply = self.api.get("/api/v2/deals", {**params, **({"cursor": after} if after else {})})
            assert reply is not None
            deals = (reply.body or {}).get("data") or []
            after = ((reply.body or {}).get("additional_data") or {}).get("next_cursor")
            events = [self._event(deal) for deal in deals if window.holds(first_time(deal.get("won_time")))]
            yield HistoryPage(events, after, len(deals))
            if not after:
                return

    def event(self, event_id: str, *, occurred_at: datetime | None = None) -> Found | None:
        deal_id = event_id.removeprefix("deal:").removesuffix(f":{source.WON}")
        if event_id != source.won_deal_key(deal_id) or not deal_id.isdigit():
            return None  # another change's digest key: Pipedrive keeps no webhook history
        reply = self.api.get(f"/api/v2/deals/{deal_id}", missing_ok=True)
        deal = (reply.body or {}).get("data") if reply else None
        return self._event(deal) if deal and deal.get("status") == source.WON else None

    def _event(self, deal: dict[str, Any]) -> Found:
        notification = {
            "meta": {
                "action": "change",
                "entity": "deal",
                "entity_id": str(deal.get("id")),
                "timestamp": deal.get("won_time") or deal.get("update_time"),
                "version": "2.0",
                "change_source": "relay_backfill",
            },
            "data": deal,
            "previous": {"status": "open"},
        }
        return self._shape.parse(
            notification, event_id=source.won_deal_key(deal.get("id")), event_type="change.deal"
        )


def build(
    source_config: Source, key: Callable[[], str], event_types: frozenset[str], **api: Any
) -> PipedriveHistory:
    settings = source.settings_of(source_config)
    http = ProviderApi(
        "pipedrive",
        settings.api_base,
        lambda: {"x-api-token": key()},
        permission=PERMISSION,
        reset_header="x-ratelimit-reset",
        **{"min_interval": MIN_INTERVAL, **api},
    )
    return PipedriveHistory(http)
