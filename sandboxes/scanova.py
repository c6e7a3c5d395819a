"""Scanova server events sandbox (scanova-server-events.txt, scanova-testing-and-errors.txt).

Routes: `POST /server-events` (one event) and `POST /server-events/batch`
(`{"events": [1..100]}`), authenticated by `X-API-Key`, each key belonging to one site.

Documented behaviour enforced: 401 without a key, 403 for an unknown key or a `site_id`
that is not the key's site, 422 FastAPI-style `{"detail": [{"loc", "msg", "type"}]}`
validation errors, `event_id` deduplication (200 `"status": "duplicate"`, not counted
again) and 1,000 events per minute per key (429 with `Retry-After`).

Decisions where the documents are silent:
- Order of checks: key (401/403), JSON (422), envelope (422), rate limit (429), site
  ownership (403), then each event's schema (422).
- A foreign `site_id` anywhere in a batch rejects the whole batch with 403: an
  authorization failure is about the caller, not about one event.
- Inside a valid batch, an invalid event is rejected on its own (`"status": "rejected"`
  with its `detail`); duplicates count in the batch's `accepted` total (they were
  received fine) but are marked `"duplicate"` and not recorded again.
- The rate limit counts every event of a request (valid or not) and refuses a request
  that would exceed the budget as a whole.
- Deduplication key: (site_id, event_id), with event_id in canonical lower-case UUID
  form, which is also what the response echoes; `event_time` defaults to receipt time.
- Non-string 401/403/429 errors use FastAPI's `{"detail": "<message>"}`.
- "10 KB" for `properties` is 10,240 bytes of compact UTF-8 JSON; a raw email anywhere
  in it, or a '+'-prefixed phone number, is a 422 (bare digit runs are allowed: they
  are usually order numbers). `user_identifiers` accepts only its three documented keys.
- `conversion_value.amount` must be >= 0 and `currency` an upper-case ISO 4217 code.
- The body must be sent as `Content-Type: application/json` (documented as required).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .api import ApiError, Request, Response, Route
from .base import Sandbox, utc_now_iso
from .validation import (
    ARRAY,
    NUMBER,
    OBJECT,
    STRING,
    Schema,
    at_least,
    currency_code,
    iso8601,
    json_size_at_most,
    length,
    no_raw_pii,
    non_empty,
    one_of,
    optional,
    required,
    sha256_hex,
    uuid_string,
)

DEFAULT_API_KEYS = {"sk_local_scanova": "site_local"}
MAX_BATCH_EVENTS = 100
MAX_PROPERTIES_BYTES = 10 * 1024

EVENT = Schema(
    required("site_id", STRING, non_empty),
    required("event_name", STRING, non_empty),
    required("scan_session_id", STRING, uuid_string),
    optional("event_id", STRING, uuid_string),
    optional("event_time", STRING, iso8601),
    optional(
        "conversion_value",
        OBJECT,
        fields=Schema(required("amount", NUMBER, at_least(0)), required("currency", STRING, currency_code)),
    ),
    optional(
        "user_identifiers",
        OBJECT,
        fields=Schema(
            optional("email_hash", STRING, sha256_hex),
            optional("phone_hash", STRING, sha256_hex),
            optional("external_id", STRING, no_raw_pii),
            closed=True,
        ),
    ),
    optional("properties", OBJECT, json_size_at_most(MAX_PROPERTIES_BYTES), no_raw_pii),
    optional("consent", STRING, one_of("granted", "denied", "pending")),
)

BATCH = Schema(required("events", ARRAY, length(1, MAX_BATCH_EVENTS)))


class ScanovaSandbox(Sandbox):
    """`api_keys` maps each accepted `X-API-Key` to the site it belongs to."""

    name = "scanova"
    invalid_json_status = 422

    def __init__(
        self,
        api_keys: Mapping[str, str] | None = None,
        events_per_minute: int | None = 1000,
        **options: Any,
    ) -> None:
        self.api_keys = dict(DEFAULT_API_KEYS if api_keys is None else api_keys)
        super().__init__(rate_limit=events_per_minute, **options)

    @classmethod
    def default_credential(cls, destination: Any) -> str:
        """The default key of the destination's `site_id` (a key belongs to one site)."""
        return next(key for key, site in DEFAULT_API_KEYS.items() if site == destination.site_id)

    def routes(self) -> Sequence[Route]:
        return (
            Route("POST", "/server-events", self._post_event),
            Route("POST", "/server-events/batch", self._post_batch),
        )

    def error_body(self, error: ApiError) -> Any:
        if not error.problems:
            return {"detail": error.message}
        return {
            "detail": [
                {"loc": ["body", *problem.loc], "msg": problem.msg, "type": problem.type}
                for problem in error.problems
            ]
        }

    # ---- routes

    def _post_event(self, request: Request) -> Response:
        api_key, site_id = self._authenticate(request)
        event = request.json()
        self.throttle(api_key, cost=1)
        self._authorize_sites(site_id, [event])
        problems = EVENT.validate(event)
        if problems:
            raise ApiError.invalid(422, problems)
        return Response(200, self._accept(event, request))

    def _post_batch(self, request: Request) -> Response:
        api_key, site_id = self._authenticate(request)
        body = request.json()
        problems = BATCH.validate(body)
        if problems:
            raise ApiError.invalid(422, problems)
        events = body["events"]
        self.throttle(api_key, cost=len(events))
        self._authorize_sites(site_id, events)
        results = [self._batch_result(index, event, request) for index, event in enumerate(events)]
        rejected = sum(result["status"] == "rejected" for result in results)
        return Response(200, {"accepted": len(results) - rejected, "rejected": rejected, "results": results})

    # ---- steps

    def _authenticate(self, request: Request) -> tuple[str, str]:
        api_key = request.headers.get("X-API-Key")
        if not api_key:
            raise ApiError(401, "Missing API key: send it in the X-API-Key header")
        site_id = self.api_keys.get(api_key)
        if site_id is None:
            raise ApiError(403, "Invalid or revoked API key")
        return api_key, site_id

    @staticmethod
    def _authorize_sites(site_id: str, events: list[Any]) -> None:
        for event in events:
            claimed = event.get("site_id") if isinstance(event, dict) else None
            if isinstance(claimed, str) and claimed != site_id:
                raise ApiError(403, f"API key is not authorized for site_id {claimed!r}")

    def _batch_result(self, index: int, event: Any, request: Request) -> dict[str, Any]:
        problems = EVENT.validate(event, ("events", index))
        if not problems:
            return {"index": index, **self._accept(event, request)}
        return {
            "index": index,
            "event_id": event.get("event_id") if isinstance(event, dict) else None,
            "status": "rejected",
            "detail": self.error_body(ApiError.invalid(422, problems))["detail"],
        }

    def _accept(self, event: dict[str, Any], request: Request) -> dict[str, str]:
        event_id = str(uuid.UUID(event["event_id"])) if event.get("event_id") else str(uuid.uuid4())
        stored = {**event, "event_id": event_id, "event_time": event.get("event_time") or utc_now_iso()}
        is_new = self.record(stored, request, dedupe_key=(event["site_id"], event_id))
        return {"event_id": event_id, "status": "accepted" if is_new else "duplicate"}


__all__ = ["DEFAULT_API_KEYS", "MAX_BATCH_EVENTS", "ScanovaSandbox"]
