"""`relay try` on every committed events/ sample prints the vendor requests.

Integration, not unit: HubSpot webhooks carry ids only, and `relay try` answers their CRM reads
from the local HubSpot API stub, which it starts on a loopback port.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay_cli.main import main

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "events").glob("*/*.json"))
# Samples the relay itself turns into no conversion (so there is no vendor request to show).
NO_CONVERSION = {"pipedrive/deal_title_changed.json": "a title change is not a won deal"}


def test_every_folder_of_samples_is_covered():
    assert {p.parent.name for p in SAMPLES} >= {
        "stripe",
        "hubspot",
        "pipedrive",
        "paddle",
        "shopify",
        "backend",
        "sqs",
    }


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_relay_try_prints_the_vendor_requests_of_each_sample(sample, capsys):
    # Given a committed sample, When `relay try` runs on it (text, then JSON)
    assert main(["try", str(sample)]) == 0
    text = capsys.readouterr().out
    assert main(["try", str(sample), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    # Then it shows a request line for each request it found, and finds one unless the relay
    # makes no conversion of that sample (then it says why)
    requests = [
        target["request"]
        for event in document["events"]
        for conversion in event["conversions"]
        for target in conversion["destinations"]
        if target["outcome"] == "request"
    ]
    name = f"{sample.parent.name}/{sample.name}"
    if name in NO_CONVERSION:
        assert requests == [] and "no rule made a conversion" in text
        return
    assert requests, text
    for request in requests:
        assert request["method"] == "POST" and request["url"].startswith("http://127.0.0.1:41")
        assert f"{request['method']} {request['url']}" in text
        assert not any("secret" in v.lower() and "redacted" not in v for v in request["headers"].values())
