"""HubSpot CRM reads: one deal (with its contact associations) and one contact.

A private-app token (Bearer) from Secrets Manager, read through the Powertools cache on each
call so a rotated token is picked up. One requests Session per cold start; explicit timeouts;
429 and 5xx are retried once or twice with a short backoff and connection failures likewise,
but a read timeout is not (the time budget of the function is ten seconds, and HubSpot
retries the whole webhook anyway). A 404 means the object is gone (deleted or merged): the
event maps to nothing. Any other failure raises EnrichmentError, so the webhook answers 5xx
and HubSpot retries it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import requests
from relay.errors import EnrichmentError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

CONNECT_TIMEOUT_SECONDS = 2.0
OBJECT_ID_MAX_DIGITS = 19  # a 64-bit integer
RETRY = Retry(
    total=2,
    connect=2,
    read=0,
    status=2,
    other=0,
    backoff_factor=0.2,
    status_forcelist=(429, 500, 502, 503, 504),
    allowed_methods=frozenset({"GET"}),
    # A Retry-After of HubSpot's ten-second window would outlast the function; HubSpot
    # redelivers the webhook later instead.
    respect_retry_after_header=False,
    raise_on_status=False,
)


def new_session() -> requests.Session:
    session = requests.Session()
    session.mount("https://", HTTPAdapter(max_retries=RETRY))
    session.mount("http://", HTTPAdapter(max_retries=RETRY))
    session.headers["Accept"] = "application/json"
    return session


class HubSpotCrm:
    """`token()` returns the current private-app token (it is called for every request)."""

    def __init__(
        self,
        *,
        api_base: str,
        token: Callable[[], str],
        timeout_seconds: float,
        session: requests.Session | None = None,
    ):
        self._base = api_base.rstrip("/")
        self._token = token
        self._timeout = (CONNECT_TIMEOUT_SECONDS, timeout_seconds)
        self._session = session or new_session()

    def deal(self, deal_id: str, properties: Iterable[str]) -> dict[str, Any] | None:
        """The deal with the given properties and its contact ids, or None if it does not exist."""
        return self._get(
            "deals",
            deal_id,
            {"properties": ",".join(properties), "associations": "contacts", "archived": "false"},
        )

    def contact(self, contact_id: str, properties: Iterable[str]) -> dict[str, Any] | None:
        return self._get("contacts", contact_id, {"properties": ",".join(properties), "archived": "false"})

    def _get(self, what: str, object_id: str, params: dict[str, str]) -> dict[str, Any] | None:
        """GET /crm/v3/objects/<what>/<id>; `what` (never the id) names the read in a reason."""
        if not is_object_id(object_id):
            # Ids come from a signed payload or the CRM itself; whatever they hold, the token
            # only ever goes to this object's path.
            raise EnrichmentError(f"HubSpot CRM {what} read refused: the id is not a HubSpot object id")
        path = f"/crm/v3/objects/{what}/{quote(object_id, safe='')}"
        try:
            response = self._session.get(
                f"{self._base}{path}",
                params=params,
                headers={"Authorization": f"Bearer {self._token()}"},
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise EnrichmentError(f"HubSpot CRM {what} read failed: {type(exc).__name__}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            # HubSpot's error body names the category (e.g. INVALID_AUTHENTICATION), never PII.
            raise EnrichmentError(
                f"HubSpot CRM {what} read answered {response.status_code} {_category(response)}".rstrip()
            )
        try:
            document = json.loads(response.content, parse_float=Decimal)
        except ValueError as exc:
            raise EnrichmentError(f"HubSpot CRM {what} read answered non-JSON") from exc
        if not isinstance(document, dict):
            raise EnrichmentError(f"HubSpot CRM {what} read answered an unexpected shape")
        return document


def _category(response: requests.Response) -> str:
    try:
        category = response.json().get("category")
    except (ValueError, AttributeError):
        return ""
    return str(category)[:64] if category else ""


def is_object_id(object_id: str) -> bool:
    """HubSpot CRM object ids are integers."""
    return object_id.isascii() and object_id.isdigit() and len(object_id) <= OBJECT_ID_MAX_DIGITS


def first_contact_id(deal: dict[str, Any]) -> str | None:
    """The first contact associated with a deal (HubSpot lists the primary one first)."""
    results = ((deal.get("associations") or {}).get("contacts") or {}).get("results") or []
    for association in results:
        if isinstance(association, dict) and is_object_id(str(association.get("id"))):
            return str(association["id"])
    return None
