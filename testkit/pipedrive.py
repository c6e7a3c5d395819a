"""Pipedrive webhooks v2 notifications (and v1 bodies), Basic auth (no signature), the committed samples."""

from __future__ import annotations

import uuid
from typing import Any

from testkit.apigw import ROUTES, arrival_ms, compact_body, http_api_event
from testkit.scenario import ATTRIBUTION_METADATA, CUSTOMER_DETAILS, FIXED_TIMESTAMP
from testkit.secrets import LOCAL_PIPEDRIVE_BASIC_AUTH
from testkit.signers import basic_authorization

# Custom field keys of the local Pipedrive account (config/relay.local.yaml maps them).
PIPEDRIVE_DEAL_FIELDS = {
    "scan_session_id": "4a266b7b8623b98da82112410e7d2dc573913988",
    "fbc": "ea5daed99b4fae6c8fe3e41a10cc9295358d424d",
    "fbp": "bc634fd1b5a8f0ab18f7e984bb7bef5789461c86",
    "ttclid": "9bce98cadd3820cc2fff5f779ca794dc1633512d",
    "pagent": "c88e3c886e5e3328a395e9d10f3da6e33b109afa",
}
PIPEDRIVE_PERSON_FIELDS = {
    "scan_session_id": "4aa38060e1733843d1a0758c6c5df291a6101c64",
    "fbc": "a846e6fb21391de5eb3a9b1d47583c1090454c45",
}
PIPEDRIVE_DEAL_ID = 9101
PIPEDRIVE_PERSON_ID = 301
_PIPEDRIVE_TIME = "2026-01-01T00:00:00Z"


def pipedrive_notification(
    action: str,
    entity: str,
    data: dict[str, Any] | None,
    previous: dict[str, Any] | None = None,
    *,
    attempt: int = 1,
    timestamp: str = _PIPEDRIVE_TIME,
) -> dict[str, Any]:
    """A webhooks v2 notification: {meta, data, previous}."""
    entity_id = str((data or {}).get("id", ""))
    return {
        "meta": {
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pipedrive:{entity}:{entity_id}:{action}:{timestamp}")),
            "company_id": "12882925",
            "correlation_id": "8d2f6d2c-4b1e-4a57-9c1e-2b7d5e4f6a10",
            "is_bulk_edit": False,
            "timestamp": timestamp,
            "type": "general",
            "user_id": "18487521",
            "version": "2.0",
            "webhook_id": "99",
            "webhook_owner_id": "18487521",
            "change_source": "app",
            "permitted_user_ids": ["18487521"],
            "attempt": attempt,
            "host": "company.pipedrive.com",
        },
        "data": data,
        "previous": previous,
    }


def _pipedrive_fields(keys: dict[str, str]) -> dict[str, Any]:
    return {
        field_key: {"type": "varchar", "value": ATTRIBUTION_METADATA[attribution]}
        for attribution, field_key in keys.items()
    }


def pipedrive_deal(
    *, deal_id: int = PIPEDRIVE_DEAL_ID, status: str = "won", value: Any = 1499.99, currency: str = "EUR"
) -> dict[str, Any]:
    """Deal data as webhooks v2 sends it; `value` is a JSON number (1499.99 must stay exact)."""
    return {
        "id": deal_id,
        "title": "Annual plan",
        "value": value,
        "currency": currency,
        "status": status,
        "stage_id": 5,
        "pipeline_id": 1,
        "person_id": PIPEDRIVE_PERSON_ID,
        "org_id": 2,
        "owner_id": 18487521,
        "add_time": "2025-12-20T09:00:00Z",
        "update_time": _PIPEDRIVE_TIME,
        "won_time": _PIPEDRIVE_TIME if status == "won" else None,
        "custom_fields": _pipedrive_fields(PIPEDRIVE_DEAL_FIELDS),
    }


def pipedrive_person(*, person_id: int = PIPEDRIVE_PERSON_ID) -> dict[str, Any]:
    return {
        "id": person_id,
        "name": "Jenny Rosen",
        "first_name": "Jenny",
        "last_name": "Rosen",
        "emails": [{"label": "work", "value": CUSTOMER_DETAILS["email"], "primary": True}],
        "phones": [{"label": "mobile", "value": CUSTOMER_DETAILS["phone"], "primary": True}],
        "owner_id": 18487521,
        "org_id": 2,
        "add_time": _PIPEDRIVE_TIME,
        "update_time": _PIPEDRIVE_TIME,
        "custom_fields": _pipedrive_fields(PIPEDRIVE_PERSON_FIELDS),
    }


def pipedrive_deal_won(**deal: Any) -> dict[str, Any]:
    """A change.deal notification of a deal that was open and is now won."""
    return pipedrive_notification("change", "deal", pipedrive_deal(**deal), {"status": "open", "stage_id": 4})


def pipedrive_v1_notification(
    action: str, obj: str, current: dict[str, Any] | None, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A webhooks v1 body as Pipedrive documents it: meta with the object's id and epoch seconds,
    `current` with custom fields at its root (by their 40-hex keys), `previous` the old object."""
    object_id = (current or previous or {}).get("id")
    return {
        "v": 1,
        "matches_filters": {"current": []},
        "meta": {
            "v": 1,
            "action": action,
            "object": obj,
            "id": object_id,
            "company_id": 12882925,
            "user_id": 18487521,
            "host": "company.pipedrive.com",
            "timestamp": 1767225600,  # 2026-01-01T00:00:00Z
            "timestamp_micro": 1767225600000000,
            "permitted_user_ids": [18487521],
            "trans_pending": False,
            "is_bulk_update": False,
            "pipedrive_service_name": False,
            "change_source": "app",
            "matches_filters": {"current": []},
            "webhook_id": "98",
        },
        "current": current,
        "previous": previous,
        "retry": 0,
        "event": f"{action}.{obj}",
    }


def pipedrive_v1_deal(status: str = "won") -> dict[str, Any]:
    """Deal data as webhooks v1 sends it: API-style times, custom fields at the root (one unset)."""
    deal = {
        "id": PIPEDRIVE_DEAL_ID,
        "title": "Annual plan",
        "value": 1499.99,
        "currency": "EUR",
        "status": status,
        "stage_id": 5,
        "pipeline_id": 1,
        "person_id": PIPEDRIVE_PERSON_ID,
        "org_id": 2,
        "user_id": 18487521,
        "add_time": "2025-12-20 09:00:00",
        "update_time": "2026-01-01 00:00:00",
        "won_time": "2026-01-01 00:00:00" if status == "won" else None,
        "lost_reason": None,
    }
    fields = {key: ATTRIBUTION_METADATA[name] for name, key in PIPEDRIVE_DEAL_FIELDS.items()}
    return {**deal, **fields, "0123456789abcdef0123456789abcdef01234567": None}


def pipedrive_v1_person() -> dict[str, Any]:
    """Person data as webhooks v1 sends it: `email`/`phone` lists, related ids as objects."""
    return {
        "id": PIPEDRIVE_PERSON_ID,
        "name": "Jenny Rosen",
        "first_name": "Jenny",
        "last_name": "Rosen",
        "email": [{"label": "work", "value": CUSTOMER_DETAILS["email"], "primary": True}],
        "phone": [{"label": "mobile", "value": CUSTOMER_DETAILS["phone"], "primary": True}],
        "org_id": {"name": "Rosen & Co", "value": 2},
        "owner_id": {"id": 18487521, "name": "Owner", "value": 18487521},
        "add_time": "2026-01-01 00:00:00",
        "update_time": "2026-01-01 00:00:00",
        PIPEDRIVE_PERSON_FIELDS["scan_session_id"]: ATTRIBUTION_METADATA["scan_session_id"],
    }


def signed_pipedrive_http_event(
    notification: dict[str, Any],
    *,
    credentials: str = LOCAL_PIPEDRIVE_BASIC_AUTH,
    arrival: int | None = None,
) -> dict[str, Any]:
    body = compact_body(notification)
    headers = {"Authorization": basic_authorization(credentials), "User-Agent": "Pipedrive Webhooks"}
    return http_api_event(ROUTES["pipedrive"], body, headers, time_epoch_ms=arrival_ms(arrival))


def sample_pipedrive_events() -> dict[str, dict[str, Any]]:
    return {
        "deal_won": signed_pipedrive_http_event(pipedrive_deal_won(), arrival=FIXED_TIMESTAMP),
        "deal_title_changed": signed_pipedrive_http_event(
            pipedrive_notification("change", "deal", pipedrive_deal(), {"title": "Plan"}),
            arrival=FIXED_TIMESTAMP,
        ),
        "person_created": signed_pipedrive_http_event(
            pipedrive_notification("create", "person", pipedrive_person()), arrival=FIXED_TIMESTAMP
        ),
    }
