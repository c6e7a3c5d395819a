"""Scalev requests (relay.vendors.scalev) as scalev-storefront-analytics.txt documents them:
the order event id, the shopper's user agent on the wire, IDR amounts. No network."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from relay.config import parse_destination
from relay.vendors import scalev

from tests.unit.test_vendor_payloads import conversion


def scalev_destination(provider: str, **fields: Any) -> Any:
    return parse_destination(
        {
            "kind": "scalev",
            "provider": provider,
            "store_id": "store_1",
            "base_url": "https://api.scalev.example",
            "api_key_secret": "conversion-relay/scalev/key",
            **fields,
        }
    )


# --------------------------------------------------------------------------- event id


@pytest.mark.parametrize(("provider", "event"), [("meta", "Purchase"), ("tiktok", "CompletePayment")])
def test_scalev_event_id_defaults_to_the_documented_order_event_id(provider: str, event: str) -> None:
    # Given a Scalev destination whose config sets no event_id_template
    destination = scalev_destination(provider)
    # When a purchase is built
    payload = scalev.build_payload(destination, conversion())
    # Then the event id is the doc's `${order.order_id}-${eventName}-FORM`, the browser pixel's
    assert payload["events"][0]["event_id"] == f"pi_123-{event}-FORM"


def test_scalev_event_id_template_is_still_configurable_and_checked() -> None:
    # Given a template of the destination's own, Then it is used; an unknown field fails the config
    own = scalev_destination("meta", event_id_template="{conversion_id}")
    assert scalev.build_payload(own, conversion())["events"][0]["event_id"] == str(conversion().conversion_id)
    with pytest.raises(ValidationError, match="unknown field 'order'"):
        scalev_destination("meta", event_id_template="{order}-FORM")
