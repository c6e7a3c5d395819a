"""Scanova's 2xx answers read as delivery outcomes (relay.vendors.scanova), without network.

Only the accepted answer is documented ({"event_id", "status": "accepted"}) and a resent event id
"will return 200 but … be marked as a duplicate" (body not shown): a 2xx is delivered unless it
says "rejected", since Scanova dedupes on the event id and a retry could only end in the DLQ."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from relay.config import parse_destination
from relay.errors import PermanentDeliveryError, UnansweredDeliveryError
from relay.vendors.client import Accepted, VendorOutcome
from relay.vendors.http import Transport
from relay.vendors.scanova import ScanovaClient
from requests.adapters import BaseAdapter

SCANOVA = {"kind": "scanova", "base_url": "https://s.example.com", "site_id": "s", "api_key_secret": "k"}


class Answering(BaseAdapter):
    """Answers every request 200 with the given raw body, and keeps the paths asked."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body
        self.paths: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.paths.append(request.path_url)
        response = requests.Response()
        response.status_code, response.request, response._content = 200, request, self.body
        return response

    def close(self) -> None:
        pass


def post(body: bytes | dict[str, Any], events: int) -> tuple[list[VendorOutcome], list[str]]:
    adapter = Answering(body if isinstance(body, bytes) else json.dumps(body).encode())
    session = requests.Session()
    session.mount("https://", adapter)
    client = ScanovaClient("scanova", parse_destination(SCANOVA), Transport(session), lambda _: "key")
    outcomes = client.post([[{"event_id": f"e{i}"}] for i in range(events)])
    return outcomes, adapter.paths


def shape(outcome: VendorOutcome) -> tuple[str, Any]:
    if isinstance(outcome, Accepted):
        return ("delivered", "duplicate" if outcome.duplicate else "new")
    return (type(outcome).__name__, outcome.status)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"event_id": "e0", "status": "accepted"}, ("delivered", "new")),  # the documented answer
        ({"event_id": "e0", "status": "duplicate"}, ("delivered", "duplicate")),
        ({"event_id": "e0", "status": "accepted", "duplicate": True}, ("delivered", "duplicate")),
        ({"event_id": "e0", "status": "queued"}, ("delivered", "new")),  # unknown: still a 2xx
        ({"event_id": "e0"}, ("delivered", "new")),
        (b"", ("delivered", "new")),  # an empty 2xx
        (b"OK", ("delivered", "new")),  # not JSON
        (b"[]", ("delivered", "new")),
        ({"status": "rejected", "detail": "scan_session_id: not a UUID"}, ("PermanentDeliveryError", 422)),
    ],
)
def test_a_single_event_2xx_is_delivered_unless_it_says_rejected(
    body: bytes | dict[str, Any], expected: tuple[str, Any]
) -> None:
    # Given Scanova answering one event 200 with this body, When posted
    (outcome,), paths = post(body, events=1)
    # Then it went to the single-event endpoint and reads as expected
    assert paths == ["/server-events"]
    assert shape(outcome) == expected


def test_a_rejected_single_event_carries_scanovas_reason() -> None:
    (outcome,), _ = post({"status": "rejected", "detail": "scan_session_id: not a UUID"}, events=1)
    assert isinstance(outcome, PermanentDeliveryError)
    assert outcome.vendor_message == "scan_session_id: not a UUID"


def test_batch_results_are_read_per_event_with_the_same_leniency() -> None:
    # Given a batch answer with the documented per-event results, in another order, one of each
    # kind, and no result at all for the last event
    answer = {
        "accepted": 4,
        "rejected": 1,
        "results": [
            {"index": 1, "event_id": "e1", "status": "duplicate"},
            {"index": 0, "event_id": "e0", "status": "accepted"},
            {
                "index": 2,
                "event_id": "e2",
                "status": "rejected",
                "detail": [{"loc": ["body", "x"], "msg": "bad"}],
            },
            {"index": 3, "event_id": "e3", "status": "queued"},
            {"index": 4, "event_id": "e4", "duplicate": True},
        ],
    }
    # When 6 events are posted
    outcomes, paths = post(answer, events=6)
    # Then the batch endpoint was used; an unknown status is delivered like the single endpoint's;
    # only the rejected one is refused, and the one without a result is unanswered (retried: Scanova
    # dedupes the event id)
    assert paths == ["/server-events/batch"]
    assert [shape(o) for o in outcomes] == [
        ("delivered", "new"),
        ("delivered", "duplicate"),
        ("PermanentDeliveryError", 422),
        ("delivered", "new"),
        ("delivered", "duplicate"),
        ("UnansweredDeliveryError", 200),
    ]
    assert isinstance(outcomes[2], PermanentDeliveryError) and outcomes[2].vendor_message == "x: bad"
    assert isinstance(outcomes[5], UnansweredDeliveryError)
