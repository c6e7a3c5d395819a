"""Paddle Billing notifications around the Paddle SDK's fixtures, and the committed samples."""

from __future__ import annotations

from typing import Any

from testkit.apigw import ROUTES, arrival_ms, compact_body, http_api_event
from testkit.scenario import ATTRIBUTION_METADATA, FIXED_TIMESTAMP, fixture
from testkit.secrets import LOCAL_PADDLE_SECRET
from testkit.signers import paddle_signature


def paddle_notification(
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str = "evt_01local0transaction0completed",
    notification_id: str = "ntf_01local0transaction0completed",
    occurred_at: str = "2026-01-01T00:00:00.000000Z",
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "notification_id": notification_id,
        "data": data,
    }


def paddle_transaction(
    *, transaction_id: str | None = None, origin: str = "web", custom_data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The Paddle SDK's transaction.completed fixture (65215 USD, three items) with attribution."""
    data = fixture("transaction.completed.data.json", "paddle")
    data["origin"] = origin
    data["custom_data"] = dict(ATTRIBUTION_METADATA if custom_data is None else custom_data)
    if transaction_id:
        data["id"] = transaction_id
    return data


def signed_paddle_http_event(
    notification: dict[str, Any], *, secret: str = LOCAL_PADDLE_SECRET, timestamp: int | None = None
) -> dict[str, Any]:
    body = compact_body(notification)
    headers = {"Paddle-Signature": paddle_signature(body, secret, timestamp), "User-Agent": "Paddle"}
    return http_api_event(ROUTES["paddle"], body, headers, time_epoch_ms=arrival_ms(timestamp))


def sample_paddle_events() -> dict[str, dict[str, Any]]:
    subscription = fixture("subscription.created.data.json", "paddle")
    subscription.update(status="trialing", custom_data=dict(ATTRIBUTION_METADATA))
    return {
        "transaction_completed": signed_paddle_http_event(
            paddle_notification("transaction.completed", paddle_transaction()), timestamp=FIXED_TIMESTAMP
        ),
        "transaction_completed_renewal": signed_paddle_http_event(
            paddle_notification(
                "transaction.completed",
                paddle_transaction(transaction_id="txn_01local0renewal", origin="subscription_recurring"),
                event_id="evt_01local0renewal",
                notification_id="ntf_01local0renewal",
            ),
            timestamp=FIXED_TIMESTAMP,
        ),
        "subscription_created_trial": signed_paddle_http_event(
            paddle_notification(
                "subscription.created",
                subscription,
                event_id="evt_01local0trial",
                notification_id="ntf_01local0trial",
            ),
            timestamp=FIXED_TIMESTAMP,
        ),
    }
