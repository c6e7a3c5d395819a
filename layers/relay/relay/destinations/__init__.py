"""Destinations: what each vendor requires of a conversion, and its event names.

`skip_reason` is asked at ingest, so a destination that cannot take a conversion
(e.g. Scanova without a scan_session_id) gets no job and the skip is counted.
The vendor clients and payload builders live in relay.vendors (one module per vendor kind).
"""

from __future__ import annotations

from relay.config import Destination
from relay.models import Consent, Conversion

# Conversion name → vendor event name, per vendor (and Scalev provider). A config's
# `event_names` overrides these; a name absent from both passes through unchanged,
# except where the vendor only knows a fixed set (QuickLizard).
DEFAULT_EVENT_NAMES: dict[str, dict[str, str | None]] = {
    "scanova": {},
    "pagent": {},
    "scalev:meta": {
        "purchase": "Purchase",
        "renewal": "Purchase",
        "signup": "CompleteRegistration",
        "lead": "Lead",
        "product_view": "ViewContent",
    },
    "scalev:tiktok": {
        "purchase": "CompletePayment",
        "renewal": "CompletePayment",
        "signup": "CompleteRegistration",
        "lead": "SubmitForm",
        "product_view": "ViewContent",
    },
    "scalev:snackvideo": {"purchase": "purchase", "product_view": "contentView"},
    "quicklizard": {"purchase": "conversion", "renewal": None, "product_view": "view"},
}
CLOSED_VOCABULARY = {"quicklizard"}


def _vendor_key(destination: Destination) -> str:
    return f"scalev:{destination.provider}" if destination.kind == "scalev" else destination.kind


def event_name(destination: Destination, conversion_name: str) -> str | None:
    """The vendor's event name for a conversion, or None when this destination skips it."""
    if conversion_name in destination.event_names:
        return destination.event_names[conversion_name]
    defaults = DEFAULT_EVENT_NAMES[_vendor_key(destination)]
    if conversion_name in defaults:
        return defaults[conversion_name]
    return None if destination.kind in CLOSED_VOCABULARY else conversion_name


def event_id(destination: Destination, conversion: Conversion) -> str:
    """The vendor event id, from the destination's template (for browser-pixel dedup)."""
    return destination.event_id_template.format(
        conversion_id=conversion.conversion_id,
        order_id=conversion.order_id or conversion.conversion_id,
        event_name=event_name(destination, conversion.name) or conversion.name,
        name=conversion.name,
    )


def pagent_goal(destination: Destination, conversion: Conversion) -> str | None:
    return conversion.attribution.pagent.conversion_id or destination.goals.get(conversion.name)


def skip_reason(destination: Destination, conversion: Conversion) -> str | None:
    """Why this destination cannot take this conversion (a metric dimension), or None."""
    if event_name(destination, conversion.name) is None:
        return "event_not_mapped"
    if destination.requires_consent and conversion.consent in (Consent.DENIED, Consent.PENDING):
        return "consent_not_granted"
    attribution = conversion.attribution
    if destination.kind == "scanova" and not attribution.scan_session_id:
        return "missing_scan_session_id"
    if destination.kind == "pagent":
        session = attribution.pagent
        if not (session.session_id and session.user_id):
            return "missing_pagent_session"
        if not pagent_goal(destination, conversion):
            return "missing_pagent_goal"
    if (
        destination.kind == "scalev"
        and destination.provider == "snackvideo"
        and not (attribution.snackvideo_click_id)
    ):
        return "missing_click_id"
    return None
