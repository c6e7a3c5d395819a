"""Scalev Storefront API analytics sandbox (scalev-storefront-analytics.txt).

Route: `POST /v3/stores/{store_id}/public/analytics/{meta|tiktok|snackvideo}/events`,
authenticated by the store's publishable key in `X-Scalev-Storefront-Api-Key`.

Documented behaviour enforced: the provider payloads (Meta `user_data` + `events[]`
with `event_id`/`event_name`/`parameters`; TikTok `user` + `events[]` with
`event_id`/`event`/`parameters`; SnackVideo `click_id` + `events[]` with
`event_name`/`properties`; optional `variants[]` and `bundle_price_options[]`),
204 No Content on success, and deduplication by event ID for Meta and TikTok.
SnackVideo has no event ID, so every accepted copy is recorded.

Decisions where the documents are silent:
- Status codes: unknown store 404, missing/wrong key 401, invalid JSON 400, invalid
  payload 422, rate limited 429 with `Retry-After`.
- Error body (undocumented): `{"errors": [{"field": "events[0].event_id" | null,
  "message": "..."}]}`; one entry per problem, `field` null for non-field errors.
- The whole payload is accepted or rejected (it is one request for one shopper action).
- Deduplication key: (store, provider, event_id): the same ID sent to Meta and TikTok is
  two events, a repeat to the same provider is a duplicate (still answered 204, as the
  asynchronous relay cannot tell the caller).
- Each stored record is one event merged with the request's shared fields (user data,
  URLs, items), plus `_provider` and `_store_id`.
- `user_data` (Meta) and `user` (TikTok) accept only their documented keys (plus TikTok
  `user_agent`, which the documents say may be sent); an unknown key is a 422 because a
  silently dropped identifier loses attribution. Values are strings: Scalev hashes them.
- `events[]` must be non-empty with no upper bound; item `quantity` is an integer >= 1;
  `event_source_url`/`referrer_url`, when sent, are absolute http(s) URLs.
- Rate limit: 600 requests per minute per store (configurable).
- The body must be sent as `Content-Type: application/json`, as the documents do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .api import ApiError, Request, Response, Route
from .base import Sandbox
from .validation import (
    ARRAY,
    INTEGER,
    OBJECT,
    STRING,
    Field,
    Schema,
    at_least,
    format_loc,
    http_url,
    length,
    non_empty,
    optional,
    required,
)

DEFAULT_STORES = {"store_local": "sfpk_local_scalev"}
API_KEY_HEADER = "X-Scalev-Storefront-Api-Key"

META_USER_KEYS = ("fn", "ln", "em", "ph", "ct", "st", "country", "external_id", "location_id", "fbc", "fbp")
TIKTOK_USER_KEYS = ("email", "phone", "external_id", "ttclid", "ttp", "user_agent")


def _identity(keys: Sequence[str]) -> Schema:
    return Schema(*(optional(key, STRING) for key in keys), closed=True)


def _events(*fields: Field) -> Field:
    return required("events", ARRAY, length(min_items=1), items=Schema(*fields))


def _items(name: str, id_field: str) -> Field:
    return optional(
        name,
        ARRAY,
        items=Schema(required(id_field, STRING, non_empty), required("quantity", INTEGER, at_least(1))),
    )


_SHARED = (
    optional("event_source_url", STRING, http_url),
    optional("referrer_url", STRING, http_url),
    _items("variants", "variant_unique_id"),
    _items("bundle_price_options", "bundle_price_option_unique_id"),
)


@dataclass(frozen=True)
class Provider:
    schema: Schema
    dedupes: bool  # Meta and TikTok deduplicate by events[].event_id


PROVIDERS = {
    "meta": Provider(
        Schema(
            optional("user_data", OBJECT, fields=_identity(META_USER_KEYS)),
            _events(
                required("event_id", STRING, non_empty),
                required("event_name", STRING, non_empty),
                optional("parameters", OBJECT),
            ),
            *_SHARED,
        ),
        dedupes=True,
    ),
    "tiktok": Provider(
        Schema(
            optional("user", OBJECT, fields=_identity(TIKTOK_USER_KEYS)),
            _events(
                required("event_id", STRING, non_empty),
                required("event", STRING, non_empty),
                optional("parameters", OBJECT),
            ),
            *_SHARED,
        ),
        dedupes=True,
    ),
    "snackvideo": Provider(
        Schema(
            required("click_id", STRING, non_empty),
            _events(required("event_name", STRING, non_empty), optional("properties", OBJECT)),
            *_SHARED,
        ),
        dedupes=False,
    ),
}


class ScalevSandbox(Sandbox):
    """`stores` maps each store ID to its publishable storefront API key."""

    name = "scalev"
    invalid_json_status = 400

    def __init__(
        self,
        stores: Mapping[str, str] | None = None,
        requests_per_minute: int | None = 600,
        **options: Any,
    ) -> None:
        self.stores = dict(DEFAULT_STORES if stores is None else stores)
        super().__init__(rate_limit=requests_per_minute, **options)

    @classmethod
    def default_credential(cls, destination: Any) -> str:
        """The default storefront key of the destination's `store_id`."""
        return DEFAULT_STORES[destination.store_id or ""]

    def routes(self) -> Sequence[Route]:
        providers = "|".join(PROVIDERS)
        pattern = rf"/v3/stores/(?P<store_id>[^/]+)/public/analytics/(?P<provider>{providers})/events"
        return (Route("POST", pattern, self._post_events),)

    def error_body(self, error: ApiError) -> Any:
        if not error.problems:
            return {"errors": [{"field": None, "message": error.message}]}
        return {"errors": [{"field": format_loc(p.loc) or None, "message": p.msg} for p in error.problems]}

    def _post_events(self, request: Request) -> Response:
        store_id, provider_name = request.params["store_id"], request.params["provider"]
        self._authenticate(store_id, request)
        self.throttle(store_id)
        body = request.json()
        provider = PROVIDERS[provider_name]
        problems = provider.schema.validate(body)
        if problems:
            raise ApiError.invalid(422, problems)
        shared = {key: value for key, value in body.items() if key != "events"}
        for event in body["events"]:
            dedupe_key = (store_id, provider_name, event["event_id"]) if provider.dedupes else None
            self.record({**shared, **event}, request, dedupe_key, _provider=provider_name, _store_id=store_id)
        return Response(204)

    def _authenticate(self, store_id: str, request: Request) -> None:
        expected = self.stores.get(store_id)
        if expected is None:
            raise ApiError(404, f"store {store_id!r} not found")
        sent = request.headers.get(API_KEY_HEADER)
        if not sent:
            raise ApiError(401, f"missing {API_KEY_HEADER} header")
        if sent != expected:
            raise ApiError(401, "invalid storefront API key for this store")


__all__ = ["API_KEY_HEADER", "DEFAULT_STORES", "PROVIDERS", "ScalevSandbox"]
