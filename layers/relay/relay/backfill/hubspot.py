"""HubSpot's deals (the CRM search API): the won deal's dealstage webhook, rebuilt.

HubSpot keeps deals, not webhook deliveries. The reader searches the deals in a won stage
(`settings.won_stages`) whose `closedate` is in the window (`POST /crm/v3/objects/deals/search`,
100 a page, `paging.next.after` for the next; at most 10,000 results a query) and builds, for
each deal won in its pipeline, the `deal.propertyChange` of `dealstage` its webhook would have
sent. The source's parse claims it under the deal and stage (`deal:<id>:dealstage:<stage>`),
the key its webhook is claimed under; the source's enrich then reads the deal and its contact,
as for the webhook. HubSpot says nothing about failed deliveries, so a reconcile searches the
window's won deals (one call for up to 100).

Key: the private app's token with **crm.objects.deals.read** (the HubSpot source's own token
has it). Limit: the search endpoints take 5 requests a second per token: the reader paces
itself to 4.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from relay.backfill.api import ProviderApi, bearer
from relay.backfill.history import Found, HistoryPage, WebhookShape, Window, epoch_ms, first_time
from relay.config import Source
from relay.errors import BackfillError
from relay.sources import hubspot as source
from relay.sources.hubspot import HubSpotSettings

PAGE_SIZE = 100
MAX_RESULTS = 10_000  # HubSpot's cap on one search
MIN_INTERVAL = 0.25
PROPERTIES = ("dealstage", "pipeline", "closedate", "hs_lastmodifieddate")
PERMISSION = "a private app token with crm.objects.deals.read"


class HubSpotHistory:
    provider = "hubspot"

    def __init__(self, api: ProviderApi, settings: HubSpotSettings):
        self.api = api
        self._settings = settings
        self._stages = sorted(settings.any_won_stage)
        self._portal = settings.portal_id
        self._shape = WebhookShape(source.SOURCE)

    def pages(self, window: Window, *, failed_only: bool, cursor: str | None = None) -> Iterator[HistoryPage]:
        if not self._stages:
            return  # no stage means won: nothing to look for
        search: dict[str, Any] = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "dealstage", "operator": "IN", "values": self._stages},
                        {
                            "propertyName": "closedate",
                            "operator": "BETWEEN",
                            "value": str(epoch_ms(window.since)),
                            "highValue": str(epoch_ms(window.until)),
                        },
                    ]
                }
            ],
            "properties": self._properties(),
            "sorts": [{"propertyName": "closedate", "direction": "ASCENDING"}],
            "limit": PAGE_SIZE,
        }
        after = cursor
        while True:
            page = {**search, **({"after": after} if after else {})}
            reply = self.api.post("/crm/v3/objects/deals/search", page)
            body = reply.body or {}
            if int(body.get("total") or 0) > MAX_RESULTS:
                raise BackfillError(
                    f"HubSpot finds {body['total']} won deals in the window, more than one search returns "
                    f"({MAX_RESULTS}): backfill shorter windows"
                )
            deals = body.get("results") or []
            after = (((body.get("paging") or {}).get("next")) or {}).get("after")
            events = [self._event(deal) for deal in deals if self._won(deal)]
            yield HistoryPage(events, after, len(deals))
            if not after:
                return

    def event(self, event_id: str, *, occurred_at: datetime | None = None) -> Found | None:
        deal_id, _, stage = event_id.removeprefix("deal:").partition(f":{source.STAGE_PROPERTY}:")
        if not event_id.startswith("deal:") or not deal_id.isdigit() or not stage:
            return None  # a contact or workflow event: HubSpot keeps objects, not events
        reply = self.api.get(
            f"/crm/v3/objects/deals/{deal_id}", {"properties": ",".join(self._properties())}, missing_ok=True
        )
        if reply is None or ((reply.body or {}).get("properties") or {}).get("dealstage") != stage:
            return None  # gone, or no longer in that stage
        return self._event(reply.body)

    def _properties(self) -> list[str]:
        # When the deal entered each won stage: the webhook's occurredAt.
        return [*PROPERTIES, *(f"hs_date_entered_{stage}" for stage in self._stages)]

    def _won(self, deal: dict[str, Any]) -> bool:
        props = deal.get("properties") or {}
        return self._settings.won(props.get("pipeline"), props.get("dealstage"))

    def _event(self, deal: dict[str, Any]) -> Found:
        props = deal.get("properties") or {}
        stage = str(props.get("dealstage"))
        occurred = first_time(
            props.get(f"hs_date_entered_{stage}"), props.get("closedate"), props.get("hs_lastmodifieddate")
        )
        notification = {
            "eventId": 0,
            "subscriptionId": 0,  # none: read from the CRM, not a subscription
            "portalId": self._portal_id(),
            "occurredAt": epoch_ms(occurred or datetime.now(UTC)),
            "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0,
            "objectId": int(deal["id"]) if str(deal.get("id", "")).isdigit() else deal.get("id"),
            "propertyName": source.STAGE_PROPERTY,
            "propertyValue": stage,
            "changeSource": "RELAY_BACKFILL",
        }
        key = source.stage_change_key(deal.get("id"), stage)
        return self._shape.parse([notification], event_id=key, event_type="deal.propertyChange")

    def _portal_id(self) -> int:
        if self._portal is None:  # once per reader: settings.portal_id spares the call
            reply = self.api.get("/account-info/v3/details")
            assert reply is not None
            self._portal = int((reply.body or {}).get("portalId") or 0)
        return self._portal


def build(
    source_config: Source, key: Callable[[], str], event_types: frozenset[str], **api: Any
) -> HubSpotHistory:
    settings = source.settings_of(source_config)
    http = ProviderApi(
        "hubspot",
        settings.api_base,
        bearer(key),
        permission=PERMISSION,
        **{"min_interval": MIN_INTERVAL, **api},
    )
    return HubSpotHistory(http, settings)
