"""The local HTTP API (local.apigw): events shaped as API Gateway HTTP API v2 sends them,
answers mapped back as it maps them, and its own 404/500 answers. Stub functions, real HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import textwrap
import time

import pytest
import requests

from local.apigw import HttpApi, Route
from local.runtime import FunctionRuntime, lambda_environment

pytestmark = pytest.mark.e2e

FUNCTIONS = {
    # Answers with the event it received, so the test can look at it.
    "Echo": """
        import json

        def lambda_handler(event, context):
            headers = {"Content-Type": "application/json"}
            return {"statusCode": 200, "headers": headers, "body": json.dumps(event)}
    """,
    # Answers a bare JSON value (no statusCode): API Gateway makes it a 200 JSON body.
    "Bare": "def lambda_handler(event, context):\n    return {'hello': 'world'}\n",
    "Crash": "def lambda_handler(event, context):\n    raise RuntimeError('boom')\n",
    # A slow cold start (init takes 1.5 s), answering when its handler ran and what arrived.
    "SlowStart": """
        import json
        import time

        time.sleep(1.5)

        def lambda_handler(event, context):
            ran_ms = int(time.time() * 1000)
            return {"statusCode": 200, "body": json.dumps({"ran_ms": ran_ms, "event": event})}
    """,
    "Binary": """
        import base64

        def lambda_handler(event, context):
            return {
                "statusCode": 201,
                "headers": {"Content-Type": "image/png"},
                "cookies": ["a=1; Path=/", "b=2"],
                "body": base64.b64encode(bytes(range(256))).decode(),
                "isBase64Encoded": True,
            }
    """,
}
ROUTES = [
    Route("POST", "/echo", "Echo"),
    Route("GET", "/bare", "Bare"),
    Route("POST", "/crash", "Crash"),
    Route("GET", "/binary", "Binary"),
    Route("POST", "/slow", "SlowStart"),
]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("functions")
    runtimes = {}
    for name, code in FUNCTIONS.items():
        (root / name).mkdir()
        (root / name / "app.py").write_text(textwrap.dedent(code))
        environment = lambda_environment(
            logical_id=name,
            function_name=name,
            code_uri=root / name,
            handler="app.lambda_handler",
            variables={},
            region="us-east-1",
        )
        runtimes[name] = FunctionRuntime(
            logical_id=name,
            function_name=name,
            environment=environment,
            timeout_seconds=5,
            region="us-east-1",
            account_id="123456789012",
        )
    answers = []
    api = HttpApi(
        ROUTES,
        runtimes,
        account_id="123456789012",
        local_endpoints={"hello": lambda: {"local": True}},
        on_answer=lambda route, invocation, answer: answers.append((route.key, answer.status)),
    ).start("127.0.0.1", 0)
    api.answers = answers
    yield api
    api.stop()
    for runtime in runtimes.values():
        runtime.close()


def test_a_json_request_becomes_an_http_api_v2_event(api):
    """Given a POST with a repeated query parameter, cookies and a JSON body,
    When it reaches the function,
    Then the event is shaped as API Gateway HTTP API payload 2.0."""
    body = b'{"id": "evt_1", "amount": 4999}'
    before_ms = int(time.time() * 1000)

    answer = requests.post(
        f"{api.url}/echo?a=1&a=2&b=x%20y",
        data=body,
        headers={"Content-Type": "application/json", "User-Agent": "Stripe/1.0", "Cookie": "c1=v1; c2=v2"},
        timeout=10,
    )

    assert answer.status_code == 200
    assert answer.headers["apigw-requestid"]
    event = answer.json()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /echo"
    assert event["rawPath"] == "/echo"
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["user-agent"] == "Stripe/1.0"
    assert event["headers"]["x-forwarded-proto"] == "https"
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert all(name == name.lower() for name in event["headers"])
    assert event["isBase64Encoded"] is False
    assert event["body"] == body.decode()
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/echo",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "Stripe/1.0",
    }
    assert context["routeKey"] == "POST /echo"
    assert context["stage"] == "$default"
    assert context["domainName"] == api.url.removeprefix("http://")
    assert context["accountId"] == "123456789012"
    assert context["requestId"] == answer.headers["apigw-requestid"]
    assert context["timeEpoch"] >= before_ms


def test_repeated_headers_are_joined_with_commas(api):
    """Given a request that repeats a header, When it reaches the function, Then the values are joined."""

    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    connection.putrequest("POST", "/echo")
    for value in ("one", "two"):
        connection.putheader("X-Repeated", value)
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", "2")
    connection.endheaders(b"{}")
    event = json.loads(connection.getresponse().read())
    connection.close()

    assert event["headers"]["x-repeated"] == "one,two"
    assert "queryStringParameters" not in event and "cookies" not in event


def test_a_binary_body_arrives_base64_encoded(api):
    """Given a body that is not text, When it reaches the function, Then it is base64 and flagged so."""
    payload = bytes(range(256))

    event = requests.post(
        f"{api.url}/echo", data=payload, headers={"Content-Type": "application/octet-stream"}, timeout=10
    ).json()

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_a_function_answer_is_mapped_like_api_gateway(api):
    """Given functions answering a bare value and a base64 body with cookies,
    When they are called,
    Then the bare value is a 200 JSON body, and the binary answer keeps its status, bytes and cookies."""
    bare = requests.get(f"{api.url}/bare", timeout=10)
    binary = requests.get(f"{api.url}/binary", timeout=10)

    assert bare.status_code == 200
    assert bare.headers["Content-Type"] == "application/json"
    assert bare.json() == {"hello": "world"}
    assert binary.status_code == 201
    assert binary.content == bytes(range(256))
    assert binary.headers["Content-Type"] == "image/png"
    assert binary.cookies.get("a") == "1" and binary.cookies.get("b") == "2"


def test_api_gateway_answers_of_its_own(api):
    """Given no route for a path or a method, and a function that raises,
    When they are called,
    Then the answers are API Gateway's 404 Not Found and 500 Internal Server Error bodies."""
    unknown = requests.post(f"{api.url}/nowhere", data=b"{}", timeout=10)
    wrong_method = requests.get(f"{api.url}/echo", timeout=10)
    crash = requests.post(f"{api.url}/crash", data=b"{}", timeout=10)

    assert (unknown.status_code, unknown.json()) == (404, {"message": "Not Found"})
    assert (wrong_method.status_code, wrong_method.json()) == (404, {"message": "Not Found"})
    assert (crash.status_code, crash.json()) == (500, {"message": "Internal Server Error"})
    assert ("POST /crash", 500) in api.answers


def test_local_endpoints_answer_json(api):
    """Given a local endpoint, When GET /_local/<name> is called, Then its JSON comes back."""
    answer = requests.get(f"{api.url}/_local/hello", timeout=10)

    assert answer.json() == {"local": True}
    assert requests.get(f"{api.url}/_local/missing", timeout=10).status_code == 404


def test_time_epoch_is_when_the_request_arrived_not_when_a_cold_function_ran(api):
    """Given a function whose cold start takes 1.5 s,
    When a request reaches it,
    Then requestContext.timeEpoch is the time the request arrived, as API Gateway records it,
    so a signature's age is not inflated by the cold start (relay.ingest.edge.arrival)."""
    sent_ms = int(time.time() * 1000)
    answer = requests.post(f"{api.url}/slow", data=b"{}", timeout=30).json()
    arrived_ms = answer["event"]["requestContext"]["timeEpoch"]
    assert sent_ms <= arrived_ms
    assert answer["ran_ms"] - arrived_ms >= 1500
