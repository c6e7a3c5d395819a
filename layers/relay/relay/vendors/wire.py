"""A vendor request's JSON body as it goes on the wire.

Apart from relay.vendors.http (which imports an HTTP library) so that a vendor module can measure
a field against a documented size limit exactly as it is sent (Scanova's properties) without
adding the HTTP library to the ingest functions' cold start.
"""

from __future__ import annotations

import json
from typing import Any


def json_bytes(body: Any) -> bytes:
    """A JSON body as it is sent: what requests' `json=` sends (json.dumps' default separators,
    non-ASCII escaped as \\uXXXX, no NaN), UTF-8."""
    return json.dumps(body, allow_nan=False).encode("utf-8")
