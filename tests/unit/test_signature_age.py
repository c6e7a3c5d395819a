"""A signature's age is measured from when API Gateway received the request (requestContext.timeEpoch),
not from the handler's clock, for every scheme that signs a timestamp; each provider's tolerance
holds on both sides (a far-future timestamp would make a captured request replayable)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from relay.config import Source
from relay.errors import StaleTimestampError
from relay.ingest.edge import arrival, webhook_request
from relay.sources.spec import load_source

import testkit

BODY = b'{"type": "lead", "data": {}}'
TOLERANCE = {"stripe": 300, "paddle": 5, "hubspot": 300, "events": 300}  # each provider's documented default
SIGN = {
    "stripe": lambda at: {"Stripe-Signature": testkit.stripe_signature(BODY, timestamp=at)},
    "paddle": lambda at: {"Paddle-Signature": testkit.paddle_signature(BODY, timestamp=at)},
    "hubspot": lambda at: testkit.hubspot_signature_v3(BODY, timestamp_ms=at * 1000),
    "events": lambda at: testkit.standard_webhooks_signature("msg_1", BODY, timestamp=at),
}


def verify(provider: str, signed_at: int, arrived_at: int | None) -> None:
    event = testkit.http_api_event(
        testkit.ROUTES[provider], BODY, SIGN[provider](signed_at), time_epoch_ms=(arrived_at or 0) * 1000
    )
    if arrived_at is None:
        del event["requestContext"]["timeEpoch"]  # not behind API Gateway: the handler's clock
    request = webhook_request(event, max_body_bytes=1024)
    load_source(provider).verify(request, [testkit.LOCAL_WEBHOOK_SECRETS[provider]], Source())


@pytest.mark.parametrize("provider", list(SIGN))
def test_a_cold_start_after_arrival_does_not_make_a_fresh_webhook_stale(provider: str, monkeypatch: Any):
    # Given a webhook signed and received a moment ago, and a handler that runs only now, after a
    # cold start far longer than the provider's tolerance (Paddle's is 5 s)
    arrived = int(time.time()) - 1
    monkeypatch.setattr(time, "time", lambda: arrived + TOLERANCE[provider] + 30)
    # Then its age counts from arrival: authentic and fresh
    verify(provider, signed_at=arrived, arrived_at=arrived)
    # While the handler's own clock, without API Gateway's arrival time, would call it stale
    with pytest.raises(StaleTimestampError):
        verify(provider, signed_at=arrived, arrived_at=None)


@pytest.mark.parametrize("provider", list(SIGN))
def test_the_tolerance_holds_on_both_sides_of_the_arrival(provider: str):
    now, tolerance = int(time.time()), TOLERANCE[provider]
    verify(provider, signed_at=now - tolerance, arrived_at=now)  # the oldest that passes
    verify(provider, signed_at=now + tolerance, arrived_at=now)  # the provider's clock ahead
    for signed_at in (now - tolerance - 2, now + tolerance + 2):
        with pytest.raises(StaleTimestampError, match="tolerance"):
            verify(provider, signed_at=signed_at, arrived_at=now)


@pytest.mark.parametrize(
    ("context", "seconds"),
    [
        ({"timeEpoch": 1_767_225_600_123}, 1_767_225_600.123),
        ({"timeEpoch": "1767225600123"}, None),  # API Gateway sends a number; anything else is ignored
        ({"timeEpoch": True}, None),
        ({"timeEpoch": float("nan")}, None),
        ({"timeEpoch": -5}, None),
        ({}, None),
    ],
)
def test_the_arrival_is_api_gateways_time_epoch_in_seconds(context: dict, seconds: float | None):
    assert arrival(context) == seconds
