"""Paddle's event stream and notifications (90 days), the JSON its webhooks carry.

- A window: `GET /events?order_by=id[DESC]&per_page=200` (ids sort by time; the list has no
  time filter), newest first until an event older than the window; `after` from
  `meta.pagination.next` is the next page.
- Reconcile: `GET /notifications?status=failed,needs_retry&from=…&to=…` (only the relay's
  destination with `settings.notification_setting_id`): a notification's `payload` is the
  webhook body. Nothing missing costs one call.
- One event (`--event`, `--parked`): the notifications around its time (`from`/`to`), or the
  event stream when the time is not known.

Key: an API key with the **event.read** and **notification.read** permissions, as a bearer
token. Limit: 240 requests a minute per IP: the reader paces itself to 3 a second, and
waits out a 429's `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from relay.backfill.api import ProviderApi, bearer
from relay.backfill.history import Found, HistoryPage, WebhookShape, Window, first_time, rfc3339
from relay.config import Source
from relay.sources import paddle as source

PAGE_SIZE = 200
MIN_INTERVAL = 0.3
UNDELIVERED = "failed,needs_retry"
AROUND = timedelta(minutes=5)  # where a parked event's notification is looked for
PERMISSION = "the event.read and notification.read permissions"


class PaddleHistory:
    provider = "paddle"

    def __init__(self, api: ProviderApi, event_types: frozenset[str], notification_setting_id: str | None):
        self.api = api
        self._types = event_types
        self._destination = notification_setting_id
        self._shape = WebhookShape(source.SOURCE)

    def pages(self, window: Window, *, failed_only: bool, cursor: str | None = None) -> Iterator[HistoryPage]:
        if failed_only:
            yield from self._notifications(window, {"status": UNDELIVERED}, cursor)
        else:
            yield from self._stream(window, cursor)

    def event(self, event_id: str, *, occurred_at: datetime | None = None) -> Found | None:
        if not event_id.startswith("evt_"):
            return None
        if occurred_at is not None:
            around = Window(occurred_at - AROUND, occurred_at + AROUND)
            for page in self._notifications(around, {}, None, wanted=event_id):
                if page.events:
                    return page.events[0]
            return None
        for page in self._stream(None, None, wanted=event_id):
            if page.events:
                return page.events[0]
        return None

    # ---- the two lists

    def _stream(
        self, window: Window | None, cursor: str | None, wanted: str | None = None
    ) -> Iterator[HistoryPage]:
        params = {"order_by": "id[DESC]", "per_page": PAGE_SIZE}
        for documents, next_cursor in self._list("/events", params, cursor):
            events, older = [], False
            for document in documents:
                occurred = first_time(document.get("occurred_at"))
                if window is not None and occurred is not None and occurred < window.since:
                    older = True  # newest first: the rest is older still
                    break
                if self._wanted(document, wanted) and (window is None or window.holds(occurred)):
                    events.append(self._event(document))
            yield HistoryPage(events, None if older else next_cursor, len(documents))
            if older or (wanted and events):
                return

    def _notifications(
        self, window: Window, filters: dict[str, str], cursor: str | None, wanted: str | None = None
    ) -> Iterator[HistoryPage]:
        params: dict[str, Any] = {
            **filters,
            "from": rfc3339(window.since),
            "to": rfc3339(window.until),
            "order_by": "id[ASC]",
            "per_page": PAGE_SIZE,
        }
        if self._destination:
            params["notification_setting_id"] = self._destination
        seen: set[str] = set()  # one event has a notification per destination
        for documents, next_cursor in self._list("/notifications", params, cursor):
            events = []
            for notification in documents:
                payload = notification.get("payload") or {}
                event_id = payload.get("event_id")
                if event_id in seen or not self._wanted(payload, wanted):
                    continue
                seen.add(event_id)
                events.append(self._event(payload))
            yield HistoryPage(events, next_cursor, len(documents))
            if wanted and events:
                return

    def _list(
        self, path: str, params: dict[str, Any], cursor: str | None
    ) -> Iterator[tuple[list[Any], str | None]]:
        after = cursor
        while True:
            reply = self.api.get(path, {**params, **({"after": after} if after else {})})
            assert reply is not None
            pagination = ((reply.body or {}).get("meta") or {}).get("pagination") or {}
            after = _after(pagination.get("next")) if pagination.get("has_more") else None
            yield (reply.body or {}).get("data") or [], after
            if after is None:
                return

    def _wanted(self, document: dict[str, Any], event_id: str | None) -> bool:
        if event_id is not None:
            return document.get("event_id") == event_id
        return document.get("event_type") in self._types

    def _event(self, document: dict[str, Any]) -> Found:
        return self._shape.parse(
            document, event_id=str(document.get("event_id")), event_type=document.get("event_type")
        )


def _after(next_url: str | None) -> str | None:
    values = parse_qs(urlsplit(next_url or "").query).get("after")
    return values[0] if values else None


def build(
    source_config: Source, key: Callable[[], str], event_types: frozenset[str], **api: Any
) -> PaddleHistory:
    settings = source.settings_of(source_config)
    http = ProviderApi(
        "paddle",
        settings.api_base,
        bearer(key),
        permission=PERMISSION,
        **{"min_interval": MIN_INTERVAL, **api},
    )
    return PaddleHistory(http, event_types, settings.notification_setting_id)
