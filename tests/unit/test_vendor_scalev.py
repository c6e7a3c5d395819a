"""Scalev requests (relay.vendors.scalev) as scalev-storefront-analytics.txt documents them:
the order event id, the shopper's user agent on the wire, IDR amounts. No network."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from pydantic import ValidationError
from relay.config import parse_destination
from relay.models import Attribution
from relay.vendors import scalev
from relay.vendors.http import USER_AGENT, Transport

from tests.unit.test_vendor_payloads import conversion

SHOPPER_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


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


class RecordingSession(requests.Session):
    """Answers every request 204, as Scalev does, and keeps what went on the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **_options: Any) -> requests.Response:
        self.sent.append(request)
        response = requests.Response()
        response.status_code, response.request = 204, request
        return response


def post_one(provider: str, attribution: Attribution) -> requests.PreparedRequest:
    session = RecordingSession()
    client = scalev.ScalevClient(
        provider, scalev_destination(provider), Transport(session), lambda name: "sfpk_key"
    )
    client.post([client.prepare(conversion(attribution=attribution))])
    (sent,) = session.sent
    return sent


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


# --------------------------------------------------------------------------- user agent


@pytest.mark.parametrize("provider", ["meta", "tiktok"])
def test_scalev_request_carries_the_shoppers_user_agent(provider: str) -> None:
    # Given a conversion whose attribution holds the shopper's browser user agent
    attribution = Attribution(client_user_agent=SHOPPER_UA, fbp="fb.1.1.2", ttclid="tt")
    # When the Meta or TikTok request goes out
    sent = post_one(provider, attribution)
    # Then its User-Agent header is the shopper's (Scalev fills client_user_agent from it)
    assert sent.headers["User-Agent"] == SHOPPER_UA
    assert sent.headers[scalev.API_KEY_HEADER] == "sfpk_key"
    assert "client_user_agent" not in (sent.body or b"").decode()  # no undocumented Meta key


def test_scalev_tiktok_keeps_the_user_agent_in_the_body_too() -> None:
    payload = scalev.build_payload(
        scalev_destination("tiktok"), conversion(attribution=Attribution(client_user_agent=SHOPPER_UA))
    )
    assert payload["user"]["user_agent"] == SHOPPER_UA


@pytest.mark.parametrize(
    ("provider", "attribution", "expected"),
    [
        ("meta", Attribution(), USER_AGENT),  # no shopper UA known: the relay's own
        ("snackvideo", Attribution(client_user_agent=SHOPPER_UA, snackvideo_click_id="kw"), USER_AGENT),
        ("meta", Attribution(client_user_agent="Mozilla/5.0\r\nX-Injected: 1"), "Mozilla/5.0X-Injected: 1"),
        ("meta", Attribution(client_user_agent="Mozilla/5.0 (Linux; 中文)"), "Mozilla/5.0 (Linux; )"),
        ("meta", Attribution(client_user_agent="\x00\n "), USER_AGENT),
    ],
)
def test_scalev_user_agent_header_is_safe_or_the_relays(
    provider: str, attribution: Attribution, expected: str
) -> None:
    # Given no shopper UA, a SnackVideo event, or a UA a header cannot carry as it is
    # Then the header is the relay's own, or the shopper's reduced to printable ASCII
    assert post_one(provider, attribution).headers["User-Agent"] == expected


def test_scalev_user_agent_header_is_bounded() -> None:
    sent = post_one("meta", Attribution(client_user_agent="M" * 5000))
    assert sent.headers["User-Agent"] == "M" * scalev.MAX_USER_AGENT
