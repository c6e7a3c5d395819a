"""What would fix it: one line per reason the relay gives (skip, ignore, park, refusal).

Keyed by the reason itself (the metric dimension and the webhook answer's word), so no
code branches on a vendor or a provider to explain one. `relay try` prints these under the
outcome; docs/operations.md explains the same reasons at more length.
"""

from __future__ import annotations

from collections.abc import Mapping

# reason → (what would fix it, the attribution key whose configured path is worth naming)
_FIXES: dict[str, tuple[str, str | None]] = {
    # skipped for one destination (Destination.skip_reason and the vendors' `missing`)
    "event_not_mapped": (
        "this destination has no event name for the conversion: add it to the destination's event_names "
        "(null there skips on purpose)",
        None,
    ),
    "consent_not_granted": (
        "the conversion's consent is denied or pending and the destination has requires_consent: true",
        None,
    ),
    "missing_scan_session_id": (
        "no scan_session_id (a UUID): add the browser's Scanova session "
        "(JSON.parse(localStorage._scnv).sid) to the payload (Stripe: the checkout session's metadata)",
        "scan_session_id",
    ),
    "missing_pagent_session": (
        "no pagent session (session_id and user_id): add JSON.stringify(window._pgnt.variables(...)) "
        "to the payload (Stripe: the checkout session's metadata.pagent)",
        "pagent",
    ),
    "missing_pagent_goal": (
        "no pagent goal: give the destination goals: {<conversion name>: <goal UUID>}, or send the "
        "session's conversion_id",
        None,
    ),
    "missing_click_id": (
        "no SnackVideo click_id: add the click_id (cookie _kwai_click_id) to the payload, e.g. the "
        "checkout session's metadata.snackvideo_click_id on Stripe",
        "snackvideo_click_id",
    ),
    "no_line_items": (
        "QuickLizard counts products: send items in the event, or give the destination "
        "stripe_api_key_secret so a Stripe Checkout's line items are read at delivery",
        None,
    ),
    "no_currency": ("the conversion has items but no currency: map value.currency in the rule", None),
    "no_item_prices": ("no item has a unit price: map items.unit_amount_minor (or _major) in the rule", None),
    "missing_permalink": (
        "a product view needs the item's URL or the page URL: map items.url or attribution event_source_url",
        "event_source_url",
    ),
    # the event as a whole: ignored (200), parked (200), refused (401/4xx)
    "test_mode_not_allowed": ("a test-mode event: set allow_test_mode: true on the source to relay it", None),
    "unsupported_event_type": (
        "no rule uses this event type: add a rule (sources.<provider>.rules), or stop subscribing to it",
        None,
    ),
    "malformed_payload": (
        "the body is not an event of this provider: check the endpoint it was sent to",
        None,
    ),
    "invalid_money": ("fix the amount or currency in the data, or the rule's value paths", None),
    "unmappable": ("the rule does not fit this payload: check its order_key and paths", None),
    "invalid_signature": (
        "the secret is not the endpoint's signing secret (during a rotation store both values)",
        None,
    ),
    "missing_signature": ("the request carries no signature header of this provider", None),
    "stale_timestamp": (
        "the signature's timestamp is older than the tolerance (a replayed or recorded request: "
        "`make send` signs anew)",
        None,
    ),
    "payload_too_large": ("the body is over the source's max_body_bytes", None),
}


def fix_for(reason: str | None, attribution_paths: Mapping[str, str] | None = None) -> str | None:
    """What would fix `reason`, naming where the relay looks when a path is configured."""
    if reason is None:
        return None
    text, key = _FIXES.get(reason, (f"see docs/operations.md ({reason})", None))
    path = (attribution_paths or {}).get(key) if key else None
    return f"{text} (the relay looks at `{path}`)" if path else text
