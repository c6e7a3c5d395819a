"""Pipedrive API v2 sandbox: the deals `relay backfill` lists.

Routes, authenticated with the `x-api-token` header (or `?api_token=`):
- `GET /api/v2/deals?status=open,won,…&updated_since=&updated_until=&sort_by=id|update_time|
  add_time&sort_direction=asc|desc&limit=` (≤ 500, default 100)`&cursor=`: `{"success": true,
  "data": […], "additional_data": {"next_cursor": …}}` (null on the last page);
- `GET /api/v2/deals/{id}`.
Deals are API v2 objects (custom fields as `custom_fields: {key: value}`): what the relay's
Pipedrive route was sent about deals (webhooks v2 carry the same object as `data`; the local
stack reports each attempt) plus seeded history: deals won 4 and 9 days ago. Limit: a burst of
40 requests per 2 s per token, then 429 `{"success": false, "error": "Request over limit"}`
with `x-ratelimit-reset` (seconds), without `Retry-After`.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from testkit.pipedrive import PIPEDRIVE_DEAL_FIELDS, pipedrive_deal
from testkit.scenario import ATTRIBUTION_METADATA
from testkit.secrets import LOCAL_READ_KEYS

from .api import ApiError, Request, Response, Route
from .provider_api import ProviderApiSandbox, iso, json_body, moment

API_TOKENS = frozenset({LOCAL_READ_KEYS["pipedrive"]})
MAX_LIMIT = 500
SEED_DEALS = ((4 * 24 * 60, 9204), (9 * 24 * 60, 9209))  # (minutes ago, id)
STATUSES = frozenset({"open", "won", "lost", "deleted"})


class PipedriveApiSandbox(ProviderApiSandbox):
    name = "pipedrive_api"
    provider = "pipedrive"
    default_limit = (40, 2.0)

    def __init__(self, api_tokens: frozenset[str] = API_TOKENS, **options: Any):
        self.api_tokens = api_tokens
        self._deals: dict[int, dict[str, Any]] = {}
        super().__init__(**options)

    # ---- history

    def forget_history(self) -> None:
        self._deals = {}

    def seed_history(self) -> None:
        for minutes, deal_id in SEED_DEALS:
            at = iso(self.now() - timedelta(minutes=minutes))
            deal = pipedrive_deal(deal_id=deal_id)
            # The API lists custom fields bare; webhooks v2 wrap them as {type, value}.
            deal["custom_fields"] = {
                key: ATTRIBUTION_METADATA[name] for name, key in PIPEDRIVE_DEAL_FIELDS.items()
            }
            deal.update(won_time=at, update_time=at, add_time=at)
            self.seed_deal(deal)

    def seed_deal(self, deal: dict[str, Any]) -> None:
        with self._history_lock:
            self._deals[int(deal["id"])] = copy.deepcopy(deal)

    def observe_webhook(self, headers: Mapping[str, str], body: bytes, status: int) -> None:
        notification = json_body(body)
        if not isinstance(notification, dict):
            return
        meta, data = notification.get("meta") or {}, notification.get("data")
        if meta.get("entity") == "deal" and isinstance(data, dict) and str(data.get("id", "")).isdigit():
            self.seed_deal(data)  # Pipedrive holds the deal whatever the relay answered

    # ---- routes

    def routes(self) -> Sequence[Route]:
        return (
            Route("GET", r"/api/v2/deals", self._list_deals),
            Route("GET", r"/api/v2/deals/(?P<deal_id>[0-9]+)", self._deal),
        )

    def error_body(self, error: ApiError) -> Any:
        return {
            "success": False,
            "error": error.message,
            "error_info": "Please check developers.pipedrive.com",
        }

    def _list_deals(self, request: Request) -> Response:
        self._authenticate(request)
        statuses = {part for value in self.params("status") for part in value.split(",") if part} or {"open"}
        if statuses - STATUSES:
            raise ApiError(400, f"invalid status: {', '.join(sorted(statuses - STATUSES))}")
        since, until = moment(self.param("updated_since")), moment(self.param("updated_until"))
        sort_by = self.param("sort_by", "id") or "id"
        if sort_by not in ("id", "update_time", "add_time"):
            raise ApiError(400, f"invalid sort_by: {sort_by}")
        limit = int(self.param("limit", "100") or 100)
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}")
        with self._history_lock:
            deals = [copy.deepcopy(d) for d in self._deals.values() if d.get("status") in statuses]
        deals = [
            d
            for d in deals
            if (since is None or (moment(d.get("update_time")) or since) >= since)
            and (until is None or (moment(d.get("update_time")) or until) < until)
        ]
        deals.sort(key=lambda d: _order(d, sort_by), reverse=self.param("sort_direction") == "desc")
        offset = _offset(self.param("cursor"))
        page = deals[offset : offset + limit]
        more = offset + limit < len(deals)
        next_cursor = base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if more else None
        return Response(200, {"success": True, "data": page, "additional_data": {"next_cursor": next_cursor}})

    def _deal(self, request: Request) -> Response:
        self._authenticate(request)
        with self._history_lock:
            deal = copy.deepcopy(self._deals.get(int(request.params["deal_id"])))
        if deal is None:
            raise ApiError(404, "Deal not found")
        return Response(200, {"success": True, "data": deal})

    def _authenticate(self, request: Request) -> None:
        token = request.headers.get("x-api-token") or self.param("api_token") or ""
        if token not in self.api_tokens:
            raise ApiError(401, "unauthorized access")
        wait = self._api_limiter.acquire(token)
        if wait is not None:
            raise ApiError(429, "Request over limit", headers={"x-ratelimit-reset": str(wait)})


def _order(deal: dict[str, Any], sort_by: str) -> tuple[float, int]:
    if sort_by == "id":
        return (0.0, int(deal["id"]))
    at = moment(deal.get(sort_by))
    return (at.timestamp() if at else 0.0, int(deal["id"]))


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except ValueError as exc:
        raise ApiError(400, "invalid cursor") from exc


__all__ = ["API_TOKENS", "PipedriveApiSandbox"]
