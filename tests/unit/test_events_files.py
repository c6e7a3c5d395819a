"""events/: the committed sample events are exactly what `python -m testkit.samples` generates, are signed
with the documented local secret, and events/env.json only sets variables SAM will pass on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import stripe
from relay.ingest.signatures import verify_stripe

from local.world import load_template
from testkit import FIXED_TIMESTAMP, LOCAL_STRIPE_SECRET

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
COMMITTED = sorted((EVENTS / "stripe").glob("*.json"))


def test_there_are_committed_stripe_events():
    assert {p.stem for p in COMMITTED} >= {
        "checkout_session_completed",
        "checkout_session_async_payment_succeeded",
        "payment_intent_succeeded",
        "invoice_paid",
        "invoice_paid_renewal",
        "customer_subscription_created_trial",
    }


def test_the_committed_events_are_what_the_generator_writes(tmp_path):
    # Given a fresh regeneration into an empty directory (the module's real command line)
    subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "testkit.samples", str(tmp_path)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    )
    # Then the same files, byte for byte
    generated = sorted((tmp_path / "stripe").glob("*.json"))
    assert [p.name for p in generated] == [p.name for p in COMMITTED]
    for fresh, committed in zip(generated, COMMITTED, strict=True):
        assert fresh.read_bytes() == committed.read_bytes(), (
            f"{committed.name}: run `python -m testkit.samples`"
        )


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_each_event_is_an_api_gateway_post_signed_with_the_local_secret(path):
    event = json.loads(path.read_text(encoding="utf-8"))
    assert (event["version"], event["rawPath"], event["requestContext"]["http"]["method"]) == (
        "2.0",
        "/webhooks/stripe",
        "POST",
    )
    body = event["body"].encode("utf-8")
    header = event["headers"]["stripe-signature"]
    # Signed at the fixed timestamp: valid with the age check off, by our check and by Stripe's SDK
    assert verify_stripe(body, header, [LOCAL_STRIPE_SECRET], tolerance=0) == FIXED_TIMESTAMP
    assert stripe.WebhookSignature.verify_header(body, header, LOCAL_STRIPE_SECRET, tolerance=None)
    stripe_event = json.loads(body)
    assert stripe_event["object"] == "event" and stripe_event["livemode"] is False
    assert int(event["headers"]["content-length"]) == len(body)


def test_env_json_only_sets_variables_the_template_declares():
    # `sam local invoke --env-vars` ignores variables a function does not declare: a key here that
    # the template lacks would silently do nothing.
    template = load_template()
    declared_globally = set(template["Globals"]["Function"]["Environment"]["Variables"])
    env = json.loads((EVENTS / "env.json").read_text(encoding="utf-8"))
    assert "StripeWebhookFunction" in env
    for function, variables in env.items():
        resource = template["Resources"][function]
        assert resource["Type"] == "AWS::Serverless::Function"
        declared = declared_globally | set(resource["Properties"].get("Environment", {}).get("Variables", {}))
        assert set(variables) <= declared, set(variables) - declared
        assert all(isinstance(value, str) for value in variables.values())
