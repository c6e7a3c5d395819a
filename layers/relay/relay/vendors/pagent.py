"""pagent server-side conversions (vendor-docs/pagent-server-side-conversions.md).

`Authorization: Bearer <key>`. v1: POST /v1/conversions with 1-100 events whose session
identifiers are top-level fields. v2 (`api_version: v2`): POST /v2/conversions for one
event, /v2/conversions/bulk for up to 100, identifiers in `session_data`. `revenue` is
integer cents (relay.money.to_cents), `time` epoch milliseconds, `label` the vendor event
name. 400/401 are permanent (a 400 on a multi-event request is split to isolate the bad
event); 429 and 5xx are retried. pagent does not dedupe, so an unanswered request is in doubt.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, field_validator
from relay import money
from relay.errors import UnansweredDeliveryError
from relay.models import Conversion
from relay.vendors.client import Accepted, VendorClient, VendorEvent, VendorOutcome, properties_of
from relay.vendors.spec import Destination, VendorSpec

MAX_BATCH = 100


class PagentDestination(Destination):
    kind: Literal["pagent"] = Field(description="pagent")
    api_version: Literal["v1", "v2"] = Field(default="v1", description="pagent: API version")
    goals: dict[str, str] = Field(
        default_factory=dict,
        description="pagent: conversion name → goal UUID; wins over the goal the browser session "
        "captured, which is used only for a name without one here",
    )

    @field_validator("goals")
    @classmethod
    def _goal_uuids(cls, goals: dict[str, str]) -> dict[str, str]:
        # pagent answers 400 for a goal that is not a UUID: every job would be rejected. A UUID is
        # sent in its canonical form (lowercase, hyphenated), whatever form the config wrote it in.
        canonical = {name: _canonical_uuid(goal) for name, goal in goals.items()}
        bad = [name for name, goal in canonical.items() if goal is None]
        if bad:
            raise ValueError(f"goal of {', '.join(sorted(bad))} is not a UUID (pagent goals are UUIDs)")
        return {name: goal for name, goal in canonical.items() if goal is not None}

    def goal(self, conversion: Conversion) -> str | None:
        """The pagent goal: the config's for this conversion name, else the browser session's own.
        pagent's conversion_id is "the goal matching the label", and the label is this
        conversion's name: a session captured for another goal (say on the purchase page, for a
        conversion that is a signup) must not send that goal under this label."""
        return self.goals.get(conversion.name) or conversion.attribution.pagent.conversion_id

    def missing(self, conversion: Conversion) -> str | None:
        session = conversion.attribution.pagent
        if not (session.session_id and session.user_id):
            return "missing_pagent_session"
        return None if self.goal(conversion) else "missing_pagent_goal"


def _canonical_uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def build_event(destination: PagentDestination, conversion: Conversion) -> VendorEvent:
    destination.require(conversion)
    session = conversion.attribution.pagent
    goal = destination.goal(conversion)
    details: VendorEvent = {
        "label": destination.event_name(conversion.name) or conversion.name,
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
    destination: PagentDestination
    max_batch = MAX_BATCH
    split_statuses = frozenset({400})

    def prepare(self, conversion: Conversion) -> list[VendorEvent]:
        return [build_event(self.destination, conversion)]

    def post(self, batch: Sequence[list[VendorEvent]]) -> list[VendorOutcome]:
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


SPEC = VendorSpec(
    kind="pagent",
    title="Pagent",
    destination=PagentDestination,
    client=PagentClient,
    sandbox="sandboxes.pagent:PagentSandbox",
)
