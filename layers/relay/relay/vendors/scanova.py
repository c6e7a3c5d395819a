"""Scanova server events (vendor-docs/scanova-server-events.txt, scanova-testing-and-errors.txt).

POST /server-events (one event) or /server-events/batch (up to 100, per-event accepted /
rejected results), `X-API-Key`. The event id is the conversion id (a UUID), so Scanova
dedupes retries: a duplicate is a success, and so is any 2xx that does not say "rejected"
(see _single). 401/403/422 are permanent; a 422 for a whole
batch is split to isolate the bad event(s); 429 waits for Retry-After.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field
from relay import money
from relay.errors import PermanentDeliveryError, UnansweredDeliveryError
from relay.models import Conversion
from relay.vendors.answers import clean_message, describe
from relay.vendors.client import Accepted, VendorClient, VendorEvent, VendorOutcome, properties_of
from relay.vendors.spec import Destination, VendorSpec
from relay.vendors.wire import json_bytes

MAX_BATCH = 100
# "properties … Max 10 KB": read strictly as 10,000 bytes, measured as sent (relay.vendors.http).
MAX_PROPERTIES_BYTES = 10_000


class ScanovaDestination(Destination):
    kind: Literal["scanova"] = Field(description="scanova")
    site_id: str | None = Field(default=None, description="scanova: tracking site id")

    required_fields: ClassVar[tuple[str, ...]] = ("site_id",)

    def dedupes(self) -> bool:
        return True  # the event id is the conversion id, and Scanova answers "duplicate"

    def missing(self, conversion: Conversion) -> str | None:
        return None if conversion.attribution.scan_session_id else "missing_scan_session_id"


def build_event(destination: ScanovaDestination, conversion: Conversion) -> VendorEvent:
    destination.require(conversion)
    event: VendorEvent = {
        "site_id": destination.site_id,
        "event_name": destination.event_name(conversion.name),
        "event_id": str(conversion.conversion_id),
        "scan_session_id": conversion.attribution.scan_session_id,
        "event_time": conversion.occurred_at.isoformat(),
    }
    if conversion.value is not None:
        event["conversion_value"] = {
            "amount": money.to_major_float(conversion.value.amount_minor, conversion.value.currency),
            "currency": conversion.value.currency,
        }
    identity = conversion.identity
    identifiers = {
        "email_hash": identity.email,
        "phone_hash": identity.phone,
        "external_id": identity.external_id,
    }
    if any(identifiers.values()):
        event["user_identifiers"] = {key: value for key, value in identifiers.items() if value}
    properties = within_size(properties_of(conversion), MAX_PROPERTIES_BYTES)
    if properties:
        event["properties"] = properties
    if conversion.consent is not None:
        event["consent"] = conversion.consent.value
    return event


def within_size(properties: dict[str, Any], limit: int) -> dict[str, Any]:
    """Drop the largest properties until the object fits Scanova's 10 KB as it goes on the wire
    (relay.vendors.wire.json_bytes: spaces after separators, non-ASCII escaped)."""
    kept = dict(properties)
    while kept and _size(kept) > limit:
        del kept[max(kept, key=lambda key: _size({key: kept[key]}))]
    return kept


def _size(value: Any) -> int:
    return len(json_bytes(value))


class ScanovaClient(VendorClient):
    destination: ScanovaDestination
    max_batch = MAX_BATCH
    split_statuses = frozenset({422})

    def prepare(self, conversion: Conversion) -> list[VendorEvent]:
        return [build_event(self.destination, conversion)]

    def post(self, batch: Sequence[list[VendorEvent]]) -> list[VendorOutcome]:
        headers = {"X-API-Key": self.api_key()}
        events = [job[0] for job in batch]
        if len(events) == 1:
            answer = self._post("/server-events", events[0], headers)
            try:
                body = answer.json()
            except ValueError:  # an empty or unreadable 2xx: still a 2xx (see _single)
                body = None
            return [_single(answer.status_code, body)]
        answer = self._post("/server-events/batch", {"events": events}, headers)
        by_index = {r.get("index"): r for r in answer.json().get("results", []) if isinstance(r, dict)}
        return [_result(answer.status_code, by_index.get(index)) for index in range(len(events))]


def _single(status: int, body: Any) -> VendorOutcome:
    """A 2xx for one event is delivered unless its answer says "rejected". Only the accepted
    answer is documented; the duplicate one is "200 … marked as a duplicate", shape unshown, so
    `"status": "duplicate"` or `"duplicate": true` says so, and an unknown status or an empty or
    unreadable body is delivered too: the event id dedupes, so nothing is lost or counted twice,
    whereas retrying it would only end in the DLQ."""
    if not isinstance(body, dict):
        return Accepted(status)
    if body.get("status") == "rejected":
        return PermanentDeliveryError(
            # The status Scanova answers for this error on its own (a validation error).
            "rejected",
            status=422,
            vendor_message=clean_message(describe(body.get("detail"))),
        )
    return Accepted(status, duplicate=body.get("status") == "duplicate" or body.get("duplicate") is True)


def _result(status: int, result: dict[str, Any] | None) -> VendorOutcome:
    """One event's entry in the batch answer's documented per-event `results` (by `index`)."""
    if result is None:
        return UnansweredDeliveryError("no result for this event in the batch answer", status=status)
    return _single(status, result)


SPEC = VendorSpec(
    kind="scanova",
    title="Scanova",
    destination=ScanovaDestination,
    client=ScanovaClient,
    sandbox="sandboxes.scanova:ScanovaSandbox",
)
