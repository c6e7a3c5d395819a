"""A sample made new: fresh event and order ids, so a used local stack takes it as a new order.

`make send FRESH=1` (relay-local send --fresh) posts a committed sample through this before
signing it: the provider event id is new (not a duplicate) and so is the order the conversion
id is made from (the delivery ledger has not seen it), so a walk-through works again on a
stack that already delivered the sample. Provider-agnostic on purpose: ids are recognised by
the keys providers put them under and by their shapes (`evt_…`, numbers, UUIDs).
HubSpot's deals live in the CRM (the local stub): a fresh HubSpot event is a new event for
the same deal.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from typing import Any

# Keys under which the samples carry event, notification, object and order ids.
_ID_KEYS = frozenset(
    {
        "id",
        "event_id",
        "notification_id",
        "order_id",
        "payment_intent",
        "invoice",
        "subscription",
        "entity_id",
    }
)
_PREFIXED = re.compile(r"^[a-z]{2,4}_[A-Za-z0-9_]+$")  # evt_…, pi_…, txn_…, ord_…
# Kept: a Stripe Checkout Session is what the Stripe API stub has line items for (QuickLizard
# reads them); its payment intent, the conversion's order key, is what makes the order new.
_KEPT = re.compile(r"^cs_")
_HEADER_IDS = ("x-shopify-webhook-id", "x-shopify-event-id", "webhook-id")
# Shopify's body names its own resource by id too (gid://shopify/Order/<id>): it must follow the id.
_SHOPIFY_GID = re.compile(r"^(gid://shopify/\w+/)(\d+)$")


def freshen(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """(body, headers) with every recognised id replaced by a new one, the same one everywhere."""
    tag = secrets.token_hex(4)
    offset = secrets.randbelow(10**6) + 1
    try:
        document = json.loads(body)
    except ValueError:
        return body, headers
    fresh = _walk(document, tag, offset)
    new_headers = dict(headers)
    for name in list(new_headers):
        if name.lower() in _HEADER_IDS:
            new_headers[name] = f"{new_headers[name]}-{tag}"
    return json.dumps(fresh).encode(), new_headers


def _walk(value: Any, tag: str, offset: int, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, tag, offset, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, tag, offset, key) for v in value]
    if key == "admin_graphql_api_id" and isinstance(value, str) and (gid := _SHOPIFY_GID.match(value)):
        return f"{gid.group(1)}{int(gid.group(2)) + offset}"
    if key not in _ID_KEYS or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value + offset
    if isinstance(value, str):
        if _PREFIXED.match(value) and not _KEPT.match(value):
            return f"{value}_{tag}"
        if value.isdigit():
            return str(int(value) + offset)
        try:
            uuid.UUID(value)
        except ValueError:
            return value
        return str(uuid.uuid5(uuid.UUID(value), tag))
    return value
