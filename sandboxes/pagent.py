"""pagent server-side conversions sandbox (pagent-server-side-conversions.md).

Routes, all authenticated with `Authorization: Bearer <API key>`:
- `POST /v1/conversions`: `{"events": [1..100]}`, each event with top-level
  `session_id`, `user_id`, `conversion_id`.
- `POST /v2/conversions`: one event whose identifiers sit in `session_data`.
- `POST /v2/conversions/bulk`: `{"events": [1..100]}` of v2 events.

Documented behaviour enforced: 200 `{"accepted": n}`, 400 `{"error": "..."}` for an
invalid body (e.g. `revenue` 9.99 instead of integer cents), 401 `{"error": "..."}`
for a missing or unknown key, 429 when rate limited. pagent does not deduplicate: every
accepted copy is recorded, which is how tests detect double counting.

Decisions where the documents are silent:
- One invalid event rejects the whole request with 400 and nothing is recorded; the
  message names every offending field with its index, e.g. "events[1].revenue: must
  be an integer". (The response format has no per-event breakdown, so all-or-nothing
  is the only reading under which `{"accepted": n}` is unambiguous.)
- Order of checks: key (401), rate limit (429), JSON (400), schema (400).
- Rate limit: 600 requests per minute per key (configurable), with `Retry-After`.
- Identifiers must be non-empty strings; `conversion_id` is not checked to be a UUID
  (the documents' own examples use "goal-uuid-here"). `null` optional fields are
  accepted, as the documents' Python example sends them. An integral float such as
  2499.0 is accepted as an integer (a JavaScript backend cannot tell it apart).
- `properties` may be an object or an array of objects; `time` (ms) defaults to the
  time of receipt in the stored event.
- The body must be sent as `Content-Type: application/json` (documented as required).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from .api import ApiError, Request, Response, Route
from .base import Sandbox
from .validation import (
    ARRAY,
    INTEGER,
    NUMBER,
    OBJECT,
    STRING,
    Schema,
    at_least,
    length,
    non_empty,
    optional,
    required,
)

DEFAULT_API_KEYS = frozenset({"pk_local_pagent"})
MAX_EVENTS = 100

_IDENTIFIERS = ("session_id", "user_id", "conversion_id")
_DETAILS = (
    optional("label", STRING),
    optional("revenue", INTEGER),
    optional("properties", (OBJECT, ARRAY), items=Schema()),
    optional("time", NUMBER, at_least(0)),
)

V1_EVENT = Schema(*(required(name, STRING, non_empty) for name in _IDENTIFIERS), *_DETAILS)
SESSION_DATA = Schema(
    *(required(name, STRING, non_empty) for name in _IDENTIFIERS),
    optional("visit_id", STRING),
)
V2_EVENT = Schema(required("session_data", OBJECT, fields=SESSION_DATA), *_DETAILS)


def _bulk(event: Schema) -> Schema:
    return Schema(required("events", ARRAY, length(1, MAX_EVENTS), items=event))


class PagentSandbox(Sandbox):
    """`api_keys` is the set of accepted bearer keys."""

    name = "pagent"
    invalid_json_status = 400

    def __init__(
        self,
        api_keys: Iterable[str] | None = None,
        requests_per_minute: int | None = 600,
        **options: Any,
    ) -> None:
        self.api_keys = frozenset(DEFAULT_API_KEYS if api_keys is None else api_keys)
        super().__init__(rate_limit=requests_per_minute, **options)

    @classmethod
    def default_credential(cls, destination: Any) -> str:
        return min(DEFAULT_API_KEYS)

    def routes(self) -> Sequence[Route]:
        return (
            Route("POST", "/v1/conversions", partial(self._ingest, schema=_bulk(V1_EVENT), bulk=True)),
            Route("POST", "/v2/conversions", partial(self._ingest, schema=V2_EVENT, bulk=False)),
            Route("POST", "/v2/conversions/bulk", partial(self._ingest, schema=_bulk(V2_EVENT), bulk=True)),
        )

    def _ingest(self, request: Request, *, schema: Schema, bulk: bool) -> Response:
        api_key = self._authenticate(request)
        self.throttle(api_key)
        body = request.json()
        problems = schema.validate(body)
        if problems:
            raise ApiError.invalid(400, problems)
        events = body["events"] if bulk else [body]
        received_ms = int(time.time() * 1000)
        for event in events:
            sent_ms = event.get("time")
            self.record({**event, "time": received_ms if sent_ms is None else sent_ms}, request)
        return Response(200, {"accepted": len(events)})

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("Authorization")
        if not header:
            raise ApiError(401, "missing Authorization header")
        scheme, _, api_key = header.partition(" ")
        if scheme.lower() != "bearer" or not api_key:
            raise ApiError(401, "Authorization header must be 'Bearer <API_KEY>'")
        if api_key not in self.api_keys:
            raise ApiError(401, "invalid or expired API key")
        return api_key


__all__ = ["DEFAULT_API_KEYS", "MAX_EVENTS", "PagentSandbox"]
