"""`make send` and `make status` (relay-local send/status) against the running local stack."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
# Not a Stripe sample: test_stack_stripe needs those to reach the sandboxes for the first time.
ORDER = REPO_ROOT / "events" / "shopify" / "orders_paid.json"


def run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m module args` with its output piped (not a terminal) and no COLUMNS, as in CI."""
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
        check=False,
    )


def relay_local(*args: str) -> subprocess.CompletedProcess[str]:
    return run_module("local", *args)


def test_send_resigns_a_sample_and_status_shows_its_delivery(local_stack, poll):
    """Given the running stack, When `relay-local send` posts a committed sample (its signature is
    from 2026-01-01, far too old) and `relay-local status` runs once the jobs are done,
    Then the event is accepted and the status tables show the conversion delivered."""
    port = local_stack.url.rsplit(":", 1)[1]

    sent = relay_local("send", str(ORDER), "--port", port)
    local_stack.settle()
    status = relay_local("status", "--port", port)
    as_json = relay_local("status", "--port", port, "--json")

    assert sent.returncode == 0, sent.stderr
    assert "/webhooks/shopify → 200" in sent.stdout
    conversion_id = json.loads(sent.stdout.split("\n", 1)[1])["conversions"][0]
    assert status.returncode == 0, status.stderr
    for heading in ("Destinations", "Queues", "Last conversions", "Webhooks answered"):
        assert heading in status.stdout
    delivered = {row["destination"]: row["delivered"] for row in json.loads(as_json.stdout)["destinations"]}
    assert all(delivered[name] >= 1 for name in ("scanova", "pagent", "scalev_meta", "scalev_tiktok"))
    assert conversion_id in {item["conversion_id"] for item in local_stack.ledger()}


def test_send_and_status_explain_a_stack_that_is_not_running():
    """Given no stack on a port, When send or status is run, Then each says so and exits 1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])  # free once closed: nothing listens there

    sent = relay_local("send", str(ORDER), "--port", port)
    status = relay_local("status", "--port", port)

    assert (sent.returncode, status.returncode) == (1, 1)
    assert "start it with `make run`" in sent.stderr
    assert "start it with `make run`" in status.stderr


def test_the_stack_answers_unknown_routes_as_api_gateway(local_stack):
    """Given the running stack, When an unknown path is posted, Then the answer is API Gateway's 404."""
    answer = requests.post(f"{local_stack.url}/webhooks/unknown", data=b"{}", timeout=10)

    assert (answer.status_code, answer.json()) == (404, {"message": "Not Found"})
    routes = {route["path"] for route in local_stack.get("info")["routes"]}
    assert {"/webhooks/stripe", "/webhooks/hubspot", "/events"} <= routes


def relay(*args: str) -> subprocess.CompletedProcess[str]:
    return run_module("relay_cli", *args)


def test_relay_status_local_shows_retries_in_full_width_when_piped(stack, poll):
    """Given Scanova failing (the README's outage walk-through), When a fresh order is sent and
    `relay status --local` runs with its output piped, Then Scanova's row shows the retries and
    no column is cut to the terminal's width."""
    port = stack.url.rsplit(":", 1)[1]
    stack.set_faults("scanova", error_rate=1)

    sent = relay_local("send", str(ORDER), "--port", port, "--fresh")
    poll(
        lambda: next(d for d in stack.status()["destinations"] if d["destination"] == "scanova")["retried"],
        "a Scanova retry",
    )
    shown = relay("status", "--local", "--port", port)

    assert sent.returncode == 0, sent.stderr
    assert shown.returncode == 0, shown.stderr
    header = next(line for line in shown.stdout.splitlines() if line.startswith("DESTINATION"))
    assert "RETRIED" in header and "RETRYING" in header and "DEAD LETTERS" in header
    scanova = next(line for line in shown.stdout.splitlines() if line.startswith("scanova "))
    retried = int(scanova.split()[4])  # DESTINATION VENDOR DELIVERED REJECTED RETRIED
    assert retried >= 1
    assert "scalev_snackvideo" in shown.stdout  # full names, not cut to a few characters
    for heading in ("Queues", "Sources", "Last errors", "Webhooks answered"):
        assert heading in shown.stdout
