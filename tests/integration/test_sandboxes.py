"""Integration tests of the vendor sandboxes: real HTTP on loopback, driven with `requests`.

Every test starts the sandboxes it needs through the `running` fixture, which stops them
afterwards. Tests are written Given / When / Then (in their docstrings).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from sandboxes import (
    FaultPlan,
    PagentSandbox,
    QuickLizardSandbox,
    Sandbox,
    ScalevSandbox,
    ScanovaSandbox,
    start_all,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 5
SCANOVA_KEY = {"X-API-Key": "sk_local_scanova"}
PAGENT_AUTH = {"Authorization": "Bearer pk_local_pagent"}
SCALEV_KEY = {"X-Scalev-Storefront-Api-Key": "sfpk_local_scalev"}
SCALEV_PATH = "/v3/stores/store_local/public/analytics/{provider}/events"
SHA256_OF_EMAIL = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"


# --------------------------------------------------------------------------- payload builders


def scanova_event(**overrides: Any) -> dict[str, Any]:
    event = {
        "site_id": "site_local",
        "event_name": "purchase",
        "scan_session_id": "7ad26d4f-3181-4ef8-b6ca-b8f59499dd43",
        "conversion_value": {"amount": 49.99, "currency": "USD"},
        "properties": {"order_id": "ord_9876", "plan": "pro"},
    }
    return {**event, **overrides}


def pagent_v1_event(**overrides: Any) -> dict[str, Any]:
    return {
        "session_id": "abc123",
        "user_id": "xyz789",
        "conversion_id": "goal-uuid",
        "revenue": 2499,
        **overrides,
    }


def pagent_v2_event(**session_overrides: Any) -> dict[str, Any]:
    session = {"session_id": "abc123", "user_id": "xyz789", "visit_id": "v_456", "conversion_id": "goal-uuid"}
    return {"session_data": {**session, **session_overrides}, "label": "purchase", "revenue": 2499}


def scalev_payload(provider: str, event_id: str | None = None) -> dict[str, Any]:
    event_id = event_id or f"evt_{uuid.uuid4()}"
    items = {"variants": [{"variant_unique_id": "variant_xxx", "quantity": 1}]}
    if provider == "meta":
        return {
            "event_source_url": "https://shop.example.com/products/black-shirt",
            "user_data": {"country": "id", "em": "buyer@example.com", "fbp": "fb.1.1710000000000.1234567890"},
            "events": [{"event_id": event_id, "event_name": "AddToCart", "parameters": {"value": 150000}}],
            **items,
        }
    if provider == "tiktok":
        return {
            "user": {"email": "buyer@example.com", "ttclid": "ttclid_value"},
            "events": [{"event_id": event_id, "event": "CompletePayment", "parameters": {"value": 150000}}],
            **items,
        }
    return {
        "click_id": "snackvideo_click_id",
        "events": [{"event_name": "purchase", "properties": {"value": 150000, "currency": "IDR"}}],
        **items,
    }


def ql_event(event: str = "conversion", **overrides: Any) -> dict[str, Any]:
    base = {"client_key": "ql_local_client", "price": 123.41, "product_id": "123-AA-X23", "event": event}
    if event == "view":
        base["permalink"] = "https://yourstore.com/123-AA-X23/"
    return {**base, "vid": "DASDAS-#CCCC-NA", **overrides}


def post(sandbox: Sandbox, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(sandbox.url + path, json=body, headers=headers, timeout=TIMEOUT)


def post_raw(sandbox: Sandbox, path: str, data: bytes | str, headers: dict[str, str]) -> requests.Response:
    return requests.post(
        sandbox.url + path,
        data=data,
        headers={"Content-Type": "application/json", **headers},
        timeout=TIMEOUT,
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def running() -> Any:
    """Start sandboxes on ephemeral loopback ports; stop them all after the test."""
    started: list[Sandbox] = []

    def start(sandbox: Sandbox) -> Any:
        started.append(sandbox.start())
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def scanova(running: Any) -> ScanovaSandbox:
    return running(ScanovaSandbox())


@pytest.fixture
def pagent(running: Any) -> PagentSandbox:
    return running(PagentSandbox())


@pytest.fixture
def scalev(running: Any) -> ScalevSandbox:
    return running(ScalevSandbox())


@pytest.fixture
def quicklizard(running: Any) -> QuickLizardSandbox:
    return running(QuickLizardSandbox())


@dataclass(frozen=True)
class VendorCase:
    """One valid single-event call per vendor, for the behaviour all sandboxes share."""

    factory: Callable[..., Sandbox]
    path: str
    headers: dict[str, str]
    body: Callable[[], Any]  # a fresh body per call, so deduplicating vendors accept each
    limit_kwarg: str
    error_text: Callable[[Any], str]  # the message, read from the vendor's error shape


VENDORS = {
    "scanova": VendorCase(
        ScanovaSandbox,
        "/server-events",
        SCANOVA_KEY,
        scanova_event,
        "events_per_minute",
        lambda b: b["detail"],
    ),
    "pagent": VendorCase(
        PagentSandbox,
        "/v1/conversions",
        PAGENT_AUTH,
        lambda: {"events": [pagent_v1_event()]},
        "requests_per_minute",
        lambda b: b["error"],
    ),
    "scalev": VendorCase(
        ScalevSandbox,
        SCALEV_PATH.format(provider="meta"),
        SCALEV_KEY,
        lambda: scalev_payload("meta"),
        "requests_per_minute",
        lambda b: b["errors"][0]["message"],
    ),
    "quicklizard": VendorCase(
        QuickLizardSandbox, "/events", {}, lambda: [ql_event()], "requests_per_minute", lambda b: b["error"]
    ),
}


class Vendor:
    """A running sandbox plus a way to send it one valid event."""

    def __init__(self, case: VendorCase, sandbox: Sandbox) -> None:
        self.case = case
        self.sandbox = sandbox

    def send(self, timeout: float = TIMEOUT) -> requests.Response:
        url = self.sandbox.url + self.case.path
        return requests.post(url, json=self.case.body(), headers=self.case.headers, timeout=timeout)

    def control(self, method: str, action: str, body: Any = None) -> requests.Response:
        return requests.request(method, f"{self.sandbox.url}/_sandbox/{action}", json=body, timeout=TIMEOUT)


@pytest.fixture(params=list(VENDORS))
def vendor_case(request: pytest.FixtureRequest) -> VendorCase:
    return VENDORS[request.param]


@pytest.fixture
def vendor(vendor_case: VendorCase, running: Any) -> Vendor:
    """Each vendor's sandbox with its default credentials and limits."""
    return Vendor(vendor_case, running(vendor_case.factory()))


def ok(response: requests.Response) -> bool:
    return response.status_code in (200, 204)


# --------------------------------------------------------------------------- shared behaviour


def test_valid_call_is_accepted_recorded_and_logged(vendor: Vendor) -> None:
    """Given a running sandbox, when a valid event is posted,
    then it is accepted, recorded with its route, and the request is logged."""
    response = vendor.send()

    assert ok(response)
    [event] = vendor.sandbox.accepted()
    assert event["_endpoint"] == vendor.case.path
    [logged] = vendor.sandbox.requests()
    assert logged["method"] == "POST"
    assert logged["path"] == vendor.case.path
    assert logged["status"] == response.status_code
    assert logged["n_events"] == 1
    assert logged["at"] == pytest.approx(time.time(), abs=5)


def test_fail_next_fails_exactly_n_requests(vendor: Vendor) -> None:
    """Given fail_next=2 with status 502, when three valid requests are sent,
    then the first two get 502 (vendor error shape) and only the third is recorded."""
    vendor.sandbox.set_faults(FaultPlan(fail_next=2, error_status=502))

    responses = [vendor.send() for _ in range(3)]

    assert [r.status_code for r in responses[:2]] == [502, 502]
    assert isinstance(vendor.case.error_text(responses[0].json()), str)
    assert ok(responses[2])
    assert len(vendor.sandbox.accepted()) == 1


def test_error_rate_one_fails_everything_and_records_nothing(vendor: Vendor) -> None:
    """Given error_rate=1, when valid requests are sent, then all get 503 and nothing is accepted."""
    vendor.sandbox.set_faults(FaultPlan(error_rate=1.0))

    statuses = [vendor.send().status_code for _ in range(3)]

    assert statuses == [503, 503, 503]
    assert vendor.sandbox.accepted() == []
    assert [r["status"] for r in vendor.sandbox.requests()] == [503, 503, 503]


def test_injected_429_carries_retry_after(vendor: Vendor) -> None:
    """Given rate_429=1 and retry_after=7, when a request is sent, then it gets 429 with Retry-After: 7."""
    vendor.sandbox.set_faults(FaultPlan(rate_429=1.0, retry_after=7))

    response = vendor.send()

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert vendor.sandbox.accepted() == []


def test_latency_delays_the_answer(vendor: Vendor) -> None:
    """Given latency_ms=200, when a valid request is sent, then it succeeds no sooner than 0.2 s."""
    vendor.sandbox.set_faults(FaultPlan(latency_ms=200))

    started = time.monotonic()
    response = vendor.send()

    assert ok(response)
    assert time.monotonic() - started >= 0.2


def test_timeout_fault_outlasts_the_client_timeout(vendor: Vendor) -> None:
    """Given timeout_rate=1 with a 2 s hang, when the client waits 0.3 s,
    then the client times out and nothing is recorded."""
    vendor.sandbox.set_faults(FaultPlan(timeout_rate=1.0, hang_seconds=2))

    with pytest.raises(requests.exceptions.ReadTimeout):
        vendor.send(timeout=0.3)

    assert vendor.sandbox.accepted() == []


def test_timeout_fault_hangs_up_without_answering(vendor: Vendor) -> None:
    """Given timeout_rate=1 with a 0.2 s hang, when the client waits longer,
    then the connection is closed with no answer, logged with status None."""
    vendor.sandbox.set_faults(FaultPlan(timeout_rate=1.0, hang_seconds=0.2))

    with pytest.raises(requests.exceptions.ConnectionError):
        vendor.send(timeout=3)

    assert [r["status"] for r in vendor.sandbox.requests()] == [None]
    assert vendor.sandbox.accepted() == []


def test_seeded_faults_are_reproducible(vendor: Vendor) -> None:
    """Given error_rate=0.5 with a seed, when the same plan is set twice,
    then both runs fail exactly the same requests, and some but not all of them."""
    plan = FaultPlan(error_rate=0.5, seed=42)

    vendor.sandbox.set_faults(plan)
    first = [vendor.send().status_code for _ in range(12)]
    vendor.sandbox.set_faults(plan)
    second = [vendor.send().status_code for _ in range(12)]

    assert first == second
    assert 503 in first
    assert any(status in (200, 204) for status in first)


def test_rate_limit_answers_429_with_retry_after(vendor_case: VendorCase, running: Any) -> None:
    """Given a limit of 2 per minute, when three single-event requests are sent,
    then the third gets 429 with a Retry-After within the window and is not recorded;
    reset() clears the window."""
    sandbox = running(vendor_case.factory(**{vendor_case.limit_kwarg: 2}))
    limited = Vendor(vendor_case, sandbox)

    responses = [limited.send() for _ in range(3)]

    assert all(ok(r) for r in responses[:2])
    assert responses[2].status_code == 429
    assert 1 <= int(responses[2].headers["Retry-After"]) <= 60
    assert "rate limit" in vendor_case.error_text(responses[2].json())
    assert len(sandbox.accepted()) == 2
    sandbox.reset()
    assert ok(limited.send())


def test_oversized_body_gets_413(vendor: Vendor) -> None:
    """Given the 1 MiB body limit, when a larger body is posted, then the answer is 413."""
    response = post_raw(
        vendor.sandbox, vendor.case.path, b"[" + b" " * (1024 * 1024) + b"]", vendor.case.headers
    )

    assert response.status_code == 413
    assert "exceeds" in vendor.case.error_text(response.json())
    assert vendor.sandbox.accepted() == []


def test_control_endpoints_drive_the_sandbox_over_http(vendor: Vendor) -> None:
    """Given a running sandbox, when faults are set and records read over /_sandbox/,
    then they act like the Python API, and reset clears everything."""
    health = vendor.control("GET", "health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["vendor"] == vendor.sandbox.name

    assert vendor.control("POST", "faults", {"fail_next": 1, "error_status": 500}).status_code == 200
    assert vendor.send().status_code == 500
    assert ok(vendor.send())

    assert len(vendor.control("GET", "accepted").json()) == 1
    assert vendor.control("GET", "duplicates").json() == []
    assert vendor.control("GET", "requests").json()[0]["status"] == 500

    assert vendor.control("POST", "reset").status_code == 200
    assert vendor.control("GET", "accepted").json() == []
    assert vendor.control("GET", "requests").json() == []


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        ({"error_rate": 2}, "in 0..1"),
        ({"bogus": 1}, "unknown"),
        ([1], "object"),
        ({"error_status": 200}, "4xx"),
    ],
)
def test_control_rejects_an_invalid_fault_plan(scanova: ScanovaSandbox, plan: Any, reason: str) -> None:
    """Given a running sandbox, when an invalid fault plan is posted, then 400 explains why."""
    response = requests.post(f"{scanova.url}/_sandbox/faults", json=plan, timeout=TIMEOUT)

    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_unknown_routes_and_methods(scanova: ScanovaSandbox) -> None:
    """Given Scanova, when an unknown path or a GET on a POST route is requested,
    then the answers are 404, and 405 with an Allow header."""
    assert requests.post(f"{scanova.url}/nope", json={}, timeout=TIMEOUT).status_code == 404
    assert requests.get(f"{scanova.url}/_sandbox/nope", timeout=TIMEOUT).status_code == 404
    wrong_method = requests.get(f"{scanova.url}/server-events", timeout=TIMEOUT)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "POST"


def test_start_all_runs_every_vendor() -> None:
    """Given start_all, when it returns, then four healthy sandboxes answer on distinct URLs."""
    sandboxes = start_all()
    try:
        assert list(sandboxes) == ["scanova", "pagent", "scalev", "quicklizard"]
        assert len({s.url for s in sandboxes.values()}) == 4
        for name, sandbox in sandboxes.items():
            health = requests.get(f"{sandbox.url}/_sandbox/health", timeout=TIMEOUT).json()
            assert health["vendor"] == name
    finally:
        for sandbox in sandboxes.values():
            sandbox.stop()


def test_cli_prints_urls_and_stops_on_sigterm() -> None:
    """Given `python -m sandboxes`, when it has printed the four URLs and gets SIGTERM,
    then the URLs answer while it runs and it exits cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sandboxes"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        lines = [process.stdout.readline().split() for _ in range(4)]
        urls = dict(lines)
        assert list(urls) == ["scanova", "pagent", "scalev", "quicklizard"]
        assert requests.get(f"{urls['scalev']}/_sandbox/health", timeout=TIMEOUT).json()["vendor"] == "scalev"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()


# --------------------------------------------------------------------------- Scanova


def test_scanova_accepts_the_documented_test_event(scanova: ScanovaSandbox) -> None:
    """Given the documented test event with a known event_id, when it is posted,
    then the answer is 200 accepted with that id, and event_time defaults to receipt."""
    event = scanova_event(event_id="00000000-0000-0000-0000-000000000001", properties={"test": True})

    response = post(scanova, "/server-events", event, SCANOVA_KEY)

    assert response.status_code == 200
    assert response.json() == {"event_id": "00000000-0000-0000-0000-000000000001", "status": "accepted"}
    [stored] = scanova.accepted()
    assert stored["_endpoint"] == "/server-events"
    assert stored["event_name"] == "purchase"
    assert stored["event_time"].endswith("Z")


def test_scanova_generates_an_event_id_when_absent(scanova: ScanovaSandbox) -> None:
    """Given an event without event_id, when it is posted, then a UUID is generated and echoed."""
    response = post(scanova, "/server-events", scanova_event(), SCANOVA_KEY)

    assert response.status_code == 200
    assert uuid.UUID(response.json()["event_id"])
    assert scanova.accepted()[0]["event_id"] == response.json()["event_id"]


def test_scanova_accepts_every_optional_field(scanova: ScanovaSandbox) -> None:
    """Given an event using every optional field correctly (hashed ids, bare digit values),
    when it is posted, then it is accepted."""
    event = scanova_event(
        event_id=str(uuid.uuid4()),
        event_time="2026-01-02T03:04:05Z",
        user_identifiers={"email_hash": SHA256_OF_EMAIL, "phone_hash": SHA256_OF_EMAIL, "external_id": "c_1"},
        properties={"order_number": "4155550100", "items": [{"sku": "A-1"}]},
        consent="granted",
    )

    assert post(scanova, "/server-events", event, SCANOVA_KEY).status_code == 200


def test_scanova_repeated_event_id_is_a_duplicate(scanova: ScanovaSandbox) -> None:
    """Given an accepted event, when the same event_id is sent again,
    then the answer is 200 "duplicate" and it is counted once, as a duplicate."""
    event = scanova_event(event_id="550E8400-E29B-41D4-A716-446655440000")
    post(scanova, "/server-events", event, SCANOVA_KEY)

    again = post(scanova, "/server-events", event, SCANOVA_KEY)

    assert again.status_code == 200
    assert again.json() == {"event_id": "550e8400-e29b-41d4-a716-446655440000", "status": "duplicate"}
    assert len(scanova.accepted()) == 1
    assert len(scanova.duplicates()) == 1


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, scanova_event(), 401),
        ({"X-API-Key": "sk_revoked"}, scanova_event(), 403),
        (SCANOVA_KEY, scanova_event(site_id="site_other"), 403),
    ],
    ids=["missing-key", "unknown-key", "foreign-site"],
)
def test_scanova_auth_errors(scanova: ScanovaSandbox, headers: dict, body: dict, status: int) -> None:
    """Given a missing key, an unknown key or another site's site_id, when an event is posted,
    then the documented status comes back with a FastAPI {"detail": "..."} body."""
    response = post(scanova, "/server-events", body, headers)

    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)
    assert scanova.accepted() == []


def test_scanova_missing_field_matches_the_documented_422(scanova: ScanovaSandbox) -> None:
    """Given an event without scan_session_id, when it is posted, then the body is the documented 422."""
    event = scanova_event()
    del event["scan_session_id"]

    response = post(scanova, "/server-events", event, SCANOVA_KEY)

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {"loc": ["body", "scan_session_id"], "msg": "field required", "type": "value_error.missing"}
        ]
    }


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"scan_session_id": "7ad26d4f-..."}, ["body", "scan_session_id"]),
        ({"event_id": "retry-1"}, ["body", "event_id"]),
        ({"event_name": None}, ["body", "event_name"]),
        ({"event_time": "yesterday"}, ["body", "event_time"]),
        ({"conversion_value": {"amount": 1, "currency": "US"}}, ["body", "conversion_value", "currency"]),
        ({"conversion_value": {"amount": 1, "currency": "usd"}}, ["body", "conversion_value", "currency"]),
        (
            {"conversion_value": {"amount": "49.99", "currency": "USD"}},
            ["body", "conversion_value", "amount"],
        ),
        (
            {"user_identifiers": {"email_hash": "buyer@example.com"}},
            ["body", "user_identifiers", "email_hash"],
        ),
        ({"user_identifiers": {"email": "buyer@example.com"}}, ["body", "user_identifiers", "email"]),
        ({"properties": {"note": "x" * 10_300}}, ["body", "properties"]),
        ({"properties": {"buyer": {"contact": "buyer@example.com"}}}, ["body", "properties"]),
        ({"properties": {"phone": "+1 (415) 555-0100"}}, ["body", "properties"]),
        ({"consent": "yes"}, ["body", "consent"]),
    ],
)
def test_scanova_rejects_invalid_events_with_422(scanova: ScanovaSandbox, overrides: dict, loc: list) -> None:
    """Given an event breaking one documented rule, when it is posted,
    then the answer is 422 locating the field, and nothing is recorded."""
    response = post(scanova, "/server-events", scanova_event(**overrides), SCANOVA_KEY)

    assert response.status_code == 422
    assert loc in [problem["loc"] for problem in response.json()["detail"]]
    assert scanova.accepted() == []


def test_scanova_invalid_json_is_a_422(scanova: ScanovaSandbox) -> None:
    """Given a body that is not JSON, when it is posted, then the answer is a FastAPI-style 422."""
    response = post_raw(scanova, "/server-events", "{not json", SCANOVA_KEY)

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "value_error.jsondecode"


def test_scanova_batch_rejects_invalid_events_one_by_one(scanova: ScanovaSandbox) -> None:
    """Given a batch of a valid, an invalid and a repeated event, when it is posted,
    then each gets its own status and only the valid one is recorded."""
    event_id = str(uuid.uuid4())
    events = [
        scanova_event(event_id=event_id),
        scanova_event(scan_session_id="3b5e1234-..."),
        scanova_event(event_id=event_id),
    ]

    response = post(scanova, "/server-events/batch", {"events": events}, SCANOVA_KEY)

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "duplicate"]
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    assert body["results"][1]["detail"][0]["loc"] == ["body", "events", 1, "scan_session_id"]
    [stored] = scanova.accepted()
    assert stored["_endpoint"] == "/server-events/batch"
    assert len(scanova.duplicates()) == 1


@pytest.mark.parametrize(("count", "status"), [(0, 422), (1, 200), (100, 200), (101, 422)])
def test_scanova_batch_size_limits(scanova: ScanovaSandbox, count: int, status: int) -> None:
    """Given a batch of `count` events, when it is posted, then 1..100 pass and others get 422."""
    response = post(scanova, "/server-events/batch", {"events": [scanova_event()] * count}, SCANOVA_KEY)

    assert response.status_code == status
    if status == 422:
        assert response.json()["detail"][0]["loc"] == ["body", "events"]
    assert len(scanova.accepted()) == (count if status == 200 else 0)


def test_scanova_batch_with_a_foreign_site_is_forbidden(scanova: ScanovaSandbox) -> None:
    """Given a batch naming another site in one event, when it is posted, then the whole batch is 403."""
    events = [scanova_event(), scanova_event(site_id="site_other")]

    response = post(scanova, "/server-events/batch", {"events": events}, SCANOVA_KEY)

    assert response.status_code == 403
    assert scanova.accepted() == []


def test_scanova_rate_limit_counts_events_not_requests(running: Any) -> None:
    """Given a limit of 5 events per minute, when batches of 3 then singles are sent,
    then the batch that would exceed 5 events is refused whole with Retry-After."""
    scanova = running(ScanovaSandbox(events_per_minute=5))
    batch = {"events": [scanova_event()] * 3}

    first = post(scanova, "/server-events/batch", batch, SCANOVA_KEY)
    second = post(scanova, "/server-events/batch", batch, SCANOVA_KEY)
    singles = [post(scanova, "/server-events", scanova_event(), SCANOVA_KEY) for _ in range(3)]

    assert first.status_code == 200
    assert second.status_code == 429
    assert 1 <= int(second.headers["Retry-After"]) <= 60
    assert [r.status_code for r in singles] == [200, 200, 429]
    assert len(scanova.accepted()) == 5


# --------------------------------------------------------------------------- pagent


def test_pagent_v1_batch_is_accepted(pagent: PagentSandbox) -> None:
    """Given two v1 events, when they are posted, then {"accepted": 2} and both are recorded with a time."""
    events = [pagent_v1_event(), pagent_v1_event(session_id="sess_002", properties=[{"sku": "A"}])]

    response = post(pagent, "/v1/conversions", {"events": events}, PAGENT_AUTH)

    assert response.status_code == 200
    assert response.json() == {"accepted": 2}
    stored = pagent.accepted()
    assert [e["session_id"] for e in stored] == ["abc123", "sess_002"]
    assert all(e["_endpoint"] == "/v1/conversions" and isinstance(e["time"], int) for e in stored)


def test_pagent_v2_single_and_bulk_are_accepted(pagent: PagentSandbox) -> None:
    """Given v2 events with session_data, when posted singly and in bulk, then all are accepted."""
    single = post(pagent, "/v2/conversions", pagent_v2_event(), PAGENT_AUTH)
    bulk = post(
        pagent, "/v2/conversions/bulk", {"events": [pagent_v2_event(), pagent_v2_event()]}, PAGENT_AUTH
    )

    assert single.json() == {"accepted": 1}
    assert bulk.json() == {"accepted": 2}
    assert [e["_endpoint"] for e in pagent.accepted()] == ["/v2/conversions"] + ["/v2/conversions/bulk"] * 2
    assert pagent.accepted()[0]["session_data"]["visit_id"] == "v_456"


def test_pagent_accepts_nulls_like_its_python_example(pagent: PagentSandbox) -> None:
    """Given the documented Python example's event with label and revenue None, when posted, then 200."""
    event = pagent_v1_event(label=None, revenue=None)

    assert post(pagent, "/v1/conversions", {"events": [event]}, PAGENT_AUTH).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "pk_local_pagent"}, {"Authorization": "Bearer pk_expired"}],
    ids=["missing", "no-bearer", "unknown-key"],
)
def test_pagent_auth_errors_are_401(pagent: PagentSandbox, headers: dict) -> None:
    """Given a missing, malformed or unknown key, when events are posted, then 401 {"error": "..."}."""
    response = post(pagent, "/v1/conversions", {"events": [pagent_v1_event()]}, headers)

    assert response.status_code == 401
    assert isinstance(response.json()["error"], str)
    assert pagent.accepted() == []


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        (
            "/v1/conversions",
            {"events": [pagent_v1_event(), pagent_v1_event(revenue=9.99)]},
            "events[1].revenue",
        ),
        ("/v1/conversions", {"events": [pagent_v1_event(conversion_id=None)]}, "events[0].conversion_id"),
        ("/v1/conversions", {"events": [pagent_v1_event(properties="x")]}, "events[0].properties"),
        ("/v1/conversions", {"events": []}, "events"),
        ("/v1/conversions", {"events": [pagent_v1_event()] * 101}, "events"),
        ("/v2/conversions", pagent_v2_event(user_id=""), "session_data.user_id"),
        ("/v2/conversions", pagent_v1_event(), "session_data"),
        ("/v2/conversions/bulk", {"events": [pagent_v2_event(), pagent_v2_event(session_id=3)]}, "events[1]"),
    ],
)
def test_pagent_invalid_request_is_400_naming_the_field(
    pagent: PagentSandbox, path: str, body: dict, named: str
) -> None:
    """Given a request with one invalid event, when it is posted,
    then the whole request is 400 with an error naming the field and index, and nothing is recorded."""
    response = post(pagent, path, body, PAGENT_AUTH)

    assert response.status_code == 400
    assert named in response.json()["error"]
    assert pagent.accepted() == []


def test_pagent_accepts_exactly_100_events(pagent: PagentSandbox) -> None:
    """Given 100 events, when they are posted, then all are accepted."""
    response = post(pagent, "/v1/conversions", {"events": [pagent_v1_event()] * 100}, PAGENT_AUTH)

    assert response.json() == {"accepted": 100}


def test_pagent_invalid_json_is_400(pagent: PagentSandbox) -> None:
    """Given a body that is not JSON, when it is posted, then 400 {"error": "invalid JSON..."}."""
    response = post_raw(pagent, "/v1/conversions", "{", PAGENT_AUTH)

    assert response.status_code == 400
    assert "invalid JSON" in response.json()["error"]


def test_pagent_records_every_copy(pagent: PagentSandbox) -> None:
    """Given pagent does not deduplicate, when the same event is sent twice, then both copies are recorded."""
    body = {"events": [pagent_v1_event()]}
    post(pagent, "/v1/conversions", body, PAGENT_AUTH)
    post(pagent, "/v1/conversions", body, PAGENT_AUTH)

    assert len(pagent.accepted()) == 2
    assert pagent.duplicates() == []


# --------------------------------------------------------------------------- Scalev


@pytest.mark.parametrize("provider", ["meta", "tiktok", "snackvideo"])
def test_scalev_accepts_each_provider_with_204(scalev: ScalevSandbox, provider: str) -> None:
    """Given a documented payload for a provider, when it is posted,
    then the answer is 204 with no body, and the event is recorded with the shared fields."""
    response = post(scalev, SCALEV_PATH.format(provider=provider), scalev_payload(provider), SCALEV_KEY)

    assert response.status_code == 204
    assert response.content == b""
    [stored] = scalev.accepted()
    assert stored["_provider"] == provider
    assert stored["_endpoint"] == SCALEV_PATH.format(provider=provider)
    assert stored["variants"] == [{"variant_unique_id": "variant_xxx", "quantity": 1}]


@pytest.mark.parametrize(
    ("store", "headers", "status"),
    [
        ("store_local", {}, 401),
        ("store_local", {"X-Scalev-Storefront-Api-Key": "sfpk_other"}, 401),
        ("store_missing", SCALEV_KEY, 404),
    ],
    ids=["missing-key", "wrong-key", "unknown-store"],
)
def test_scalev_auth_errors(scalev: ScalevSandbox, store: str, headers: dict, status: int) -> None:
    """Given a missing or wrong key, or an unknown store, when an event is posted,
    then 401 or 404 with an {"errors": [{"field": null, "message"}]} body."""
    path = f"/v3/stores/{store}/public/analytics/meta/events"

    response = post(scalev, path, scalev_payload("meta"), headers)

    assert response.status_code == status
    assert response.json()["errors"][0]["field"] is None
    assert scalev.accepted() == []


def test_scalev_rejects_another_stores_key(running: Any) -> None:
    """Given two stores, when store A is called with store B's key, then 401."""
    scalev = running(ScalevSandbox(stores={"store_a": "sfpk_a", "store_b": "sfpk_b"}))

    path = "/v3/stores/store_a/public/analytics/meta/events"

    response = post(scalev, path, scalev_payload("meta"), {"X-Scalev-Storefront-Api-Key": "sfpk_b"})

    assert response.status_code == 401


def scalev_changed(provider: str, **changes: Any) -> dict[str, Any]:
    """A valid payload for provider with some keys replaced (or, with None, removed)."""
    payload = {**scalev_payload(provider), **changes}
    return {key: value for key, value in payload.items() if value is not None}


@pytest.mark.parametrize(
    ("provider", "payload", "field"),
    [
        ("meta", scalev_changed("meta", events=[{"event_name": "Purchase"}]), "events[0].event_id"),
        ("meta", scalev_changed("meta", events=[]), "events"),
        ("meta", scalev_changed("meta", events=None), "events"),
        ("meta", scalev_changed("meta", user_data={"email": "a@b.co"}), "user_data.email"),
        (
            "meta",
            scalev_changed("meta", variants=[{"variant_unique_id": "v", "quantity": 0}]),
            "variants[0].quantity",
        ),
        (
            "meta",
            scalev_changed("meta", bundle_price_options=[{"quantity": 1}]),
            "bundle_price_options[0].bundle_price_option_unique_id",
        ),
        ("meta", scalev_changed("meta", event_source_url="shop"), "event_source_url"),
        (
            "tiktok",
            scalev_changed("tiktok", events=[{"event_id": "e", "event_name": "X"}]),
            "events[0].event",
        ),
        ("tiktok", scalev_changed("tiktok", user={"em": "a@b.co"}), "user.em"),
        ("snackvideo", scalev_changed("snackvideo", click_id=None), "click_id"),
        ("snackvideo", scalev_changed("snackvideo", events=[{"properties": {}}]), "events[0].event_name"),
    ],
)
def test_scalev_invalid_payload_is_422(
    scalev: ScalevSandbox, provider: str, payload: dict, field: str
) -> None:
    """Given a payload breaking the documented shape, when it is posted,
    then 422 lists the field in {"errors": [{"field", "message"}]} and nothing is recorded."""
    response = post(scalev, SCALEV_PATH.format(provider=provider), payload, SCALEV_KEY)

    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert scalev.accepted() == []


def test_scalev_invalid_json_is_400(scalev: ScalevSandbox) -> None:
    """Given a body that is not JSON, when it is posted, then 400 in the errors shape."""
    response = post_raw(scalev, SCALEV_PATH.format(provider="meta"), "nope", SCALEV_KEY)

    assert response.status_code == 400
    assert "invalid JSON" in response.json()["errors"][0]["message"]


def test_scalev_dedupes_meta_and_tiktok_per_provider_but_not_snackvideo(scalev: ScalevSandbox) -> None:
    """Given one event_id sent twice to Meta and once to TikTok, and a SnackVideo event sent twice,
    then Meta keeps one copy (one duplicate), TikTok keeps its own, SnackVideo keeps both."""
    for provider in ("meta", "meta", "tiktok"):
        path = SCALEV_PATH.format(provider=provider)
        assert (
            post(scalev, path, scalev_payload(provider, "order_1-Purchase-FORM"), SCALEV_KEY).status_code
            == 204
        )
    for _ in range(2):
        post(scalev, SCALEV_PATH.format(provider="snackvideo"), scalev_payload("snackvideo"), SCALEV_KEY)

    assert [e["_provider"] for e in scalev.accepted()] == ["meta", "tiktok", "snackvideo", "snackvideo"]
    [duplicate] = scalev.duplicates()
    assert (duplicate["_provider"], duplicate["event_id"]) == ("meta", "order_1-Purchase-FORM")


# --------------------------------------------------------------------------- QuickLizard


def test_quicklizard_processes_view_and_conversion_events(quicklizard: QuickLizardSandbox) -> None:
    """Given a view and a conversion sent as in the documents' curl (no Content-Type),
    when posted, then both are processed and recorded."""
    events = [ql_event("view"), ql_event("conversion", price=92)]

    response = requests.post(f"{quicklizard.url}/events", data=json.dumps(events), timeout=TIMEOUT)

    assert response.status_code == 200
    assert response.json() == {"processed": events, "failed": [], "errors": []}
    assert [e["event"] for e in quicklizard.accepted()] == ["view", "conversion"]
    assert quicklizard.accepted()[0]["_endpoint"] == "/events"


@pytest.mark.parametrize(
    ("bad_event", "mentions"),
    [
        (ql_event(price="123.41"), "price"),
        (ql_event("view", permalink=None), "permalink"),
        (ql_event(client_key="ql_someone_else"), "unknown client_key"),
        (ql_event(event="purchase"), "event"),
        ({k: v for k, v in ql_event().items() if k != "product_id"}, "product_id"),
        ("not an object", "object"),
    ],
)
def test_quicklizard_fails_bad_events_one_by_one(
    quicklizard: QuickLizardSandbox, bad_event: Any, mentions: str
) -> None:
    """Given a valid event followed by an invalid one, when posted,
    then the valid one is processed and the invalid one failed, with an error at index 1."""
    good = ql_event()

    response = post(quicklizard, "/events", [good, bad_event])

    assert response.status_code == 200
    body = response.json()
    assert body["processed"] == [good]
    assert body["failed"] == [bad_event]
    [error] = body["errors"]
    assert error["index"] == 1
    assert mentions in error["error"]
    assert len(quicklizard.accepted()) == 1


@pytest.mark.parametrize("data", ['{"client_key": "ql_local_client"}', "[{"], ids=["not-array", "not-json"])
def test_quicklizard_body_must_be_a_json_array(quicklizard: QuickLizardSandbox, data: str) -> None:
    """Given a body that is not a JSON array, when posted, then 400 {"error": "..."}."""
    response = requests.post(f"{quicklizard.url}/events", data=data, timeout=TIMEOUT)

    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)


def test_quicklizard_records_every_copy(quicklizard: QuickLizardSandbox) -> None:
    """Given QuickLizard does not deduplicate, when the same conversion is sent twice,
    then both copies are recorded."""
    post(quicklizard, "/events", [ql_event()])
    post(quicklizard, "/events", [ql_event()])

    assert len(quicklizard.accepted()) == 2
    assert quicklizard.duplicates() == []
