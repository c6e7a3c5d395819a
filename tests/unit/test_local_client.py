"""local.client: what relay-local send, relay try and relay status --local share about the stack."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from local.client import StackNotRunning, guess_provider, stack_get

PROVIDERS = {"stripe", "paddle", "hubspot"}


@pytest.mark.parametrize(
    ("folder", "document", "provider"),
    [
        (Path("events/paddle/x"), {"object": "event"}, "paddle"),  # the nearest named folder wins
        (Path("events/stripe/paddle"), {}, "paddle"),
        (Path("somewhere"), {"object": "event", "type": "x"}, "stripe"),  # a Stripe event's shape
        (None, {"object": "event"}, "stripe"),
        (Path("somewhere"), {"event_type": "x"}, None),
        (Path("somewhere"), [1], None),
    ],
)
def test_a_payloads_provider_is_guessed_from_its_folder_then_its_shape(folder, document, provider):
    # Given a raw payload in a folder, When its provider is guessed, Then the folder tells first
    assert guess_provider(folder, document, PROVIDERS) == provider


def test_a_stripe_shape_is_not_guessed_where_stripe_has_no_route():
    # Given providers without Stripe, When a Stripe-shaped payload is guessed, Then none is
    assert guess_provider(None, {"object": "event"}, {"paddle"}) is None


def test_no_stack_answering_says_how_to_start_it(monkeypatch):
    # Given no local stack answering (the connection is refused)
    def refused(url, **kwargs):
        raise requests.ConnectionError(f"refused: {url}")

    monkeypatch.setattr(requests, "get", refused)
    # When its API is asked, Then the error names where and says to start it
    with pytest.raises(StackNotRunning, match=r"127\.0\.0\.1:3000: start it with `make run`"):
        stack_get("http://127.0.0.1:3000", "status")
