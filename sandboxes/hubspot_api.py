"""HubSpot CRM API sandbox: the reads the HubSpot source and `relay backfill` make, on seeded records.

Routes, authenticated with `Authorization: Bearer <private-app token>`:
- `GET /crm/v3/objects/deals/{id}?properties=a,b&associations=contacts`
- `GET /crm/v3/objects/contacts/{id}?properties=a,b`
- `POST /crm/v3/objects/deals/search` `{"filterGroups": [{"filters": [{"propertyName",
  "operator": EQ|NEQ|IN|NOT_IN|GT|GTE|LT|LTE|BETWEEN|HAS_PROPERTY|NOT_HAS_PROPERTY, "value",
  "values", "highValue"}]}], "properties", "sorts", "limit" (≤ 200), "after"}`: groups are
  OR-ed, filters AND-ed; dates compare as epoch milliseconds; `paging.next.after` is the next
  page; 5 searches a second per token (HubSpot's search limit), then 429;
- `GET /account-info/v3/details`: the portal (62515, the portal of HubSpot's examples).

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
A `dealstage` change the relay's HubSpot route was sent (the local stack reports each one)
moves the deal: `dealstage`, `hs_date_entered_<stage>`, `closedate` for a closed stage.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from testkit.hubspot import HUBSPOT_PORTAL_ID
from testkit.scenario import ATTRIBUTION_METADATA, CUSTOMER_DETAILS
from testkit.secrets import LOCAL_HUBSPOT_TOKEN

from .api import ApiError, Request, Response, Route
from .base import CONTROL_PREFIX
from .provider_api import ProviderApiSandbox, iso, json_body, moment
from .ratelimit import RateLimiter

DEFAULT_TOKENS = frozenset({LOCAL_HUBSPOT_TOKEN})
RATE_LIMIT = 100
RATE_WINDOW_SECONDS = 10.0
SEARCH_LIMIT = (5, 1.0)  # searches per second per token
MAX_SEARCH_LIMIT = 200
_OPERATORS = frozenset(
    {"EQ", "NEQ", "IN", "NOT_IN", "GT", "GTE", "LT", "LTE", "BETWEEN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}
)
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


class HubSpotApiSandbox(ProviderApiSandbox):
    """`tokens` is the set of accepted private-app tokens."""

    name = "hubspot_api"
    provider = "hubspot"
    default_limit = SEARCH_LIMIT
    invalid_json_status = 400
    _OBJECT_ROUTE: ClassVar[str] = r"/crm/v3/objects/(?P<kind>deals|contacts)/(?P<object_id>[^/]+)"

    def __init__(self, tokens: Iterable[str] | None = None, **options: Any) -> None:
        self.tokens = frozenset(DEFAULT_TOKENS if tokens is None else tokens)
        self._records_lock = threading.Lock()
        self._deals: dict[str, dict[str, Any]] = {}
        self._contacts: dict[str, dict[str, Any]] = {}
        super().__init__(**options)
        self._limiter = RateLimiter(RATE_LIMIT, window=RATE_WINDOW_SECONDS)

    # ---- seeding

    def forget_history(self) -> None:
        with self._records_lock:
            self._deals, self._contacts = {}, {}

    def seed_history(self) -> None:
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

    def observe_webhook(self, headers: Mapping[str, str], body: bytes, status: int) -> None:
        events = json_body(body)
        for event in events if isinstance(events, list) else []:
            if not isinstance(event, dict) or event.get("propertyName") != "dealstage":
                continue
            stage, at = event.get("propertyValue"), moment(event.get("occurredAt"))
            with self._records_lock:
                deal = self._deals.get(str(event.get("objectId")))
                if deal is None or not stage or at is None:
                    continue
                changed = {
                    "dealstage": str(stage),
                    f"hs_date_entered_{stage}": iso(at),
                    "hs_lastmodifieddate": iso(at),
                }
                if str(stage).startswith("closed"):
                    changed["closedate"] = iso(at)
                deal["properties"].update(changed)

    # ---- routes

    def routes(self) -> Sequence[Route]:
        return (
            Route("POST", r"/crm/v3/objects/deals/search", self._search_deals),
            Route("GET", self._OBJECT_ROUTE, self._get_object),
            Route("GET", r"/account-info/v3/details", self._account),
        )

    def _param(self, name: str) -> list[str]:
        return [part for value in self.params(name) for part in value.split(",") if part]

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

    def _search_deals(self, request: Request) -> Response:
        token = self._authenticate(request)
        self.limited(token, {})  # HubSpot's 429 names no wait
        search = request.json()
        if not isinstance(search, dict):
            raise CrmError(400, "the search body must be a JSON object", "VALIDATION_ERROR")
        limit = int(search.get("limit") or 10)
        if not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise CrmError(400, f"limit must be between 1 and {MAX_SEARCH_LIMIT}", "VALIDATION_ERROR")
        groups = search.get("filterGroups") or []
        with self._records_lock:
            deals = copy.deepcopy(self._deals)
        found = [
            (i, d)
            for i, d in deals.items()
            if not groups or any(_matches(g, d["properties"]) for g in groups)
        ]
        for sort in reversed(search.get("sorts") or [{"propertyName": "hs_object_id"}]):
            name = sort.get("propertyName", "hs_object_id")
            found.sort(
                key=lambda item, n=name: _sortable(
                    item[0] if n == "hs_object_id" else item[1]["properties"].get(n)
                ),
                reverse=sort.get("direction") == "DESCENDING",
            )
        start = int(search.get("after") or 0)
        page = found[start : start + limit]
        wanted = [
            *(search.get("properties") or ["dealname", "amount", "closedate", "dealstage", "pipeline"]),
            *_ALWAYS["deals"],
        ]
        results = [_record(deal_id, {n: deal["properties"].get(n) for n in wanted}) for deal_id, deal in page]
        body: dict[str, Any] = {"total": len(found), "results": results}
        if start + limit < len(found):
            body["paging"] = {"next": {"after": str(start + limit), "link": "?after=" + str(start + limit)}}
        return Response(200, body)

    def _account(self, request: Request) -> Response:
        self._authenticate(request)
        return Response(
            200,
            {
                "portalId": HUBSPOT_PORTAL_ID,
                "accountType": "STANDARD",
                "timeZone": "US/Eastern",
                "companyCurrency": "USD",
            },
        )

    def _authenticate(self, request: Request) -> str:
        token = self.bearer(request.headers)
        if token is None or token not in self.tokens:
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


def _record(object_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": object_id,
        "properties": {**properties, "hs_object_id": object_id},
        "createdAt": _CREATED,
        "updatedAt": _CREATED,
        "archived": False,
    }


def _sortable(value: Any) -> tuple[float, str]:
    at = moment(value) if value is not None else None
    return (at.timestamp() if at else 0.0, "" if value is None else str(value))


def _as_number(value: Any) -> float | None:
    at: datetime | None = moment(value)
    if at is not None:
        return at.timestamp() * 1000  # dates compare as epoch milliseconds
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _matches(group: dict[str, Any], properties: dict[str, Any]) -> bool:
    for spec in group.get("filters") or []:
        operator, name = spec.get("operator"), spec.get("propertyName")
        if operator not in _OPERATORS:
            raise CrmError(400, f"unknown operator {operator}", "VALIDATION_ERROR")
        value = properties.get(name)
        if not _holds(operator, value, spec):
            return False
    return True


def _holds(operator: str, value: Any, spec: dict[str, Any]) -> bool:
    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return (value not in (None, "")) == (operator == "HAS_PROPERTY")
    if operator in ("IN", "NOT_IN"):
        return (str(value) in {str(v) for v in spec.get("values") or []}) == (operator == "IN")
    if operator in ("EQ", "NEQ"):
        return (str(value) == str(spec.get("value"))) == (operator == "EQ")
    number, low = _as_number(value), _as_number(spec.get("value"))
    if number is None or low is None:
        return False
    if operator == "BETWEEN":
        high = _as_number(spec.get("highValue"))
        return high is not None and low <= number <= high
    return {"GT": number > low, "GTE": number >= low, "LT": number < low, "LTE": number <= low}[operator]


__all__ = ["DEFAULT_TOKENS", "SEED_CONTACTS", "SEED_DEALS", "CrmError", "HubSpotApiSandbox"]
