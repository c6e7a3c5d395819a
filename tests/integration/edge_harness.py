"""Every ingest function cold-started once per test module, for tests that send many requests:
hostile input, each provider's money conventions, the Hypothesis properties.

`relays` (a module fixture: import `relays_fixture`) is one moto world from template.yaml, the
HubSpot API sandbox on loopback, and the six real handlers (functions/ingest_<provider>/app.py)
on the local config.
`Relays.post` answers (status, body) and counts what each source was sent (`TRIED`, `FIVE_XX`);
`Relays.jobs` drains the vendor queues; `sign` signs any body as its provider does, arriving
(API Gateway's timeEpoch) when signed unless told otherwise; `purchase` writes one purchase of
an amount in a currency the way each provider writes money; `vendor_amounts` is what each
destination's vendor payload says the value is.

Hypothesis profiles: `quick` (the default, inside `make test`'s budget) and `fuzz` (`make fuzz`:
HYPOTHESIS_PROFILE=fuzz). The fuzz run prints and writes (bench/results/fuzz.json) how many
inputs each source was sent and how many got a 5xx.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import requests
import yaml
from hypothesis import HealthCheck, settings
from moto import mock_aws
from relay import money
from relay.config import parse_config
from relay.models import DeliveryJob
from relay.money_rules import STRIPE
from relay.vendors.http import Transport
from relay.vendors.registry import VENDORS

import testkit
from local.lambda_context import LambdaContext
from local.world import REPO_ROOT, World, build_world, load_template
from sandboxes import HubSpotApiSandbox
from sandboxes.hubspot_api import SEED_DEALS
from sandboxes.stripe_api import StripeApiSandbox, line_item

settings.register_profile(
    "quick",
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

REGION = "us-east-1"
LOCAL_CONFIG = REPO_ROOT / "config" / "relay.local.yaml"
FUNCTIONS = {
    "stripe": "StripeWebhookFunction",
    "paddle": "PaddleWebhookFunction",
    "shopify": "ShopifyWebhookFunction",
    "hubspot": "HubSpotWebhookFunction",
    "pipedrive": "PipedriveWebhookFunction",
    "events": "EventsWebhookFunction",
}
PROVIDERS = list(FUNCTIONS)
STRIPE_API_KEY = "sk_test_local_conversion_relay"
SECRETS = {
    "conversion-relay/hubspot-private-app-token": testkit.LOCAL_HUBSPOT_TOKEN,
    "conversion-relay/quicklizard/stripe-api-key": STRIPE_API_KEY,
}
# What each source was sent, and how many got a 5xx (the goal: none), across the run.
TRIED: Counter[str] = Counter()
FIVE_XX: Counter[str] = Counter()


# --------------------------------------------------------------------------- signing


def sign(
    provider: str,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    at: int | None = None,
    arrival: int | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An API Gateway event for `body`, signed by `provider` at `at` (now) and received by API
    Gateway at `arrival` (when signed); `headers` are sent too (they win over the signature's)."""
    at = int(time.time()) if at is None else at
    secret = testkit.LOCAL_WEBHOOK_SECRETS[provider]
    event_id = event_id or f"id-{uuid.uuid4().hex[:16]}"
    signature: dict[str, str]
    if provider == "stripe":
        signature = {"Stripe-Signature": testkit.stripe_signature(body, secret, at)}
    elif provider == "paddle":
        signature = {"Paddle-Signature": testkit.paddle_signature(body, secret, at)}
    elif provider == "hubspot":
        signature = testkit.hubspot_signature_v3(body, secret=secret, timestamp_ms=at * 1000)
    elif provider == "pipedrive":
        signature = {"Authorization": testkit.basic_authorization(secret)}
    elif provider == "shopify":
        signature = {
            "X-Shopify-Hmac-Sha256": testkit.shopify_hmac(body, secret),
            "X-Shopify-Topic": "orders/paid",
            "X-Shopify-Webhook-Id": event_id,
            "X-Shopify-Shop-Domain": testkit.SHOPIFY_SHOP_DOMAIN,
        }
    else:
        signature = testkit.standard_webhooks_signature(event_id, body, secret, at)
    return testkit.http_api_event(
        testkit.ROUTES[provider],
        body,
        {**signature, **(headers or {})},
        time_epoch_ms=(at if arrival is None else arrival) * 1000,
        base64_body=_not_utf8(body),
    )


def _not_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True  # API Gateway sends such a body base64-encoded
    return False


# --------------------------------------------------------------------------- purchases


_ids = itertools.count(1)


def purchase(relays: Relays, provider: str, major: Decimal, currency: str) -> dict[str, Any]:
    """A signed purchase of `major` units of `currency`, written as `provider` writes money."""
    n = next(_ids)
    if provider == "stripe":
        # Stripe's minor units in Stripe's exponent: 1,000 ISK is 100000.
        api_amount = int(major.scaleb(STRIPE.api_digits(currency)))
        session = testkit.checkout_session(
            session_id=f"cs_test_money_{n}",
            payment_intent=f"pi_money_{n}",
            amount=api_amount,
            currency=currency.lower(),
        )
        relays.stripe_api.seed_session(
            session["id"],
            [line_item("prod_money", api_amount, currency=currency.lower())],
            payment_intent=session["payment_intent"],
        )
        document = testkit.stripe_event("checkout.session.completed", session, event_id=f"evt_money_{n}")
    elif provider == "paddle":
        minor = str(int(major.scaleb(_iso(currency))))  # "in the lowest denomination"
        data = testkit.paddle_transaction(transaction_id=f"txn_money_{n}")
        data["currency_code"] = currency
        data["details"]["totals"].update(grand_total=minor, currency_code=currency)
        # One line item, charged at the whole amount (what the relay reads items from)
        line = data["details"]["line_items"][0]
        unit = {"subtotal": minor, "discount": "0", "tax": "0", "total": minor}
        line.update(quantity=1, unit_totals=unit, totals=dict(unit))
        data["details"]["line_items"] = [line]
        document = testkit.paddle_notification("transaction.completed", data, event_id=f"evt_money_{n}")
    elif provider == "shopify":
        text = str(major)  # a decimal string in the shop currency
        document = testkit.shopify_order(order_id=900_000 + n, total_price=text, currency=currency)
        document["line_items"] = [{**document["line_items"][0], "price": text, "quantity": 1}]
    elif provider == "hubspot":
        deal = str(800_000 + n)
        properties = {
            **SEED_DEALS["9001"]["properties"],
            "amount": str(major),
            "deal_currency_code": currency,
        }
        relays.hubspot_api.seed_deal(deal, properties, ["201"])
        document = [testkit.hubspot_deal_stage_change(int(deal), event_id=n)]
    elif provider == "pipedrive":
        deal = testkit.pipedrive_deal_won(deal_id=700_000 + n, value="<value>", currency=currency)
        # A JSON number, written exactly (a float would not be)
        return sign(provider, json.dumps(deal).encode().replace(b'"<value>"', str(major).encode()))
    else:
        document = testkit.backend_purchase(order_id=f"ord_money_{n}", amount=str(major), currency=currency)
    return sign(provider, json.dumps(document).encode(), event_id=f"wh_money_{n}")


def valid_document(provider: str) -> Any:
    """A valid event of the provider, with ids no earlier call used (so it is never a duplicate)."""
    n = next(_ids)
    if provider == "stripe":
        session = testkit.checkout_session(payment_intent=f"pi_valid_{n}")
        return testkit.stripe_event("checkout.session.completed", session, event_id=f"evt_valid_{n}")
    if provider == "paddle":
        data = testkit.paddle_transaction(transaction_id=f"txn_valid_{n}")
        return testkit.paddle_notification("transaction.completed", data, event_id=f"evt_valid_{n}")
    if provider == "shopify":
        return testkit.shopify_order(order_id=600_000 + n)
    if provider == "hubspot":
        return [testkit.hubspot_deal_stage_change(occurred_at_ms=testkit.FIXED_TIMESTAMP * 1000 + n)]
    if provider == "pipedrive":
        return testkit.pipedrive_deal_won(deal_id=500_000 + n)
    return testkit.backend_purchase(order_id=f"ord_valid_{n}")


def _iso(currency: str) -> int:
    return money.exponent(currency)


# --------------------------------------------------------------------------- the relays


@dataclass
class Relays:
    world: World
    handlers: dict[str, ModuleType]
    hubspot_api: HubSpotApiSandbox
    stripe_api: StripeApiSandbox
    config_path: Path
    _clients: dict[str, Any] = field(default_factory=dict)

    def post(self, provider: str, api_event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        TRIED[provider] += 1
        answer = self.handlers[provider].lambda_handler(api_event, LambdaContext(function_name="ingest"))
        status = answer["statusCode"]
        if status >= 500:
            FIVE_XX[provider] += 1
        return status, json.loads(answer["body"])

    def jobs(self) -> list[DeliveryJob]:
        """Every queued job; the queues are drained."""
        sqs = boto3.client("sqs", region_name=REGION)
        found = []
        for spec in VENDORS.values():
            url = self.world.queue_url(f"{spec.title}Queue")
            while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                found += [DeliveryJob.model_validate_json(message["Body"]) for message in batch]
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                    ],
                )
        return found

    def vendor_payload(self, job: DeliveryJob) -> list[dict[str, Any]]:
        """What the destination's deliver function would send for this job (client.prepare)."""
        if job.destination not in self._clients:
            config = parse_config(yaml.safe_load(self.config_path.read_text()))
            destination = config.destinations[job.destination]
            spec = VENDORS[destination.kind]
            self._clients[job.destination] = spec.client(
                job.destination,
                destination,
                Transport(requests.Session()),
                lambda name: SECRETS.get(name, "local-vendor-key"),
            )
        return self._clients[job.destination].prepare(job.conversion)


def vendor_amounts(relays: Relays, job: DeliveryJob) -> dict[str, Any]:
    """The value each vendor payload carries: {"amount": …, "currency": …} (QuickLizard: the
    unit prices of its product lines)."""
    payload = relays.vendor_payload(job)
    kind = VENDORS_BY_DESTINATION[job.destination]
    if kind == "scanova":
        return payload[0]["conversion_value"]
    if kind == "pagent":
        return {"cents": payload[0]["revenue"]}
    if kind == "scalev":
        event = payload[0]["events"][0]
        values = event.get("parameters") or event.get("properties")
        return {"amount": values["value"], "currency": values["currency"]}
    return {"prices": [line["price"] for line in payload]}


def expected_amounts(major: Decimal, currency: str, kind: str) -> dict[str, Any]:
    """What each vendor documents for an amount, computed from the major amount alone: Scanova a
    major-unit float, pagent hundredths of the major unit, Scalev major units (an integer when
    whole; IDR always whole rupiah, half to even, as Scalev asks), QuickLizard the unit price (one
    product line) as a float."""
    if kind == "scanova":
        return {"amount": float(major), "currency": currency}
    if kind == "pagent":
        return {"cents": int((major * 100).to_integral_value(ROUND_HALF_EVEN))}
    if kind == "scalev":
        if currency == "IDR":
            return {"amount": int(major.to_integral_value(ROUND_HALF_EVEN)), "currency": currency}
        whole = major == major.to_integral_value()
        return {"amount": int(major) if whole else float(major), "currency": currency}
    return {"prices": [float(major)]}


def assert_reaches_every_vendor(relays: Relays, provider: str, major: Decimal, currency: str) -> None:
    """Every queued job carries exactly `major` `currency`, and so does every vendor payload."""
    jobs = relays.jobs()
    assert jobs, "no job was queued"
    for job in jobs:
        value = job.conversion.value
        assert value is not None and (value.currency, value.major()) == (currency, major), job.destination
        kind = VENDORS_BY_DESTINATION[job.destination]
        if kind == "quicklizard" and provider in ("hubspot", "pipedrive"):
            continue  # a deal has no product lines: QuickLizard skips it (no_line_items)
        assert vendor_amounts(relays, job) == expected_amounts(major, currency, kind), job.destination


VENDORS_BY_DESTINATION = {
    name: destination["kind"]
    for name, destination in yaml.safe_load(LOCAL_CONFIG.read_text())["destinations"].items()
}


def _cold_start(function: Any, env: dict[str, str], patch: pytest.MonkeyPatch) -> ModuleType:
    """functions/<name>/app.py imported afresh under its environment, as Lambda's cold start does."""
    path = function.code_uri / f"{function.handler.rsplit('.', 1)[0]}.py"
    for name, value in {
        "AWS_LAMBDA_FUNCTION_NAME": function.logical_id,
        **function.environment,
        **env,
    }.items():
        patch.setenv(name, str(value))
    patch.syspath_prepend(str(path.parent))
    spec = importlib.util.spec_from_file_location(f"edge_{path.parent.name}_{uuid.uuid4().hex[:8]}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    patch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", name="relays")
def relays_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relays]:
    """The world and the six handlers (import `relays_fixture` into a test module to use it)."""
    with (
        pytest.MonkeyPatch.context() as patch,
        HubSpotApiSandbox().start() as hubspot_api,
        StripeApiSandbox(api_keys=[STRIPE_API_KEY]).start() as stripe_api,
    ):
        # The fuzz profile reads the CRM far beyond HubSpot's burst limit; a 429 is the provider's
        # API refusing (a 5xx by design, so HubSpot retries), not anything a client sent.
        hubspot_api._limiter.limit = None
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            patch.setenv(name, "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        config = yaml.safe_load(LOCAL_CONFIG.read_text())
        config["sources"]["hubspot"]["settings"]["api_base"] = hubspot_api.url
        config["destinations"]["quicklizard"]["stripe_api_base"] = stripe_api.url
        path = tmp_path_factory.mktemp("edge") / "relay.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        with mock_aws():
            world = build_world(boto3.Session(region_name=REGION), secrets=SECRETS, template=load_template())
            handlers = {
                provider: _cold_start(
                    world.functions[logical_id],
                    {
                        "RELAY_CONFIG": str(path),
                        "WEBHOOK_SECRET": testkit.LOCAL_WEBHOOK_SECRETS[provider],
                    },
                    patch,
                )
                for provider, logical_id in FUNCTIONS.items()
            }
            yield Relays(world, handlers, hubspot_api, stripe_api, path)
    report()


def report() -> None:
    """How many inputs each source was sent and how many got a 5xx (printed; JSON for the record)."""
    if not TRIED:
        return
    rows = {provider: {"inputs": TRIED[provider], "5xx": FIVE_XX[provider]} for provider in PROVIDERS}
    profile = os.environ.get("HYPOTHESIS_PROFILE", "quick")
    print(f"\ninputs sent per source ({profile} profile): " + json.dumps(rows))
    results = REPO_ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "fuzz.json").write_text(json.dumps({"profile": profile, "sources": rows}, indent=2) + "\n")
