"""events/{hubspot,pipedrive,paddle,shopify,backend}: the committed samples are what
`python -m testkit.samples` writes, each is signed with the documented local secret (checked by the
source's own verify), parses, and `resign_http_event` makes a stale one current.

Tests read Given / When / Then in their comments or names.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from relay.config import Source
from relay.errors import StaleTimestampError
from relay.ingest.edge import webhook_request
from relay.sources.spec import load_source

import testkit

REPO = Path(__file__).resolve().parents[2]
FOLDERS = {
    "hubspot": "hubspot",
    "pipedrive": "pipedrive",
    "paddle": "paddle",
    "shopify": "shopify",
    "backend": "events",
}
SAMPLES = sorted(p for folder in FOLDERS for p in (REPO / "events" / folder).glob("*.json"))
NO_AGE_CHECK = Source(signing_tolerance_seconds=0)


def source_of(path: Path) -> str:
    return FOLDERS[path.parent.name]


def test_every_provider_has_samples():
    assert {p.parent.name for p in SAMPLES} == set(FOLDERS)


def test_the_committed_samples_are_what_the_generator_writes(tmp_path: Path):
    subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "testkit.samples", str(tmp_path)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    )
    for folder in FOLDERS:
        fresh = sorted((tmp_path / folder).glob("*.json"))
        committed = sorted((REPO / "events" / folder).glob("*.json"))
        assert [p.name for p in fresh] == [p.name for p in committed]
        for new, old in zip(fresh, committed, strict=True):
            assert new.read_bytes() == old.read_bytes(), f"{old}: run `python -m testkit.samples`"


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_sample_is_signed_with_the_local_secret_and_parses(path: Path):
    name = source_of(path)
    spec = load_source(name)
    request = webhook_request(json.loads(path.read_text()), max_body_bytes=256 * 1024)
    assert request.path == testkit.ROUTES[name]
    spec.verify(request, [testkit.LOCAL_WEBHOOK_SECRETS[name]], NO_AGE_CHECK)
    assert spec.parse(request)


@pytest.mark.parametrize("folder", ["hubspot", "paddle", "backend"])
def test_resigning_makes_a_stale_sample_current(folder: str):
    # Given a sample signed on 2026-01-01, When it arrives now, Then it is stale for the provider
    path = sorted((REPO / "events" / folder).glob("*.json"))[0]
    name, sample = FOLDERS[folder], json.loads(path.read_text())
    spec = load_source(name)
    secrets = [testkit.LOCAL_WEBHOOK_SECRETS[name]]
    stale = {**sample, "requestContext": {**sample["requestContext"], "timeEpoch": int(time.time() * 1000)}}
    with pytest.raises(StaleTimestampError):
        spec.verify(webhook_request(stale, max_body_bytes=256 * 1024), secrets, Source())
    # (as it arrived, on 2026-01-01, it was fresh: the age is measured from API Gateway's arrival)
    spec.verify(webhook_request(sample, max_body_bytes=256 * 1024), secrets, Source())
    # When re-signed now, Then it verifies with the default tolerance
    spec.verify(
        webhook_request(testkit.resign_http_event(stale), max_body_bytes=256 * 1024), secrets, Source()
    )


@pytest.mark.parametrize("provider", ["stripe", "hubspot", "pipedrive", "paddle", "shopify", "events"])
def test_relay_local_send_has_a_signer_per_provider(provider: str):
    # Given the signer `relay-local send` looks up, When it signs a body for a local URL
    body = b'{"type": "lead", "data": {}}'
    signer = testkit.SIGNATURE_HEADERS[provider]
    headers = signer(
        body,
        testkit.LOCAL_WEBHOOK_SECRETS[provider],
        url=f"http://127.0.0.1:3000{testkit.ROUTES[provider]}",
        method="POST",
        timestamp=1767225600,
    )
    # Then the source's verify accepts it as API Gateway would deliver it (https, Host 127.0.0.1:3000)
    api_event = testkit.http_api_event(testkit.ROUTES[provider], body, headers, domain="127.0.0.1:3000")
    request = webhook_request(api_event, max_body_bytes=1024)
    load_source(provider).verify(request, [testkit.LOCAL_WEBHOOK_SECRETS[provider]], NO_AGE_CHECK)
