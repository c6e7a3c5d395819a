"""`make send` (relay-local send): fresh ids on request, and SQS events refused with a hint."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from local.commands import main as relay_local
from local.commands import recorded_request
from relay_cli.main import main as relay
from testkit.fresh import freshen

REPO = Path(__file__).resolve().parents[2]
WEBHOOK_SAMPLES = [
    "stripe/checkout_session_completed.json",
    "stripe/invoice_paid.json",
    "paddle/transaction_completed.json",
    "shopify/orders_paid.json",
    "pipedrive/deal_won.json",
    "backend/purchase.json",
]


def tried(path: Path, capsys) -> tuple[str, list[str]]:
    assert relay(["try", str(path), "--json"]) == 0
    (event,) = json.loads(capsys.readouterr().out)["events"]
    return event["event_id"], [c["conversion"]["conversion_id"] for c in event["conversions"]]


@pytest.mark.parametrize("sample", WEBHOOK_SAMPLES)
def test_a_fresh_sample_is_a_new_event_and_a_new_order(sample, tmp_path, capsys):
    """Given a committed sample, When it is made fresh (make send FRESH=1), Then the relay reads
    another event id and another conversion id from it (not a duplicate, not in the ledger)."""
    api_event = json.loads((REPO / "events" / sample).read_text())
    _, _, body, headers = recorded_request(api_event, b"")
    body, headers = freshen(body, headers)
    fresh = {
        **api_event,
        "headers": headers,
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    path = tmp_path / sample.replace("/", "_")
    path.write_text(json.dumps(fresh))

    old_event, old_conversions = tried(REPO / "events" / sample, capsys)
    new_event, new_conversions = tried(path, capsys)

    assert new_event != old_event
    assert new_conversions and set(new_conversions).isdisjoint(old_conversions)


def test_sending_an_sqs_event_is_refused_with_a_hint(capsys):
    code = relay_local(["send", str(REPO / "events" / "sqs" / "scanova.json"), "--port", "9"])

    assert code == 1
    err = capsys.readouterr().err
    assert "SQS event" in err and "relay try" in err and "events/stripe" in err
