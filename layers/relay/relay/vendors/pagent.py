"""pagent server-side conversions (vendor-docs/pagent-server-side-conversions.md).

`Authorization: Bearer <key>`. v1: POST /v1/conversions with 1-100 events whose session
identifiers are top-level fields. v2 (`api_version: v2`): POST /v2/conversions for one
event, /v2/conversions/bulk for up to 100, identifiers in `session_data`. `revenue` is
integer cents (relay.money.to_cents), `time` epoch milliseconds, `label` the vendor event
name. 400/401 are permanent (a 400 on a multi-event request is split to isolate the bad
event); 429 and 5xx are retried. pagent does not dedupe, so an unanswered request is in doubt.
"""

from __future__ import annotations

from collections.abc import Sequence

from relay import money
from relay.config import Destination
from relay.destinations import event_name, pagent_goal
from relay.exceptions import MissingRequirementError, UnansweredDeliveryError
from relay.models import Conversion
from relay.vendors import Accepted, Outcome, VendorClient, VendorEvent, properties_of

MAX_BATCH = 100


def build_event(destination: Destination, conversion: Conversion) -> VendorEvent:
    session = conversion.attribution.pagent
    goal = pagent_goal(destination, conversion)
    if not (session.session_id and session.user_id):
        raise MissingRequirementError("missing_pagent_session")
    if not goal:
        raise MissingRequirementError("missing_pagent_goal")
    details: VendorEvent = {
        "label": event_name(destination, conversion.name) or conversion.name,
        "time": int(conversion.occurred_at.timestamp() * 1000),
    }
    if conversion.value is not None:
        details["revenue"] = money.to_cents(conversion.value.amount_minor, conversion.value.currency)
    properties = properties_of(conversion)
    if properties:
        details["properties"] = properties
    if destination.api_version == "v1":
        return {
            "session_id": session.session_id,
            "user_id": session.user_id,
            "conversion_id": goal,
            **details,
        }
    session_data = {"session_id": session.session_id, "user_id": session.user_id, "conversion_id": goal}
    if session.visit_id:
        session_data["visit_id"] = session.visit_id
    return {"session_data": session_data, **details}


class PagentClient(VendorClient):
    max_batch = MAX_BATCH
    split_statuses = frozenset({400})

    def prepare(self, conversion: Conversion) -> list[VendorEvent]:
        return [build_event(self.destination, conversion)]

    def post(self, batch: Sequence[list[VendorEvent]]) -> list[Outcome]:
        headers = {"Authorization": f"Bearer {self.api_key()}"}
        events = [job[0] for job in batch]
        if self.destination.api_version == "v1":
            answer = self._post("/v1/conversions", {"events": events}, headers)
        elif len(events) == 1:
            answer = self._post("/v2/conversions", events[0], headers)
        else:
            answer = self._post("/v2/conversions/bulk", {"events": events}, headers)
        body = answer.json()
        accepted = body.get("accepted") if isinstance(body, dict) else None
        if accepted != len(events):
            # The answer has no per-event breakdown: which events were counted is unknown.
            unknown = UnansweredDeliveryError(
                f"pagent accepted {accepted!r} of {len(events)} events", status=answer.status_code
            )
            return [unknown] * len(events)
        return [Accepted(answer.status_code)] * len(events)


CLIENT = PagentClient
