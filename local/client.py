"""What a client of the running local stack needs (relay-local send/status, relay status --local,
relay try): its own HTTP API (GET /_local/<endpoint>) and which provider a payload file is for."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import requests

HTTP_TIMEOUT = (3.05, 30)  # connect, read: an ingest function may cold start


class StackNotRunning(Exception):
    pass


def stack_get(base_url: str, endpoint: str) -> Any:
    """The JSON answer of the local stack's GET /_local/<endpoint> (info, status)."""
    try:
        answer = requests.get(f"{base_url}/_local/{endpoint}", timeout=HTTP_TIMEOUT)
    except requests.ConnectionError as exc:
        raise StackNotRunning(f"no local stack answers at {base_url}: start it with `make run`") from exc
    answer.raise_for_status()
    return answer.json()


def guess_provider(folder: Path | None, document: Any, providers: Collection[str]) -> str | None:
    """The provider a raw payload is for: the nearest folder named after one (events/<provider>/…),
    else Stripe for an object shaped like a Stripe event; None when neither tells."""
    for part in reversed(folder.resolve().parts if folder else ()):
        if part in providers:
            return part
    if isinstance(document, dict) and document.get("object") == "event" and "stripe" in providers:
        return "stripe"
    return None
