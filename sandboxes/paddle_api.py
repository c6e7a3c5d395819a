"""Paddle API sandbox: the event stream and the notifications, as `relay backfill` reads them.

Routes, authenticated with `Authorization: Bearer <API key>`:
- `GET /events?after=&order_by=id[ASC|DESC]&per_page=` (≤ 200, default 50): the events of the
  last 90 days; no time filter (Paddle has none);
- `GET /notifications?status=a,b&from=&to=&notification_setting_id=&after=&order_by=&per_page=`:
  one notification per event and destination, `payload` = the webhook body; `status` is
  delivered, needs_retry (failed, Paddle retries) or failed (Paddle gave up: after
  `give_up_after` failed attempts).
Lists answer `{"data": […], "meta": {"request_id", "pagination": {"per_page", "next",
"has_more", "estimated_total"}}}`; `next` is the URL of the next page (`after=<last id>`).
Paddle's ids sort by creation time; here the stream is ordered by `occurred_at`, then id.

Events are what the relay's Paddle route was sent (the local stack reports each attempt) plus
seeded history: transactions completed 40 minutes and 2 days ago, delivered. Limit: 240
requests a minute (429 with Retry-After). Errors: `{"error": {"type", "code", "detail"}}`.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

from testkit.paddle import paddle_notification, paddle_transaction
from testkit.secrets import LOCAL_READ_KEYS

from .api import ApiError, Request, Response, Route
from .provider_api import ProviderApiSandbox, iso, json_body, moment

API_KEYS = frozenset({LOCAL_READ_KEYS["paddle"]})
DESTINATION = "ntfset_01local0conversion0relay"
MAX_PER_PAGE = 200
RETENTION = timedelta(days=90)
SEED_EVENTS = ((40, "recent"), (2 * 24 * 60, "2d"))  # (minutes ago, tag)
STATUSES = frozenset({"delivered", "failed", "needs_retry", "not_attempted"})


class PaddleApiSandbox(ProviderApiSandbox):
    name = "paddle_api"
    provider = "paddle"
    default_limit = (240, 60.0)
    invalid_json_status: ClassVar[int] = 400

    def __init__(self, api_keys: frozenset[str] = API_KEYS, *, give_up_after: int = 3, **options: Any):
        self.api_keys = api_keys
        self.give_up_after = give_up_after
        self._events: dict[str, dict[str, Any]] = {}
        self._notifications: dict[str, dict[str, Any]] = {}
        super().__init__(**options)

    # ---- history

    def forget_history(self) -> None:
        self._events, self._notifications = {}, {}

    def seed_history(self) -> None:
        for minutes, tag in SEED_EVENTS:
            occurred = iso(self.now() - timedelta(minutes=minutes))
            body = paddle_notification(
                "transaction.completed",
                paddle_transaction(transaction_id=f"txn_seed_{tag}"),
                event_id=f"evt_seed_{tag}",
                notification_id=f"ntf_seed_{tag}",
                occurred_at=occurred,
            )
            self._hold(body, status="delivered", attempts=1)

    def observe_webhook(self, headers: Mapping[str, str], body: bytes, status: int) -> None:
        notification = json_body(body)
        if not isinstance(notification, dict) or not notification.get("event_id"):
            return
        with self._history_lock:
            held = self._notifications.get(str(notification.get("notification_id") or ""))
            attempts = (held["times_attempted"] if held else 0) + 1
            if (held and held["status"] == "delivered") or 200 <= status < 300:
                state = "delivered"
            else:
                state = "failed" if attempts >= self.give_up_after else "needs_retry"
            self._hold(notification, status=state, attempts=attempts)

    def _hold(self, body: dict[str, Any], *, status: str, attempts: int) -> None:
        event = {k: v for k, v in body.items() if k != "notification_id"}
        notification_id = str(body.get("notification_id") or f"ntf_{uuid.uuid4().hex[:26]}")
        with self._history_lock:
            self._events.setdefault(str(event["event_id"]), event)
            self._notifications[notification_id] = {
                "id": notification_id,
                "type": event.get("event_type"),
                "status": status,
                "payload": {**copy.deepcopy(event), "notification_id": notification_id},
                "occurred_at": event.get("occurred_at"),
                "delivered_at": iso(self.now()) if status == "delivered" else None,
                "replayed_at": None,
                "origin": "event",
                "last_attempt_at": iso(self.now()),
                "retry_at": None,
                "times_attempted": attempts,
                "notification_setting_id": DESTINATION,
            }

    # ---- routes

    def routes(self) -> Sequence[Route]:
        return (
            Route("GET", r"/events", self._list_events),
            Route("GET", r"/notifications", self._list_notifications),
        )

    def error_body(self, error: ApiError) -> Any:
        code = {401: "authentication_malformed", 429: "too_many_requests", 404: "not_found"}.get(
            error.status, "bad_request"
        )
        return {
            "error": {"type": "request_error", "code": code, "detail": error.message},
            "meta": {"request_id": str(uuid.uuid4())},
        }

    def _list_events(self, request: Request) -> Response:
        self._authenticate(request)
        with self._history_lock:
            items = [e for e in self._events.values() if self._retained(e.get("occurred_at"))]
        return self._page(request.path, items, "event_id")

    def _list_notifications(self, request: Request) -> Response:
        self._authenticate(request)
        statuses = {part for value in self.params("status") for part in value.split(",") if part}
        if statuses - STATUSES:
            raise ApiError(400, f"invalid status: {', '.join(sorted(statuses - STATUSES))}")
        destinations = {part for value in self.params("notification_setting_id") for part in value.split(",")}
        since, until = moment(self.param("from")), moment(self.param("to"))
        with self._history_lock:
            items = [
                n
                for n in self._notifications.values()
                if self._retained(n["occurred_at"])
                and (not statuses or n["status"] in statuses)
                and (not destinations or n["notification_setting_id"] in destinations)
                and (since is None or moment(n["occurred_at"]) >= since)
                and (until is None or moment(n["occurred_at"]) <= until)
            ]
        return self._page(request.path, items, "id")

    def _page(self, path: str, items: list[dict[str, Any]], id_field: str) -> Response:
        order = self.param("order_by", "id[ASC]") or "id[ASC]"
        if order not in ("id[ASC]", "id[DESC]"):
            raise ApiError(400, f"invalid order_by: {order}")
        per_page = min(MAX_PER_PAGE, int(self.param("per_page", "50") or 50))
        items = sorted(items, key=lambda i: (moment(i.get("occurred_at")) or self.now(), str(i[id_field])))
        if order == "id[DESC]":
            items.reverse()
        ids = [str(i[id_field]) for i in items]
        after = self.param("after")
        start = ids.index(after) + 1 if after in ids else (len(ids) if after else 0)
        page = items[start : start + per_page]
        has_more = start + per_page < len(items)
        query = {k: v[-1] for k, v in self.params_all().items() if k != "after"}
        if page:
            query["after"] = str(page[-1][id_field])
        next_url = f"{self.url}{path}?{urlencode(query)}"
        return Response(
            200,
            {
                "data": copy.deepcopy(page),
                "meta": {
                    "request_id": str(uuid.uuid4()),
                    "pagination": {
                        "per_page": per_page,
                        "next": next_url,
                        "has_more": has_more,
                        "estimated_total": len(items),
                    },
                },
            },
        )

    def _authenticate(self, request: Request) -> None:
        key = self.bearer(request.headers)
        if key not in self.api_keys:
            raise ApiError(401, "the API key is missing, malformed or invalid")
        self.limited(key)

    def _retained(self, occurred_at: Any) -> bool:
        at = moment(occurred_at)
        return at is None or at >= self.now() - RETENTION


__all__ = ["DESTINATION", "PaddleApiSandbox"]
