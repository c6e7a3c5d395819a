"""HubSpot webhook events (v3-signed batches and workflow webhooks) and the committed samples."""

from __future__ import annotations

from typing import Any

from testkit.apigw import ROUTES, compact_body, http_api_event
from testkit.scenario import FIXED_TIMESTAMP, fixture
from testkit.secrets import LOCAL_HUBSPOT_SECRET, LOCAL_HUBSPOT_URL
from testkit.signers import hubspot_signature_v3

HUBSPOT_PORTAL_ID = 62515  # the portal of HubSpot's own examples
HUBSPOT_APP_ID = 54321
HUBSPOT_WON_DEAL_ID = 9001  # seeded in sandboxes.hubspot_api: won, 1500.50 USD, contact 201
HUBSPOT_OPEN_DEAL_ID = 9002
HUBSPOT_CONTACT_ID = 123  # the objectId of HubSpot's signature example (contact.creation.json)


def hubspot_deal_stage_change(
    deal_id: int = HUBSPOT_WON_DEAL_ID,
    stage: str = "closedwon",
    *,
    occurred_at_ms: int = FIXED_TIMESTAMP * 1000,
    attempt: int = 0,
    event_id: int = 100,
) -> dict[str, Any]:
    """A deal.propertyChange event of `dealstage`, as a webhook subscription sends it."""
    return {
        "eventId": event_id,
        "subscriptionId": 2001,
        "portalId": HUBSPOT_PORTAL_ID,
        "appId": HUBSPOT_APP_ID,
        "occurredAt": occurred_at_ms,
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": attempt,
        "objectId": deal_id,
        "propertyName": "dealstage",
        "propertyValue": stage,
        "changeSource": "CRM_UI",
        "sourceId": "userId:1001",
    }


def hubspot_contact_creation(
    contact_id: int = HUBSPOT_CONTACT_ID, *, occurred_at_ms: int = FIXED_TIMESTAMP * 1000, attempt: int = 0
) -> dict[str, Any]:
    """HubSpot's own contact.creation example (fixtures/hubspot) for a contact."""
    (event,) = fixture("contact.creation.json", "hubspot")
    event.update(objectId=contact_id, occurredAt=occurred_at_ms, attemptNumber=attempt)
    return event


def signed_hubspot_http_event(
    events: list[dict[str, Any]] | dict[str, Any],
    *,
    secret: str = LOCAL_HUBSPOT_SECRET,
    timestamp_ms: int | None = None,
    url: str = LOCAL_HUBSPOT_URL,
) -> dict[str, Any]:
    """A v3-signed HubSpot request: a batch (list) or a workflow webhook (one object)."""
    body = compact_body(events)
    headers = {**hubspot_signature_v3(body, url=url, secret=secret, timestamp_ms=timestamp_ms)}
    headers["User-Agent"] = "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon"
    return http_api_event(ROUTES["hubspot"], body, headers, time_epoch_ms=timestamp_ms)


def sample_hubspot_events() -> dict[str, dict[str, Any]]:
    ts = FIXED_TIMESTAMP * 1000
    return {
        "deal_won": signed_hubspot_http_event([hubspot_deal_stage_change()], timestamp_ms=ts),
        "batch_contact_and_deal_stages": signed_hubspot_http_event(
            [
                hubspot_contact_creation(),
                hubspot_deal_stage_change(HUBSPOT_OPEN_DEAL_ID, "qualifiedtobuy", event_id=101),
                hubspot_deal_stage_change(event_id=102, occurred_at_ms=ts + 60_000),
            ],
            timestamp_ms=ts,
        ),
        "contact_creation": signed_hubspot_http_event([hubspot_contact_creation()], timestamp_ms=ts),
    }
