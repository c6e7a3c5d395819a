"""relay.deliver and relay.vendors without AWS or network: backoff, request splitting, the HTTP
answers mapped to delivery errors by type, dead-letter attributes, cold-start checks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from aws_lambda_powertools import Metrics
from relay.config import RelayConfig, parse_config, parse_destination
from relay.deliver.build import check_secret_names
from relay.deliver.deliverer import Deliverer
from relay.deliver.sending import Sender
from relay.errors import (
    ConfigError,
    PermanentDeliveryError,
    SecretNotFoundError,
    TransientDeliveryError,
    UnansweredDeliveryError,
)
from relay.settings import DeliverSettings
from relay.vendors.client import Accepted, VendorClient, VendorEvent, VendorOutcome
from relay.vendors.http import Transport
from relay.vendors.wire import json_bytes
from requests.adapters import BaseAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

ENV = {
    "RELAY_CONFIG": "unused.yaml",
    "TABLE_NAME": "relay",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
    "MAX_RECEIVE_COUNT": "5",
}


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.visibility: list[dict[str, Any]] = []

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.sent += kwargs["Entries"]
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]], "Failed": []}

    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.visibility += kwargs["Entries"]
        return {"Successful": [], "Failed": []}


def deliverer(rng: float = 0.5, config: RelayConfig | None = None, sqs: Any = None, **env: str) -> Deliverer:
    return Deliverer(
        kind="scanova",
        config=config or RelayConfig(),
        settings=DeliverSettings.from_env({**ENV, **env}),
        ledger=None,  # type: ignore[arg-type] - not reached by these tests
        sqs=sqs or FakeSqs(),
        metrics=Metrics(namespace="Test", service="test"),
        rng=lambda: rng,
    )


# --------------------------------------------------------------------------- backoff


@pytest.mark.parametrize(
    ("receive_count", "rng", "seconds"),
    [
        (1, 0.0, 15),  # base 30 s, equal jitter: between half and all of it
        (1, 1.0, 30),
        (3, 1.0, 120),  # 30 x 2^2
        (10, 0.0, 450),  # capped at 900 s, then jittered
        (10, 1.0, 900),
    ],
)
def test_backoff_doubles_per_receive_with_jitter_and_a_cap(
    receive_count: int, rng: float, seconds: int
) -> None:
    # Given the default base (30 s) and cap (900 s), When a record fails on its nth receive,
    # Then its next attempt waits base x 2^(n-1), capped, between half and all of it.
    assert deliverer(rng).retry_delay(receive_count) == seconds


def test_retry_after_wins_over_the_backoff_and_is_spread_a_little() -> None:
    # Given a vendor's Retry-After of 7 s, Then the record waits 7 s (up to 10% more, not less)
    assert deliverer(0.0).retry_delay(1, retry_after=7) == 7
    assert deliverer(1.0).retry_delay(4, retry_after=7) == 8  # ceil(7.7)
    # ... bounded by SQS's 12-hour visibility limit
    assert deliverer(0.0).retry_delay(1, retry_after=86400) == 43200


def test_retry_delay_scale_shortens_every_delay_for_local_runs() -> None:
    # Given RETRY_DELAY_SCALE=0.01 (the local stack), Then minutes become seconds
    fast = deliverer(1.0, RETRY_DELAY_SCALE="0.01")
    assert fast.retry_delay(3) == 2  # ceil(120 x 0.01)
    assert fast.retry_delay(1, retry_after=100) == 2  # ceil(110 x 0.01)


# --------------------------------------------------------------------------- request splitting


SCANOVA = {"kind": "scanova", "base_url": "https://x.example.com", "site_id": "s", "api_key_secret": "k"}


class FakeClient(VendorClient):
    """Refuses a whole multi-event request with `status` when it holds a "bad" event."""

    max_batch = 8
    split_statuses = frozenset({422})

    def __init__(self, status: int = 422, error: Exception | None = None) -> None:
        # One request at a time, so the order of requests is the order of the batch.
        super().__init__("fake", parse_destination({**SCANOVA, "concurrency": 1}), None, lambda _: "key")  # type: ignore[arg-type]
        self.status = status
        self.error = error
        self.requests: list[list[str]] = []

    def prepare(self, conversion):  # pragma: no cover - not used here
        raise NotImplementedError

    def post(self, batch: Sequence[list[VendorEvent]]) -> list[VendorOutcome]:
        names = [job[0]["name"] for job in batch]
        self.requests.append(names)
        if self.error is not None:
            raise self.error
        if "bad" in names:
            raise PermanentDeliveryError("refused", status=self.status, vendor_message="bad event")
        return [Accepted(200)] * len(batch)


def events(*names: str) -> list[list[VendorEvent]]:
    return [[{"name": name}] for name in names]


def send_jobs(client: VendorClient, batch: list[list[VendorEvent]], **options: Any) -> list[Any]:
    return [sent.outcome for sent in Sender(client).send(batch, **options)]


def test_a_refused_batch_is_split_until_the_bad_event_is_alone() -> None:
    # Given 8 events, the 6th bad, and a vendor refusing the whole batch with 422
    client = FakeClient()
    batch = events("a", "b", "c", "d", "e", "bad", "g", "h")
    # When delivered
    outcomes = send_jobs(client, batch)
    # Then the good events are accepted once each and only the bad one carries the refusal
    assert [type(o).__name__ for o in outcomes] == ["Accepted"] * 5 + ["PermanentDeliveryError"] + [
        "Accepted"
    ] * 2
    accepted_names = [n for request in client.requests if "bad" not in request for n in request]
    assert sorted(accepted_names) == ["a", "b", "c", "d", "e", "g", "h"]
    assert len(client.requests) == 1 + 2 + 2 + 2  # 8 → 4+4 → 2+2 → 1+1


def test_an_authentication_refusal_is_not_split() -> None:
    # Given a vendor answering 401 (a refusal of the caller, not of an event)
    client = FakeClient(status=401)
    outcomes = send_jobs(client, events("a", "bad", "c"))
    # Then every job gets that refusal from one request
    assert len(client.requests) == 1
    assert all(isinstance(o, PermanentDeliveryError) and o.status == 401 for o in outcomes)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TransientDeliveryError("503", status=503), TransientDeliveryError),
        (SecretNotFoundError("no secret"), TransientDeliveryError),  # nothing was sent
        (KeyError("results"), UnansweredDeliveryError),  # after the call: the vendor may have them
    ],
)
def test_a_failed_request_gives_each_job_the_failure_by_type(error: Exception, expected: type) -> None:
    outcomes = send_jobs(FakeClient(error=error), events("a", "b"))
    assert [type(o) for o in outcomes] == [expected, expected]


def test_no_request_is_started_without_time_for_its_answer() -> None:
    # Given an invocation about to end, Then the jobs are left unattempted (None), not sent
    client = FakeClient()
    assert send_jobs(client, events("a", "b"), may_continue=lambda: False) == [None, None]
    assert client.requests == []


# --------------------------------------------------------------------------- HTTP answers by type


class FakeAdapter(BaseAdapter):
    """Answers every request with one canned response, or raises one exception."""

    def __init__(self, status: int = 200, body: Any = None, headers: dict | None = None, raises=None):
        super().__init__()
        self.status, self.body, self.headers, self.raises = status, body, headers or {}, raises

    def send(self, request, **kwargs):  # type: ignore[override]
        if self.raises is not None:
            raise self.raises
        response = requests.Response()
        response.status_code = self.status
        response.headers.update(self.headers)
        response._content = b"" if self.body is None else json.dumps(self.body).encode()
        response.request = request
        return response

    def close(self) -> None:
        pass


def call(adapter: FakeAdapter, latencies: list | None = None) -> requests.Response:
    session = requests.Session()
    session.mount("https://", adapter)
    transport = Transport(
        session, observe=(lambda _d, ms: latencies.append(ms)) if latencies is not None else None
    )
    return transport.request("POST", "https://vendor.example.com/x", destination="d", timeout=1, json_body={})


def test_2xx_is_the_answer_and_its_latency_is_observed() -> None:
    latencies: list[float] = []
    assert call(FakeAdapter(204), latencies).status_code == 204
    assert len(latencies) == 1 and latencies[0] >= 0


def test_a_json_body_goes_out_as_json_bytes_exactly_as_requests_json_would_send_it() -> None:
    # Given a body with non-ASCII text (a vendor module measures size limits with json_bytes)
    body = {"properties": {"city": "東京", "note": "café"}, "n": [1, 2.5]}
    session = requests.Session()
    session.mount("https://", FakeAdapter(200))
    # When posted through the transport
    sent = Transport(session).request(
        "POST", "https://v.example.com/x", destination="d", timeout=1, json_body=body
    )
    # Then the bytes and content type are json_bytes' and those of requests' own json=
    expected = requests.Request("POST", "https://v.example.com/x", json=body).prepare()
    assert sent.request.body == json_bytes(body) == expected.body
    assert sent.request.headers["Content-Type"] == expected.headers["Content-Type"] == "application/json"


def test_429_is_transient_with_retry_after_in_seconds_or_as_a_date() -> None:
    with pytest.raises(TransientDeliveryError) as seconds:
        call(FakeAdapter(429, headers={"Retry-After": "7"}))
    assert (seconds.value.status, seconds.value.retry_after) == (429, 7.0)
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    with pytest.raises(TransientDeliveryError) as date:
        call(FakeAdapter(429, headers={"Retry-After": later}))
    assert 115 <= (date.value.retry_after or 0) <= 120


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_server_errors_are_transient(status: int) -> None:
    with pytest.raises(TransientDeliveryError) as raised:
        call(FakeAdapter(status, body={"error": "busy"}))
    assert not isinstance(raised.value, UnansweredDeliveryError) and raised.value.status == status


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, {"error": "events[1].revenue: must be an integer"}, "events[1].revenue: must be an integer"),
        (422, {"detail": [{"loc": ["body", "scan_session_id"], "msg": "field required"}]},
         "scan_session_id: field required"),
        (401, {"errors": [{"field": None, "message": "invalid storefront API key"}]},
         "invalid storefront API key"),
        (403, {"detail": "Invalid or revoked API key"}, "Invalid or revoked API key"),
    ],
)  # fmt: skip
def test_client_errors_are_permanent_with_the_vendors_reason(status: int, body: Any, message: str) -> None:
    with pytest.raises(PermanentDeliveryError) as raised:
        call(FakeAdapter(status, body=body))
    assert (raised.value.status, raised.value.vendor_message) == (status, message)


def test_a_vendor_reason_is_bounded_and_never_echoes_an_email() -> None:
    with pytest.raises(PermanentDeliveryError) as raised:
        call(FakeAdapter(422, body={"detail": "raw email jenny@example.com refused " + "x" * 900}))
    assert "jenny@example.com" not in raised.value.vendor_message
    assert len(raised.value.vendor_message or "") == 500


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (requests.ConnectTimeout("connect"), TransientDeliveryError),
        (requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused"))),
         TransientDeliveryError),
        (requests.ReadTimeout("read"), UnansweredDeliveryError),
        (requests.ConnectionError(ProtocolError("Connection aborted.")), UnansweredDeliveryError),
    ],
)  # fmt: skip
def test_network_failures_say_whether_the_vendor_may_have_the_request(
    failure: Exception, expected: type
) -> None:
    # Given a failure before the connection existed (nothing sent) or after the request went
    # out (no answer), Then the error type says which: only the latter is in doubt.
    with pytest.raises(TransientDeliveryError) as raised:
        call(FakeAdapter(raises=failure))
    assert type(raised.value) is expected


# --------------------------------------------------------------------------- dead letters, cold start


def test_a_dead_letter_carries_the_contracts_attributes_within_sqs_limit() -> None:
    """Given a record whose body is no job, when delivered, then it is parked with the producer's
    attributes plus the failure ones (at most 10, SQS's limit) and answered as done."""
    sqs = FakeSqs()
    record = {
        "messageId": "m-1",
        "receiptHandle": "rh-1",
        "body": "not json",
        "attributes": {"ApproximateReceiveCount": "2", "ApproximateFirstReceiveTimestamp": "1767225600000"},
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "String"}
            for name, value in {
                "destination": "scanova",
                "conversion_name": "purchase",
                "conversion_id": "c-1",
                "event_time": "2026-01-01T00:00:00+00:00",
            }.items()
        },
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:relay-ScanovaQueue",
        "awsRegion": "us-east-1",
    }

    answer = deliverer(sqs=sqs).handle({"Records": [record]})

    assert answer == {"batchItemFailures": []}
    (entry,) = sqs.sent
    assert entry["MessageBody"] == "not json"
    attributes = {name: value["StringValue"] for name, value in entry["MessageAttributes"].items()}
    assert len(attributes) <= 10
    assert attributes == {
        "destination": "scanova",
        "conversion_name": "purchase",
        "conversion_id": "c-1",
        "event_time": "2026-01-01T00:00:00+00:00",
        "failure_reason": "malformed_job",
        "failure_message": attributes["failure_message"],
        "attempts": "2",
        "first_failure_at": "2026-01-01T00:00:00+00:00",
        "vendor": "scanova",
    }
    assert "json" in attributes["failure_message"].lower()


@pytest.mark.parametrize(
    "secret", ["other/key", "conversion-relay/scanova-api-key", "conversion-relay/pagent/api-key"]
)
def test_a_secret_outside_the_vendors_namespace_fails_the_cold_start(secret: str) -> None:
    # Given a Scanova destination whose key is not named conversion-relay/scanova/… (IAM would refuse it)
    config = parse_config(
        {
            "destinations": {
                "scanova": parse_destination(
                    {
                        "kind": "scanova",
                        "base_url": "https://x.example.com",
                        "site_id": "s",
                        "api_key_secret": secret,
                    }
                ).model_dump(mode="json")
            }
        }
    )
    # Then the function refuses to start, naming the key by its dotted path
    with pytest.raises(ConfigError) as raised:
        check_secret_names(config, "scanova", "conversion-relay/")
    assert raised.value.problems[0][0] == "destinations.scanova.api_key_secret"
    check_secret_names(config, "pagent", "conversion-relay/")  # other vendors' functions do not care
