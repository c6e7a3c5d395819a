"""relay.ingest.edge: API Gateway HTTP API (v2) events → the exact signed bytes; errors → answers, by type."""

from __future__ import annotations

import json

import pytest
from relay.errors import (
    ClaimInProgressError,
    ConfigError,
    EnqueueError,
    EnrichmentError,
    MalformedSecretError,
    MethodNotAllowedError,
    MissingSignatureError,
    ParkingError,
    PayloadError,
    PayloadTooLargeError,
    SignatureError,
    StaleTimestampError,
    UnsupportedMediaTypeError,
)
from relay.ingest.edge import error_response, respond, webhook_request

from testkit import http_api_event

BODY = '{"id":"evt_1","note":"Zoë ✓"}'.encode()


def test_the_body_is_the_exact_bytes_sent():
    request = webhook_request(
        http_api_event("/webhooks/stripe", BODY, {"Stripe-Signature": "t=1"}), max_body_bytes=1024
    )
    assert request.body == BODY
    assert request.method == "POST"
    assert request.header("STRIPE-SIGNATURE") == "t=1"  # header names are case-insensitive


def test_a_base64_body_is_decoded_to_the_same_bytes():
    # API Gateway base64-encodes bodies it does not treat as text; the signature covers the raw bytes.
    binary = BODY + b"\x00\xff"
    event = http_api_event("/webhooks/stripe", binary, {}, base64_body=True)
    assert event["isBase64Encoded"] is True
    assert webhook_request(event, max_body_bytes=1024).body == binary


def test_invalid_base64_is_a_payload_error():
    event = http_api_event("/webhooks/stripe", BODY, {})
    event.update(isBase64Encoded=True, body="%%% not base64 %%%")
    with pytest.raises(PayloadError, match="not valid base64"):
        webhook_request(event, max_body_bytes=1024)


def test_the_size_limit_applies_to_the_decoded_body():
    exact = b"x" * 100
    assert webhook_request(http_api_event("/p", exact, {}), max_body_bytes=100).body == exact
    with pytest.raises(PayloadTooLargeError, match="101 bytes; the limit is 100"):
        webhook_request(http_api_event("/p", exact + b"y", {}, base64_body=True), max_body_bytes=100)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", ""])
def test_only_post_is_accepted(method):
    event = http_api_event("/webhooks/stripe", BODY, {}, method=method or "POST")
    event["requestContext"]["http"]["method"] = method
    with pytest.raises(MethodNotAllowedError):
        webhook_request(event, max_body_bytes=1024)


@pytest.mark.parametrize("body", [b"", b"   \n"])
def test_an_empty_body_is_a_payload_error(body):
    with pytest.raises(PayloadError, match="empty"):
        webhook_request(http_api_event("/p", body, {}), max_body_bytes=1024)


def test_the_public_url_is_rebuilt_for_signatures_that_cover_it():
    event = http_api_event(
        "/webhooks/hubspot",
        BODY,
        {"X-Forwarded-Proto": "https"},
        query="a=1&b=2",
        domain="abc.execute-api.us-east-1.amazonaws.com",
    )
    request = webhook_request(event, max_body_bytes=1024)
    assert request.public_url == "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/hubspot?a=1&b=2"
    assert request.query == {"a": "1", "b": "2"}


# --- errors → answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            SignatureError("Stripe-Signature v1 signature does not match any of the 2 configured secret(s)"),
            "invalid_signature",
        ),
        (SignatureError("no Paddle signing secret configured"), "invalid_signature"),
        (
            SignatureError("Authorization Basic credentials do not match any configured user"),
            "invalid_signature",
        ),
        (
            MissingSignatureError(
                "missing X-HubSpot-Signature-v3 header (v1/v2 signatures are refused: settings.require_v3)"
            ),
            "missing_signature",
        ),
        (StaleTimestampError("timestamp 301 s old, tolerance 300 s"), "stale_timestamp"),
    ],
)
def test_a_401_says_only_the_kind_of_failure_and_logs_the_detail(error, code, caplog):
    # When a signature check fails for an unauthenticated caller
    answer = error_response(error)
    # Then the answer names the kind of failure with a fixed reason: nothing about the configuration
    assert answer["statusCode"] == 401
    assert json.loads(answer["body"]) == {"error": code, "reason": "invalid signature"}
    # And the detail is in the log for the operator
    (record,) = caplog.records
    assert (record.getMessage(), record.reason) == ("request refused", error.reason)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (PayloadError("bad json"), 400, "malformed_payload"),
        (PayloadTooLargeError("big"), 413, "payload_too_large"),
        (UnsupportedMediaTypeError("xml"), 415, "unsupported_media_type"),
        (MethodNotAllowedError("GET"), 405, "method_not_allowed"),
        (ClaimInProgressError("busy"), 409, "in_progress"),
    ],
)
def test_request_errors_answer_their_own_4xx_with_the_reason(error, status, code):
    answer = error_response(error)
    assert answer["statusCode"] == status
    assert json.loads(answer["body"]) == {"error": code, "reason": error.reason}
    assert answer["headers"]["Content-Type"] == "application/json"


def test_405_names_the_allowed_method_and_409_says_when_to_retry():
    assert error_response(MethodNotAllowedError("GET"))["headers"]["Allow"] == "POST"
    assert error_response(ClaimInProgressError("busy"))["headers"]["Retry-After"] == "5"


def test_queueing_failures_answer_503_so_the_provider_retries():
    answer = error_response(EnqueueError("SQS down"))
    assert answer["statusCode"] == 503
    assert "SQS down" not in answer["body"]  # internals stay in the log


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("boom: secret=abc"),
        ConfigError("no secret"),
        KeyError("k"),
        MalformedSecretError(
            "conversion-relay/stripe-webhook-secret", "the list[0] is not a non-empty string"
        ),
    ],
)
def test_anything_else_answers_500_without_details(error):
    answer = error_response(error)
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"]) == {"error": "internal", "reason": "internal error; retry"}


def test_a_parked_event_that_cannot_be_recorded_answers_503_so_the_provider_retries():
    answer = error_response(ParkingError("parked event not recorded (ClientError)"))
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["error"] == "unavailable"


def test_a_malformed_secret_is_logged_by_its_name_and_problem(caplog):
    # When a request needs a secret whose stored value is malformed
    error = MalformedSecretError(
        "conversion-relay/stripe-webhook-secret", "the list[0] is not a non-empty string"
    )
    error_response(error)
    # Then the operator reads which secret and what is wrong (the error never holds the value)
    (record,) = caplog.records
    assert (record.levelname, record.secret, record.problem) == (
        "ERROR",
        "conversion-relay/stripe-webhook-secret",
        "the list[0] is not a non-empty string",
    )


def test_a_provider_api_outage_answers_503():
    answer = error_response(EnrichmentError("HubSpot CRM answered 502"))
    assert answer["statusCode"] == 503
    assert "502" not in answer["body"]


def test_respond_is_compact_json():
    answer = respond(200, {"status": "ignored", "n": 1})
    assert answer == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": '{"status":"ignored","n":1}',
    }
