"""`relay try`: a payload's conversions and the exact vendor requests, offline and unsent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay_cli.main import main
from testkit import (
    ATTRIBUTION_METADATA,
    LOCAL_STRIPE_SECRET,
    checkout_session,
    signed_stripe_http_event,
    stripe_event,
)

REPO = Path(__file__).resolve().parents[2]
CHECKOUT = REPO / "events" / "stripe" / "checkout_session_completed.json"


def relay_try(capsys, *args: str) -> tuple[int, str]:
    code = main(["try", *map(str, args)])
    return code, capsys.readouterr().out


def as_json(capsys, *args: str) -> dict:
    code, out = relay_try(capsys, *args, "--json")
    assert code == 0
    return json.loads(out)


def destinations(document: dict) -> dict[str, dict]:
    (event,) = document["events"]
    (conversion,) = event["conversions"]
    return {d["destination"]: d for d in conversion["destinations"]}


def test_a_sample_prints_each_vendor_request_with_credentials_redacted(capsys):
    # Given the committed checkout sample, When it is tried with the local config
    code, out = relay_try(capsys, CHECKOUT)
    # Then each destination's request is shown as the vendor client builds it, keys redacted
    assert code == 0
    assert "POST http://127.0.0.1:4101/server-events" in out
    assert "X-API-Key: <redacted: conversion-relay/scanova/api-key>" in out
    assert "Authorization: Bearer <redacted: conversion-relay/pagent/api-key>" in out
    assert "POST http://127.0.0.1:4103/v3/stores/store_local/public/analytics/meta/events" in out
    assert '"event_id": "pi_3MtwBwLkdIwHu7ix28a3tqPa-Purchase-FORM"' in out
    # and the identity only hashed: the sample's customer is Jenny.Rosen@Example.com
    assert "jenny" not in out.lower() and "616" not in out.replace("1616", "")
    assert "72db2c2a5fb4bc735ccece2ce379cc6c47662d2a419916f82d5c289e48f290eb" in out  # her hashed email


def test_quicklizard_says_it_needs_stripe_line_items_instead_of_calling_stripe(capsys):
    document = as_json(capsys, CHECKOUT)

    quicklizard = destinations(document)["quicklizard"]

    assert quicklizard["outcome"] == "needs_provider_api"
    assert quicklizard["request"]["method"] == "GET"
    assert quicklizard["request"]["url"].endswith("/v1/checkout/sessions/cs_test_a1b2c3/line_items")
    assert (
        quicklizard["request"]["headers"]["Authorization"]
        == "Bearer <redacted: conversion-relay/quicklizard/stripe-api-key>"
    )


def test_a_missing_attribution_id_is_a_skip_with_what_would_fix_it(tmp_path, capsys):
    # Given a raw Stripe payload whose checkout has no scan_session_id
    metadata = {k: v for k, v in ATTRIBUTION_METADATA.items() if k != "scan_session_id"}
    payload = stripe_event(
        "checkout.session.completed", checkout_session(metadata=metadata), event_id="evt_x"
    )
    file = tmp_path / "checkout.json"
    file.write_text(json.dumps(payload))
    # When it is tried (the provider guessed from its shape)
    document = as_json(capsys, file)
    # Then Scanova is skipped, the fix names the metadata and the path the config reads
    scanova = destinations(document)["scanova"]
    assert (scanova["outcome"], scanova["reason"]) == ("skipped", "missing_scan_session_id")
    assert "checkout session's metadata" in scanova["fix"]
    assert "data.object.metadata.scan_session_id" in scanova["fix"]
    assert destinations(document)["pagent"]["outcome"] == "request"


def test_quicklizard_client_key_in_the_body_is_never_a_credential(capsys):
    # Given a sample whose lines are in the event (an invoice), When tried
    document = as_json(capsys, REPO / "events" / "stripe" / "invoice_paid.json")
    # Then QuickLizard's request carries the secret's name in place of the client key
    request = destinations(document)["quicklizard"]["request"]
    assert request["url"] == "http://127.0.0.1:4104/events"
    assert {line["client_key"] for line in request["body"]} == {
        "<redacted: conversion-relay/quicklizard/client-key>"
    }


def test_with_the_deploy_config_a_test_mode_sample_is_ignored_with_the_fix(capsys):
    document = as_json(capsys, CHECKOUT, "--config", "config/deploy/relay.yaml")

    (event,) = document["events"]
    assert (event["status"], event["reason"]) == ("ignored", "test_mode_not_allowed")
    assert "allow_test_mode: true" in event["fix"]


@pytest.mark.parametrize(
    ("secret", "fresh", "verdict"),
    [
        ("whsec_wrong", True, "refused: invalid_signature"),
        (LOCAL_STRIPE_SECRET, False, "refused: stale_timestamp"),  # the committed file: signed 2026-01-01
        (LOCAL_STRIPE_SECRET, True, "valid"),
    ],
    ids=["wrong-secret", "recorded-request", "signed-now"],
)
def test_the_signature_is_checked_only_with_a_secret(tmp_path, capsys, secret, fresh, verdict):
    file = CHECKOUT
    if fresh:
        file = tmp_path / "fresh.json"
        event = stripe_event("checkout.session.completed", checkout_session(), event_id="evt_fresh")
        file.write_text(json.dumps(signed_stripe_http_event(event)))

    document = as_json(capsys, file, "--secret", secret)

    assert document["signature"].startswith(verdict)
    refused = verdict != "valid"
    assert (document["events"][0]["status"] == "refused") is refused


def test_an_sqs_event_of_delivery_jobs_shows_each_jobs_request(capsys):
    document = as_json(capsys, REPO / "events" / "sqs" / "scanova.json")

    requests = [c["destinations"][0]["request"] for e in document["events"] for c in e["conversions"]]
    assert document["kind"] == "jobs" and len(requests) == len(document["events"]) > 1
    assert {r["url"] for r in requests} == {"http://127.0.0.1:4101/server-events"}


def test_a_raw_payload_of_unknown_provider_asks_for_source(tmp_path, capsys):
    file = tmp_path / "payload.json"
    file.write_text('{"hello": "world"}')

    code = main(["try", str(file)])

    assert code == 1
    assert "give --source" in capsys.readouterr().err
