"""Pipedrive webhooks v1 bodies, read as the webhooks v2 notifications they correspond to.

Pipedrive runs both versions side by side (v2 is the default for new webhooks since
2025-03-17; older webhooks, and pipeline/stage events, stay v1), so a deal won through a v1
webhook must count too. Rather than a second set of rules, a v1 body is translated into
v2's shape (Pipedrive's "Webhooks v2 migration guide") and read by the same parse and rules:

  v1                                            v2
  meta.action added/updated/merged/deleted      meta.action create/change/change/delete
                                                (v2 sends a merge as a delete and a change)
  meta.object                                   meta.entity
  meta.id (the object's id)                     meta.entity_id, a string
  meta.timestamp (epoch seconds)                meta.timestamp, ISO 8601 UTC
  current                                       data
  current.<40-hex field key>: value             data.custom_fields.<key>: {"value": value}
  current.email / current.phone (lists)         data.emails / data.phones
  current.<x>_id as {"value": id, …}            data.<x>_id: id (v2 sends ids only)
  previous (the whole old object)               previous (v2: the changed fields only)

meta.version says "1.0", so a translated notification can be told apart. v1's top-level
`v`, `event`, `retry` and `matches_filters` are not carried over: nothing reads them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from relay.errors import PayloadError

_ACTIONS = {"added": "create", "updated": "change", "merged": "change", "deleted": "delete"}
_CUSTOM_FIELD_KEY = re.compile(r"[0-9a-f]{40}")  # a custom field's API key
_LISTS = {"email": "emails", "phone": "phones"}  # a person's contact lists, renamed in v2
_V1_ONLY_META = ("action", "object", "id", "timestamp", "v")


def is_v1(document: Any) -> bool:
    """A v1 body has `current` (and `v: 1`) where v2 has `data`."""
    if not isinstance(document, dict) or "data" in document:
        return False
    return "current" in document or document.get("v") == 1


def as_v2(document: dict[str, Any]) -> dict[str, Any]:
    """The v2 notification a v1 body corresponds to (see the module's table)."""
    meta = document.get("meta")
    if not isinstance(meta, dict):
        raise PayloadError("not a Pipedrive webhooks v1 notification: meta must be an object")
    current = document.get("current")
    object_id = meta.get("id")
    return {
        "meta": {
            **{key: value for key, value in meta.items() if key not in _V1_ONLY_META},
            "action": _ACTIONS.get(meta.get("action"), meta.get("action")),
            "entity": meta.get("object"),
            "entity_id": None if object_id is None or isinstance(object_id, bool) else str(object_id),
            "timestamp": _iso(meta.get("timestamp")),
            "version": "1.0",
        },
        "data": _data(current) if isinstance(current, dict) else current,
        "previous": document.get("previous"),
    }


def _iso(timestamp: Any) -> Any:
    """v1's epoch seconds as v2's ISO 8601 UTC; anything else as it is (event_time judges it)."""
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        return timestamp
    try:
        moment = datetime.fromtimestamp(timestamp, tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise PayloadError(f"a Pipedrive webhooks v1 timestamp is out of range: {timestamp}") from exc
    return moment.isoformat().replace("+00:00", "Z")


def _data(current: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    custom_fields: dict[str, Any] = {}
    for key, value in current.items():
        if _CUSTOM_FIELD_KEY.fullmatch(key):
            if value is not None:  # v1 lists every field, set or not
                custom_fields[key] = {"value": value}
        elif key in _LISTS and isinstance(value, list):
            data[_LISTS[key]] = value
        elif key.endswith("_id") and isinstance(value, dict) and "value" in value:
            data[key] = value["value"]
        else:
            data[key] = value
    data["custom_fields"] = custom_fields
    return data
