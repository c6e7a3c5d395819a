"""The scenario every sample shares: one point in time, one fictitious customer, her browser
session's attribution ids, and the providers' official fixture objects the builders start from.

The fixtures (testkit/fixtures, provenance in fixtures/SOURCES.md) are real provider payloads:
Stripe's stripe-mock objects, the Paddle SDK's notifications, HubSpot's signature examples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXED_TIMESTAMP = 1_767_225_600  # 2026-01-01T00:00:00Z: committed events are reproducible

SCAN_SESSION_ID = "7ad26d4f-3181-4ef8-b6ca-b8f59499dd43"
PAGENT_SESSION = {
    "session_id": "sess_9f8e7d",
    "user_id": "user_1a2b3c",
    "visit_id": "v_456",
    "conversion_id": "3f9a3c1e-8d2b-4a57-9c1e-2b7d5e4f6a10",
}
ATTRIBUTION_METADATA = {
    "scan_session_id": SCAN_SESSION_ID,
    "pagent": json.dumps(PAGENT_SESSION, separators=(",", ":")),
    "fbc": "fb.1.1710000000000.IwAR2xyz",
    "fbp": "fb.1.1710000000000.1234567890",
    "ttclid": "E.C.P.ttclid123",
    "ttp": "ttp_cookie_value",
    "snackvideo_click_id": "kwai_click_abc",
    "quicklizard_vid": "DASDAS-CCCC-NA",
    "event_source_url": "https://shop.example.com/checkout",
    "referrer_url": "https://facebook.com/",
}
CUSTOMER_DETAILS = {
    "email": "Jenny.Rosen@Example.com",
    "phone": "+1 (616) 954-7888",
    "name": "Jenny Rosen",
    "address": {
        "city": "Menlo Park",
        "country": "US",
        "line1": "1 Hacker Way",
        "line2": None,
        "postal_code": "94025",
        "state": "CA",
    },
    "tax_exempt": "none",
    "tax_ids": [],
}


def fixture(name: str, provider: str = "stripe") -> Any:
    return json.loads((FIXTURES / provider / name).read_text(encoding="utf-8"))
