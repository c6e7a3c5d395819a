"""Nothing lost at the edges, through the whole local stack: a relay outage longer than the
provider's retries, a parked event after a config fix, a destination added later.

The stack here is this module's own (tests.e2e.conftest.running_stack), with a config of its
own: a Stripe rule that does not fit (quotes are leads keyed by a field checkouts lack), and a
destination the Stripe webhooks do not route to yet (`pagent_new`: pagent's v1 API beside the
existing v2 one, so the sandbox tells them apart; pagent does not dedupe, so a second delivery
would show).
The provider's side is the Stripe API sandbox: every webhook the stack was sent is in its log
with whether the relay took it, beside seeded history the relay never saw. The operator's side
is what an operator runs: `relay backfill --local` (a subprocess) and ReconcileFunction
(POST /_local/invoke, as EventBridge's schedule would). Tests read Given / When / Then.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from relay.models import conversion_id

import testkit
from tests.e2e.conftest import REPO_ROOT, LocalStackClient, config_on_free_ports, running_stack

pytestmark = pytest.mark.e2e

STRIPE_ROUTE = "/webhooks/stripe"
DESTINATIONS = ("scanova", "pagent", "scalev_meta", "scalev_tiktok", "scalev_snackvideo")  # QuickLizard skips
ATTEMPTS_BEFORE_GIVING_UP = 3  # the provider's retry window, shortened: then it gives up
BROKEN_RULE = {
    "event": "checkout.session.completed",
    "name": "lead",
    "when": "data.object.metadata.kind == 'quote'",
    "order_key": "data.object.quote",
}
NEW_DESTINATION = {
    "kind": "pagent",
    "base_url": "http://127.0.0.1:4102",
    "api_version": "v1",  # the existing pagent destination speaks v2
    "api_key_secret": "conversion-relay/pagent/api-key",
}


def stack_config() -> dict:
    config = yaml.safe_load((REPO_ROOT / "config" / "relay.local.yaml").read_text())
    config["destinations"]["pagent_new"] = NEW_DESTINATION
    stripe = config["sources"]["stripe"]
    stripe["rules"] = [BROKEN_RULE]
    stripe["destinations"] = [name for name in config["destinations"] if name != "pagent_new"]
    return config


@pytest.fixture(scope="module")
def recovery(tmp_path_factory) -> Iterator[LocalStackClient]:
    """Given the relay running locally with this module's config."""
    text = config_on_free_ports(yaml.safe_dump(stack_config()))
    with running_stack(tmp_path_factory.mktemp("recovery-stack"), text) as stack:
        stack.config_text = text  # type: ignore[attr-defined]
        yield stack


@pytest.fixture
def stack(recovery: LocalStackClient) -> Iterator[LocalStackClient]:
    recovery.settle()
    recovery.reset_sandboxes()  # the providers' logs too: back to their seeded history
    yield recovery
    recovery.outage(STRIPE_ROUTE, None)
    recovery.reset_sandboxes()


def operator_config(stack: LocalStackClient, tmp_path: Path, **stripe_changes) -> Path:
    """The stack's config (its ports) as the operator edits it."""
    config = yaml.safe_load(stack.config_text)  # type: ignore[attr-defined]
    config["sources"]["stripe"].update(stripe_changes)
    config["sources"]["stripe"] = {k: v for k, v in config["sources"]["stripe"].items() if v is not None}
    path = tmp_path / "relay.operator.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def relay(stack: LocalStackClient, *args: str) -> subprocess.CompletedProcess[str]:
    """The operator's `relay …` against this stack (`--local`: its embedded AWS)."""
    moto_port = str(urlsplit(stack.info["aws_endpoint"]).port)
    environment = {**os.environ, "MOTO_PORT": moto_port}
    environment.pop("STRIPE_READ_KEY", None)
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "relay_cli.main", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def backfill_stripe(stack: LocalStackClient, config: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return relay(stack, "backfill", "--local", "--source", "stripe", "--config", str(config), *options)


def checkout(**metadata: str) -> dict:
    tag = uuid.uuid4().hex[:12]
    data = testkit.checkout_session(
        session_id=f"cs_rec_{tag}",
        payment_intent=f"pi_rec_{tag}",
        metadata={**testkit.ATTRIBUTION_METADATA, "snackvideo_click_id": f"kwai_{tag}", **metadata},
    )
    created = int(time.time())
    return testkit.stripe_event(
        "checkout.session.completed", data, event_id=f"evt_rec_{tag}", created=created
    )


def purchase_of(order: str) -> str:
    return str(conversion_id("stripe", order, "purchase"))


def deliveries(stack: LocalStackClient, event: dict) -> dict[str, int]:
    """How often each destination's sandbox took this checkout's purchase."""
    order = event["data"]["object"]["payment_intent"]
    click = event["data"]["object"]["metadata"]["snackvideo_click_id"]
    scalev, pagent = stack.accepted("scalev"), stack.accepted("pagent")
    return {
        "scanova": sum(e["event_id"] == purchase_of(order) for e in stack.accepted("scanova")),
        "pagent": sum(pagent_order(e, "v2") == order for e in pagent),
        "pagent_new": sum(pagent_order(e, "v1") == order for e in pagent),
        "scalev_meta": sum(e.get("event_id") == f"{order}-Purchase-FORM" for e in scalev),
        "scalev_tiktok": sum(e.get("event_id") == f"{order}-CompletePayment-FORM" for e in scalev),
        "scalev_snackvideo": sum(
            e.get("click_id") == click and e["event_name"] == "purchase" for e in scalev
        ),
    }


def pagent_order(event: dict, version: str) -> str | None:
    """The order of a pagent event sent to this API version (which pagent destination sent it)."""
    return event["properties"].get("order_id") if event["_endpoint"].startswith(f"/{version}/") else None


EACH_ONCE = {**dict.fromkeys(DESTINATIONS, 1), "pagent_new": 0}


def test_an_outage_longer_than_the_providers_retries_loses_no_conversion(
    stack: LocalStackClient, poll
) -> None:
    """Given the relay answering 503 while three checkouts happen, and Stripe giving up on each
    after its retries, When the relay is back and ReconcileFunction runs once, Then every
    conversion reaches every destination exactly once, a late retry is a duplicate, and the
    next run finds nothing missing."""
    stack.outage(STRIPE_ROUTE, 503)
    events = [checkout() for _ in range(3)]
    for event in events:
        for _ in range(ATTEMPTS_BEFORE_GIVING_UP):
            assert stack.send(testkit.signed_stripe_http_event(event)).status_code == 503
    assert all(deliveries(stack, e) == dict.fromkeys(EACH_ONCE, 0) for e in events)  # all lost so far
    stack.outage(STRIPE_ROUTE, None)

    report = stack.invoke("ReconcileFunction")

    found = report["sources"]["stripe"]
    assert {e["id"] for e in events} <= set(found["missing_ids"])  # the seeded undelivered one too
    assert found["missing"] == len(found["missing_ids"]) and found["api_calls"] == 1
    poll(
        lambda: all(deliveries(stack, e) == EACH_ONCE for e in events) and stack.idle(),
        "the recovered deliveries",
    )
    lost = sum(deliveries(stack, e)[d] == 0 for e in events for d in DESTINATIONS)
    assert lost == 0
    # Stripe's late retry of one of them (had it not given up) is answered as a duplicate
    late = stack.send(testkit.signed_stripe_http_event(events[0]))
    assert late.status_code == 200 and late.json()["event_id"] == events[0]["id"]
    stack.settle()
    assert all(deliveries(stack, e) == EACH_ONCE for e in events)
    assert stack.invoke("ReconcileFunction")["sources"]["stripe"]["missing"] == 0


def test_a_parked_event_is_delivered_after_the_config_fix_and_backfill_parked(
    stack: LocalStackClient, poll, tmp_path: Path
) -> None:
    """Given a signed quote checkout parked by a rule that does not fit, When the rule is fixed
    and `relay backfill --parked` runs, Then its purchase and its lead are delivered and it is
    no longer parked."""
    quote = checkout(kind="quote")
    parked = stack.send(testkit.signed_stripe_http_event(quote))
    assert parked.status_code == 200 and parked.json()["status"] == "parked"
    listed = relay(stack, "parked", "ls", "--local", "--json")
    assert quote["id"] in {e["event_id"] for e in json.loads(listed.stdout)}

    fixed = operator_config(stack, tmp_path, rules=[{**BROKEN_RULE, "order_key": "data.object.id"}])
    run = relay(stack, "backfill", "--local", "--config", str(fixed), "--source", "stripe", "--parked")

    assert run.returncode == 0, run.stderr
    assert "relayed (queued)" in run.stdout
    poll(lambda: deliveries(stack, quote) == EACH_ONCE and stack.idle(), "the purchase's deliveries")
    lead = str(conversion_id("stripe", quote["data"]["object"]["id"], "lead"))
    assert [e["event_name"] for e in stack.accepted("scanova") if e["event_id"] == lead] == ["lead"]
    listed = relay(stack, "parked", "ls", "--local", "--json")
    assert quote["id"] not in {e["event_id"] for e in json.loads(listed.stdout)}


def test_a_destination_added_later_gets_30_days_of_conversions_once_and_the_others_none_again(
    stack: LocalStackClient, poll, tmp_path: Path
) -> None:
    """Given checkouts relayed to the six destinations (two by webhook, Stripe's seeded history by
    a backfill), When `pagent_new` is added and backfilled for 30 days, twice, Then it gets each
    conversion once and no other destination gets anything again."""
    sent = [checkout() for _ in range(2)]
    for event in sent:
        assert stack.send(testkit.signed_stripe_http_event(event)).status_code == 200
    first = backfill_stripe(stack, operator_config(stack, tmp_path), "--since", "5d")
    assert first.returncode == 0, first.stderr
    stack.settle()
    history = requests.get(
        f"{stack.sandboxes['stripe']}/v1/events",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {testkit.LOCAL_READ_KEYS['stripe']}"},
        timeout=10,
    ).json()["data"]
    orders = {e["data"]["object"]["payment_intent"] for e in history}
    assert len(orders) == len(sent) + 4  # the seeded history: 20, 30 and 90 minutes, 3 days ago
    before = {name: len(stack.accepted(name)) for name in ("pagent", "scanova", "scalev", "quicklizard")}

    added = operator_config(stack, tmp_path, destinations=None)  # the rules now reach every destination
    for _ in range(2):
        run = backfill_stripe(stack, added, "--since", "30d", "--destination", "pagent_new")
        assert run.returncode == 0, run.stderr
        stack.settle()

    def new_destination() -> list[str]:
        return [o for e in stack.accepted("pagent") if (o := pagent_order(e, "v1"))]

    poll(lambda: len(new_destination()) >= len(orders), "pagent_new's deliveries")
    assert sorted(new_destination()) == sorted(orders)  # each once, though backfilled twice
    after = {name: len(stack.accepted(name)) for name in before}
    assert after == {**before, "pagent": before["pagent"] + len(orders)}  # only pagent_new's
