"""Vendor answers in one line: whatever a vendor's error shape, a bounded reason without PII.

Kept apart from relay.vendors.http (which needs an HTTP library) so that vendor modules can
read their answers' bodies without importing one.
"""

from __future__ import annotations

import json
from typing import Any

from relay import pii

MAX_MESSAGE_CHARS = 500


def describe(body: Any) -> str:
    """FastAPI `detail`, `error`, `errors[{field, message}]`, Stripe's `error.message`, … as text."""
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return "; ".join(part for part in (describe(item) for item in body) if part)
    if isinstance(body, dict):
        if "loc" in body and "msg" in body:
            parts = body["loc"] if isinstance(body["loc"], list) else []
            loc = [str(part) for part in parts if part != "body"]
            return f"{'.'.join(loc)}: {body['msg']}" if loc else str(body["msg"])
        if "message" in body and "field" in body:
            return f"{body['field']}: {body['message']}" if body["field"] else str(body["message"])
        for key in ("detail", "error", "errors", "message"):
            if key in body:
                return describe(body[key])
    return json.dumps(body, separators=(",", ":"), default=str)


def clean_message(text: str | None) -> str | None:
    """At most 500 characters, email addresses masked (vendors may echo what they refused)."""
    if not text:
        return None
    return str(pii.scrub(" ".join(text.split())))[:MAX_MESSAGE_CHARS]
