"""HubSpot CRM API sandbox: the two reads the HubSpot source makes, on seeded records.

Routes, authenticated with `Authorization: Bearer <private-app token>`:
- `GET /crm/v3/objects/deals/{id}?properties=a,b&associations=contacts`
- `GET /crm/v3/objects/contacts/{id}?properties=a,b`

Behaviour as HubSpot documents it: a record is `{"id", "properties", "createdAt",
"updatedAt", "archived"}`; only the requested properties are returned (plus hs_object_id,
createdate and the last-modified date), unset ones as null; `associations` appears only when
asked for, as `{"contacts": {"results": [{"id", "type": "deal_to_contact"}]}}`. Errors are
`{"status": "error", "message", "correlationId", "category"}`: 401 INVALID_AUTHENTICATION,
404 OBJECT_NOT_FOUND, 429 RATE_LIMITS (100 requests per 10 s per token, HubSpot's burst
limit for private apps).

Seeded records (see SEED_DEALS / SEED_CONTACTS): deal 9001 is won in the default pipeline
(1500.50 USD, every attribution property set) with contact 201; deal 9002 is in an open
stage; deal 9003 is won, in JPY, with no contact; contact 123 is the objectId of HubSpot's
own signature example. Add more with `seed_deal` / `seed_contact`, or over HTTP with
`POST /_sandbox/deals` and `POST /_sandbox/contacts` (`{"id", "properties", "contacts"}`).
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from testkit.scenario import ATTRIBUTION_METADATA, CUSTOMER_DETAILS

from .api import ApiError, Request, Response, Route
from .base import CONTROL_PREFIX, Sandbox
from .ratelimit import RateLimiter

DEFAULT_TOKENS = frozenset({"pat-local-hubspot"})
RATE_LIMIT = 100
RATE_WINDOW_SECONDS = 10.0
_CREATED = "2026-01-01T00:00:00.000Z"
_ALWAYS = {
    "deals": ("hs_object_id", "createdate", "hs_lastmodifieddate"),
    "contacts": ("hs_object_id", "createdate", "lastmodifieddate"),
}

SEED_CONTACTS: dict[str, dict[str, Any]] = {
    "201": {
        "email": CUSTOMER_DETAILS["email"],
        "phone": CUSTOMER_DETAILS["phone"],
        "firstname": "Jenny",
        "lastname": "Rosen",
        "city": CUSTOMER_DETAILS["address"]["city"],
        "state": CUSTOMER_DETAILS["address"]["state"],
        "zip": CUSTOMER_DETAILS["address"]["postal_code"],
        "country": CUSTOMER_DETAILS["address"]["country"],
        **ATTRIBUTION_METADATA,
    },
    "123": {
        "email": "new.lead@example.com",
        "mobilephone": "+44 20 7946 0958",
        "firstname": "Alex",
        "lastname": "Lead",
        "country": "GB",
        "scan_session_id": ATTRIBUTION_METADATA["scan_session_id"],
    },
}
SEED_DEALS: dict[str, dict[str, Any]] = {
    "9001": {
        "properties": {
            "dealname": "Annual plan",
            "amount": "1500.50",
            "deal_currency_code": "USD",
            "pipeline": "default",
            "dealstage": "closedwon",
            "closedate": "2026-01-01T00:00:00Z",
            **ATTRIBUTION_METADATA,
        },
        "contacts": ["201"],
    },
    "9002": {
        "properties": {
            "amount": "250",
            "deal_currency_code": "USD",
            "pipeline": "default",
            "dealstage": "qualifiedtobuy",
        },
        "contacts": ["201"],
    },
    "9003": {
        "properties": {
            "amount": "15000",
            "deal_currency_code": "JPY",
            "pipeline": "default",
            "dealstage": "closedwon",
        },
        "contacts": [],
    },
}


class CrmError(ApiError):
    """An error answer with HubSpot's `category`."""

    def __init__(self, status: int, message: str, category: str) -> None:
        super().__init__(status, message)
        self.category = category


class HubSpotApiSandbox(Sandbox):
    """`tokens` is the set of accepted private-app tokens."""

    name = "hubspot_api"
    invalid_json_status = 400
    _OBJECT_ROUTE: ClassVar[str] = r"/crm/v3/objects/(?P<kind>deals|contacts)/(?P<object_id>[^/]+)"

    def __init__(self, tokens: Iterable[str] | None = None, **options: Any) -> None:
        self.tokens = frozenset(DEFAULT_TOKENS if tokens is None else tokens)
        self._records_lock = threading.Lock()
        self._query = threading.local()  # the query of the request this worker thread serves
        super().__init__(**options)
        self._limiter = RateLimiter(RATE_LIMIT, window=RATE_WINDOW_SECONDS)
        self._seed()

    # ---- seeding

    def _seed(self) -> None:
        with self._records_lock:
            self._deals: dict[str, dict[str, Any]] = {}
            self._contacts: dict[str, dict[str, Any]] = {}
        for contact_id, properties in SEED_CONTACTS.items():
            self.seed_contact(contact_id, properties)
        for deal_id, deal in SEED_DEALS.items():
            self.seed_deal(deal_id, deal["properties"], deal["contacts"])

    def seed_deal(self, deal_id: str, properties: dict[str, Any], contacts: Sequence[str] = ()) -> None:
        with self._records_lock:
            self._deals[str(deal_id)] = {
                "properties": {k: None if v is None else str(v) for k, v in properties.items()},
                "contacts": [str(c) for c in contacts],
            }

    def seed_contact(self, contact_id: str, properties: dict[str, Any]) -> None:
        with self._records_lock:
            self._contacts[str(contact_id)] = {
                "properties": {k: None if v is None else str(v) for k, v in properties.items()}
            }

    def reset(self) -> None:
        """Forget requests and faults, and restore the seeded records."""
        super().reset()
        self._seed()

    # ---- routes

    def routes(self) -> Sequence[Route]:
        return (Route("GET", self._OBJECT_ROUTE, self._get_object),)

    def serve_http(self, http: Any) -> None:
        # The base class routes on the path alone; the CRM answer depends on the query.
        self._query.params = parse_qs(urlsplit(http.path).query)
        try:
            super().serve_http(http)
        finally:
            self._query.params = {}

    def _param(self, name: str) -> list[str]:
        values = (getattr(self._query, "params", None) or {}).get(name, [])
        return [part for value in values for part in value.split(",") if part]

    def _get_object(self, request: Request) -> Response:
        token = self._authenticate(request)
        self.throttle(token)
        kind, object_id = request.params["kind"], request.params["object_id"]
        with self._records_lock:
            record = copy.deepcopy((self._deals if kind == "deals" else self._contacts).get(object_id))
        if record is None:
            raise CrmError(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND")
        stored = record["properties"]
        wanted = [*self._param("properties"), *_ALWAYS[kind]]
        properties = {name: stored.get(name) for name in wanted}
        modified = "hs_lastmodifieddate" if kind == "deals" else "lastmodifieddate"
        properties.update(hs_object_id=object_id, createdate=_CREATED, **{modified: _CREATED})
        body: dict[str, Any] = {
            "id": object_id,
            "properties": properties,
            "createdAt": _CREATED,
            "updatedAt": _CREATED,
            "archived": False,
        }
        if kind == "deals" and "contacts" in self._param("associations"):
            results = [{"id": contact, "type": "deal_to_contact"} for contact in record["contacts"]]
            if results:  # HubSpot leaves the key out when there is no association
                body["associations"] = {"contacts": {"results": results}}
        return Response(200, body)

    def _authenticate(self, request: Request) -> str:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.tokens:
            raise CrmError(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
                "INVALID_AUTHENTICATION",
            )
        return token

    def error_body(self, error: ApiError) -> Any:
        category = getattr(error, "category", None) or (
            "RATE_LIMITS" if error.status == 429 else "VALIDATION_ERROR"
        )
        return {
            "status": "error",
            "message": error.message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        }

    # ---- control: seed records over HTTP (for a sandbox in another process)

    def _control(self, method: str, path: str, body: bytes) -> Response:
        action = path.removeprefix(CONTROL_PREFIX).rstrip("/")
        if method != "POST" or action not in ("deals", "contacts"):
            return super()._control(method, path, body)
        try:
            record = json.loads(body or b"{}")
            object_id, properties = str(record["id"]), dict(record.get("properties") or {})
        except (ValueError, KeyError, TypeError) as exc:
            return Response(400, {"error": f"expected {{'id', 'properties'}}: {exc}"})
        if action == "deals":
            self.seed_deal(object_id, properties, record.get("contacts") or [])
        else:
            self.seed_contact(object_id, properties)
        return Response(200, {"seeded": action, "id": object_id})


__all__ = ["DEFAULT_TOKENS", "SEED_CONTACTS", "SEED_DEALS", "CrmError", "HubSpotApiSandbox"]
