"""Every other source's committed sample events through the whole local stack, over HTTP only.

For each events/<provider>/ sample whose ingest function exists: the `make send` path answers
2xx, and every job it queued ends up delivered (QuickLizard may skip a conversion that has no
line items), with nothing dead-lettered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
# events/ folder → the function that serves its samples (events/backend/ posts to /events)
SOURCES = {
    "hubspot": "ingest_hubspot",
    "pipedrive": "ingest_pipedrive",
    "paddle": "ingest_paddle",
    "shopify": "ingest_shopify",
    "backend": "ingest_events",
}
SAMPLES = [
    pytest.param(
        path,
        id=f"{folder}/{path.stem}",
        marks=pytest.mark.skipif(
            not (REPO_ROOT / "functions" / function / "app.py").is_file(),
            reason=f"functions/{function}/ is not there yet",
        ),
    )
    for folder, function in SOURCES.items()
    for path in sorted((REPO_ROOT / "events" / folder).glob("*.json"))
]


def _results(answer: dict) -> list[dict]:
    """One result per provider event (HubSpot batches several into one request)."""
    return answer["events"] if answer.get("status") == "processed" else [answer]


@pytest.mark.parametrize("path", SAMPLES)
def test_a_sample_event_reaches_the_vendor_sandboxes(local_stack, poll, path):
    """Given a committed sample of a provider,
    When it is sent the `make send` way (re-signed now with the stack's secret),
    Then it is answered 2xx, and every destination that got a job has the conversion delivered."""
    stack = local_stack
    stack.settle()
    dead_before = {row["destination"]: row["dead_letters"] for row in stack.status()["destinations"]}
    destinations = {row["destination"] for row in stack.status()["destinations"] if row["enabled"]}

    # A cold start may take seconds (Paddle allows 5 s of skew): the signature's age is measured
    # from the local API Gateway's arrival time, so the first answer counts.
    answer = stack.send(json.loads(path.read_text(encoding="utf-8")))

    assert answer.status_code == 200, answer.text
    results = _results(answer.json())
    assert all(result["status"] in ("accepted", "ignored") for result in results), results
    expected = set()
    for result in results:
        skipped = {key.split(":", 1)[0] for key in result.get("skipped", {})}
        expected |= {
            (destination, conversion)
            for conversion in result.get("conversions", [])
            for destination in destinations - skipped
            if destination != "quicklizard"  # delivered, or skipped for want of line items
        }

    def delivered() -> set[tuple[str, str]]:
        return {
            (i["destination"], i["conversion_id"]) for i in stack.ledger() if i.get("status") == "delivered"
        }

    poll(lambda: expected <= delivered() and stack.idle(), f"the conversions of {path.name} to be delivered")
    dead_after = {row["destination"]: row["dead_letters"] for row in stack.status()["destinations"]}
    assert dead_after == dead_before
