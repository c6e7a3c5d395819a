"""What a million conversions cost on AWS: every request the functions make, counted, then priced.

The relay runs in one process against moto (the world of template.yaml) and the vendor sandboxes
(bench/stack.py): orders arrive as Stripe sends them (a Checkout Session's completion and its
payment intent: two signed webhooks, one conversion), through the Stripe function, then the
queues are drained by the deliver functions the way Lambda's SQS event source does it.

Nothing is counted by reading code. Every boto3 client created during the run gets botocore
`before-call` / `after-call` hooks, which record each request of the function running at that
moment:
- DynamoDB: read and write request units by DynamoDB's documented rounding (1 KB a write unit,
  4 KB a read unit, half for an eventually consistent read, the larger of the item's before and
  after images, a failed conditional write charged too), applied to the item sizes in the moto
  world (moto's own ConsumedCapacity is a constant); split by key space;
- SQS: requests, each 64 KB chunk of a request's or answer's payload counting as one;
  the event source's receives and deletes are Lambda's pollers (billed to the account, counted
  apart from the functions' own);
- Secrets Manager: calls;
- Lambda: invocations, and GB-seconds = each invocation's measured wall time (rounded up to the
  ms, moto answering in-process in place of AWS latency) x the function's MemorySize in
  template.yaml; API Gateway: one HTTP API request per webhook;
- CloudWatch Logs: the bytes the functions write to stdout (logs and EMF metrics), which Lambda
  ships to CloudWatch Logs, plus Lambda's START/END/REPORT lines; and the HTTP API's access-log
  line per webhook (template.yaml's format, filled with values as long as API Gateway's).

Prices: PRICES below (us-east-1 list prices, on-demand, free tiers ignored), with their sources.
Cold starts are excluded (their requests are counted apart and not charged to conversions).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import tempfile
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.session

from bench.stack import REGION, SINK, Relay, SandboxProcess, checkout_sessions, fake_aws, orders, relay_config

FULL_ORDERS, QUICK_ORDERS = 300, 30
WAVE = 100  # orders between two drains of the queues
GOAL_PER_MILLION = 6.0
ONE_DESTINATION = "scanova"
PRICES_CHECKED = "2026-12-07"
# us-east-1 list prices (USD), read on PRICES_CHECKED; each cross-checked against a second source.
PRICES = {
    "apigw_request": (
        1.00 / 1e6,
        "HTTP API, first 300 M requests a month, metered in 512 KB increments: "
        "https://aws.amazon.com/api-gateway/pricing/ (also awsforengineers.com, May 2025)",
    ),
    "lambda_request": (
        0.20 / 1e6,
        "Lambda requests: https://aws.amazon.com/lambda/pricing/ (also cloudchipr.com)",
    ),
    "lambda_gb_second": (
        0.0000133334,
        "Lambda arm64 duration, first 7.5 B GB-s a month, billed per 1 ms: "
        "https://aws.amazon.com/lambda/pricing/ (also cloudchipr.com)",
    ),
    "dynamodb_wru": (
        0.625 / 1e6,
        "DynamoDB on-demand write request unit (since the Nov 2024 cut): "
        "https://aws.amazon.com/dynamodb/pricing/on-demand/ (also airbyte.com, Jul 2025)",
    ),
    "dynamodb_rru": (
        0.125 / 1e6,
        "DynamoDB on-demand read request unit: https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    "sqs_request": (
        0.40 / 1e6,
        "SQS standard, per request, each 64 KB chunk a request, first 1 M a month free: "
        "https://aws.amazon.com/sqs/pricing/ (also cloudburn.io, Mar 2026)",
    ),
    "secrets_call": (
        0.05 / 10_000,
        "Secrets Manager API calls ($0.40 a secret-month is not per conversion): "
        "https://aws.amazon.com/secrets-manager/pricing/",
    ),
    "logs_gb": (
        0.50,
        "CloudWatch Logs standard ingestion per GB: https://aws.amazon.com/cloudwatch/pricing/",
    ),
}
LAMBDA_PLATFORM_LOG_BYTES = 350  # START, END and REPORT lines of one invocation
SQS_CHUNK = 64 * 1024
EVENT_SOURCE = "SQS event source (Lambda's pollers)"
COLD_START = "cold starts"


# --------------------------------------------------------------------------- counting


@dataclass
class Usage:
    """What one function (or the event source) used."""

    calls: Counter[str] = field(default_factory=Counter)  # "dynamodb.UpdateItem" → calls
    wru: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # key space → units
    rru: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    sqs_requests: float = 0
    secrets_calls: int = 0
    invocations: int = 0
    gb_seconds: float = 0.0
    log_bytes: int = 0


def key_space(key: str) -> str:
    prefix = key.split("#", 1)[0] + "#" if "#" in key else ""
    return prefix if prefix in ("ledger#", "parked#", "conversion#") else "idempotency"


# One HTTP API request per webhook; one Lambda request per webhook and per batch; one SQS send per
# vendor queue and the event source's receives; the conversion claim ("one conversion, queued
# once"); a ledger claim per conversion at each destination that does not dedupe (exactly once).
FLOOR_COMPONENTS = (
    "API Gateway: HTTP API requests",
    "Lambda: ingest invocations",
    "Lambda: deliver invocations",
    "SQS: ingest requests",
    "SQS: event source receives + deletes",
    "DynamoDB: write units, conversion#",
    "DynamoDB: write units, ledger# (UpdateItem)",
)


def write_space(key: str, operation: str) -> str:
    """Ledger writes split by how they are made: one conditional write each (a destination's claim
    before a vendor call) or batched (outcomes)."""
    space = key_space(key)
    return f"{space} ({operation})" if space == "ledger#" else space


class Meter:
    """botocore hooks on every client created while it is installed (see the module doc)."""

    def __init__(self, account_id: str) -> None:
        self.current = COLD_START
        self.usage: defaultdict[str, Usage] = defaultdict(Usage)
        self._account = account_id
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = botocore.session.Session.create_client
        meter = self

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-call", meter.before_call)
            client.meta.events.register("after-call", meter.after_call)
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        try:
            yield
        finally:
            botocore.session.Session.create_client = original  # type: ignore[method-assign]

    # ---- the hooks

    def before_call(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_meter"] = {"who": self.current, "body": params.get("body") or b""}
        if model.service_model.service_name == "dynamodb":
            request = _json(params.get("body"))
            context["bench_meter"]["request"] = request
            context["bench_meter"]["before"] = self._item_sizes(model.name, request)

    def after_call(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        seen = context.get("bench_meter")
        if seen is None:
            return
        service, operation = model.service_model.service_name, model.name
        with self._lock:
            usage = self.usage[seen["who"]]
            usage.calls[f"{service}.{operation}"] += 1
            if service == "sqs":
                size = max(len(seen["body"]), len(getattr(http_response, "content", b"") or b""))
                usage.sqs_requests += max(1, math.ceil(size / SQS_CHUNK))
            elif service == "secretsmanager":
                usage.secrets_calls += 1
            elif service == "dynamodb":
                self._units(usage, operation, seen, parsed)

    # ---- DynamoDB units

    def _table(self, name: str) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[self._account][REGION], name

    def _size(self, table: str, key: dict[str, Any]) -> int | None:
        backend, name = self._table(table)
        try:
            item = backend.get_item(name, key)
        except Exception:  # no such table: the call itself fails
            return None
        return item.size() if item is not None else None

    def _item_sizes(self, operation: str, request: dict[str, Any]) -> dict[str, int | None]:
        """Item key (its `id`) → size now, for the items a write touches."""
        table = request.get("TableName")
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            key = request.get("Key") or {"id": (request.get("Item") or {}).get("id")}
            return {_id(key): self._size(table, key)} if table else {}
        if operation == "BatchWriteItem":
            sizes = {}
            for table, writes in (request.get("RequestItems") or {}).items():
                for write in writes:
                    key = (write.get("DeleteRequest") or {}).get("Key") or {
                        "id": (write.get("PutRequest") or {}).get("Item", {}).get("id")
                    }
                    sizes[f"{table}|{_id(key)}"] = self._size(table, key)
            return sizes
        return {}

    def _units(self, usage: Usage, operation: str, seen: dict[str, Any], parsed: dict[str, Any]) -> None:
        request, before = seen.get("request") or {}, seen.get("before") or {}
        table = request.get("TableName")
        failed = "Error" in parsed
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            ((key, old),) = before.items() if before else (("", None),)
            new = None if failed else self._size(table, {"id": {"S": key}})
            units = max(1, math.ceil(max(old or 0, new or 0) / 1024))
            gsi = 0
            if operation != "DeleteItem" and _has_gsi_key(request):
                gsi = units  # the sparse ParkedEvents index is written too
            usage.wru[write_space(key, operation)] += units + gsi
        elif operation == "BatchWriteItem":
            for compound, old in before.items():
                table_name, key = compound.split("|", 1)
                new = self._size(table_name, {"id": {"S": key}})
                usage.wru[write_space(key, operation)] += max(1, math.ceil(max(old or 0, new or 0) / 1024))
        elif operation == "GetItem":
            key = _id(request.get("Key") or {})
            size = self._size(table, request.get("Key") or {}) or 0
            usage.rru[key_space(key)] += _read_units(size, request.get("ConsistentRead", False))
        elif operation == "BatchGetItem":
            for table_name, spec in (request.get("RequestItems") or {}).items():
                for key in spec.get("Keys", []):
                    size = self._size(table_name, key) or 0
                    usage.rru[key_space(_id(key))] += _read_units(size, spec.get("ConsistentRead", False))
        elif operation in ("Query", "Scan"):
            items = parsed.get("Items") or []
            size = sum(len(json.dumps(item)) for item in items)  # an upper bound of DynamoDB's size
            space = key_space(items[0]["id"]["S"]) if items and "id" in items[0] else "query"
            usage.rru[space] += _read_units(size, request.get("ConsistentRead", False))


def _json(body: Any) -> dict[str, Any]:
    if not body:
        return {}
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return {}


def _id(key: dict[str, Any]) -> str:
    value = key.get("id") or {}
    return value.get("S", "") if isinstance(value, dict) else ""


def _has_gsi_key(request: dict[str, Any]) -> bool:
    return "parked_provider" in json.dumps(request)


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return units if consistent else units / 2


# --------------------------------------------------------------------------- the run


def memory_gb(function: str) -> float:
    from local.world import load_template

    template = load_template()
    default = template.get("Globals", {}).get("Function", {}).get("MemorySize", 128)
    return int(template["Resources"][function]["Properties"].get("MemorySize", default)) / 1024


@dataclass
class Measured:
    label: str
    orders: int
    usage: dict[str, Usage]
    webhooks: int
    jobs: int
    delivered: dict[str, int]
    access_log_bytes: int


# Values API Gateway puts in an access-log line for one webhook, each as long as AWS writes it
# (the response length and latencies are filled in per request).
ACCESS_LOG_VALUES = {
    "requestId": "Jm5aQhY7IAMEVwQ=",
    "requestTime": "08/Dec/2026:00:00:00 +0000",
    "routeKey": "POST /webhooks/stripe",
    "status": "200",
    "identity.sourceIp": "54.187.174.169",
    "responseLatency": "85",
    "integrationLatency": "80",
    "integrationErrorMessage": "-",
}


def access_log_line(log_format: str, response_length: int) -> str:
    """The template's access-log line for one webhook answered with that many bytes."""
    values = {**ACCESS_LOG_VALUES, "responseLength": str(response_length)}
    return re.sub(r"\$context\.([A-Za-z.]+)", lambda found: values[found.group(1)], log_format)


def access_log_format() -> str:
    from local.world import load_template

    return load_template()["Resources"]["RelayHttpApi"]["Properties"]["AccessLogSettings"]["Format"]


def measure(label: str, order_count: int, only: list[str] | None = None) -> Measured:
    from relay.config import load_config

    from local.stack.secrets import local_secrets
    from local.world import build_world, load_template

    made = orders(order_count, prefix="cost")
    with SandboxProcess(checkout_sessions(made)) as sandboxes, fake_aws():
        workdir = Path(tempfile.mkdtemp(prefix="bench-cost-"))
        config_path = relay_config(sandboxes.urls, workdir / "relay.yaml", only=only)
        secrets = local_secrets(
            load_template(), load_config(str(config_path)), environ={}, sandboxed=lambda _url: True
        )
        session = boto3.Session(region_name=REGION)
        world = build_world(session, secrets=secrets)
        meter = Meter(world.account_id)
        memory = {name: memory_gb(name) for name in world.functions}

        def started(function: str) -> None:
            meter.current = function

        def ended(function: str) -> None:
            meter.current = EVENT_SOURCE

        def logged(size: int) -> None:  # what Lambda ships to CloudWatch Logs
            meter.usage[meter.current].log_bytes += size

        with meter.installed():
            SINK.count = logged
            try:
                relay = Relay(world, config_path, before_invoke=started, after_invoke=ended)
                sqs = boto3.Session(region_name=REGION).client("sqs")  # the event source's client
                jobs = access_bytes = 0
                log_format = access_log_format()
                with relay.running():
                    meter.current = EVENT_SOURCE
                    # Orders arrive in waves the queues drain between (a backlog of WAVE orders:
                    # full batches, and queues small enough for moto, whose sends scan the queue).
                    for start in range(0, len(made), WAVE):
                        for order in made[start : start + WAVE]:
                            for webhook in order.webhooks:
                                answer = relay.post(webhook)
                                jobs += answer["jobs"]
                                line = access_log_line(log_format, len(json.dumps(answer)))
                                access_bytes += len(line.encode())
                        relay.drain(sqs, parallel=False)
            finally:
                SINK.count = None
        for invocation in relay.invocations:
            usage = meter.usage[invocation.function]
            usage.invocations += 1
            usage.gb_seconds += memory[invocation.function] * math.ceil(invocation.duration_ms) / 1000
            usage.log_bytes += LAMBDA_PLATFORM_LOG_BYTES
        # The queue-length checks of the bench's drain loop are not something Lambda pays for.
        source = meter.usage[EVENT_SOURCE]
        attribute_calls = source.calls.pop("sqs.GetQueueAttributes", 0)
        source.sqs_requests -= attribute_calls
        delivered = {
            vendor: len(sandboxes.accepted(vendor))
            for vendor in ("scanova", "pagent", "scalev", "quicklizard")
        }
    expected = expected_events(order_count, only)
    if delivered != expected:
        raise RuntimeError(f"not every conversion was delivered once: {delivered}, expected {expected}")
    return Measured(label, order_count, dict(meter.usage), 2 * order_count, jobs, delivered, access_bytes)


def expected_events(order_count: int, only: list[str] | None) -> dict[str, int]:
    """Events each sandbox records for the orders (QuickLizard: one per product line, two lines)."""
    from relay.config import load_config

    config = load_config(str(Path(__file__).resolve().parent.parent / "config" / "relay.local.yaml"))
    per_order: Counter[str] = Counter()
    for name, destination in config.destinations.items():
        if only is None or name in only:
            per_order[destination.kind] += 2 if destination.kind == "quicklizard" else 1
    return {
        vendor: per_order.get(vendor, 0) * order_count
        for vendor in ("scanova", "pagent", "scalev", "quicklizard")
    }


# --------------------------------------------------------------------------- pricing


def line_items(measured: Measured) -> dict[str, tuple[float, float, str]]:
    """Component → (units per conversion, $ per million conversions, unit)."""
    per = 1 / measured.orders
    usage = {who: u for who, u in measured.usage.items() if who != COLD_START}
    ingest = [u for who, u in usage.items() if "Webhook" in who]
    deliver = [u for who, u in usage.items() if "Deliver" in who]
    source = usage.get(EVENT_SOURCE, Usage())
    items: dict[str, tuple[float, str]] = {
        "API Gateway: HTTP API requests": (measured.webhooks * per, "apigw_request"),
        "Lambda: ingest invocations": (sum(u.invocations for u in ingest) * per, "lambda_request"),
        "Lambda: ingest GB-s": (sum(u.gb_seconds for u in ingest) * per, "lambda_gb_second"),
        "Lambda: deliver invocations": (sum(u.invocations for u in deliver) * per, "lambda_request"),
        "Lambda: deliver GB-s": (sum(u.gb_seconds for u in deliver) * per, "lambda_gb_second"),
    }
    spaces = sorted({space for u in usage.values() for space in (*u.wru, *u.rru)})
    for space in spaces:
        wru = sum(u.wru.get(space, 0) for u in usage.values())
        rru = sum(u.rru.get(space, 0) for u in usage.values())
        if wru:
            items[f"DynamoDB: write units, {space}"] = (wru * per, "dynamodb_wru")
        if rru:
            items[f"DynamoDB: read units, {space}"] = (rru * per, "dynamodb_rru")
    items["SQS: ingest requests"] = (sum(u.sqs_requests for u in ingest) * per, "sqs_request")
    items["SQS: deliver requests (backoff, DLQ)"] = (
        sum(u.sqs_requests for u in deliver) * per,
        "sqs_request",
    )
    items["SQS: event source receives + deletes"] = (source.sqs_requests * per, "sqs_request")
    items["Secrets Manager: calls"] = (sum(u.secrets_calls for u in usage.values()) * per, "secrets_call")
    log_bytes = sum(u.log_bytes for who, u in usage.items() if who != EVENT_SOURCE)
    items["CloudWatch Logs: GB ingested"] = (log_bytes * per / 1e9, "logs_gb")
    items["CloudWatch Logs: API access log, GB"] = (measured.access_log_bytes * per / 1e9, "logs_gb")
    return {name: (units, units * 1e6 * PRICES[price][0], price) for name, (units, price) in items.items()}


def run(quick: bool = False) -> dict[str, Any]:
    count = QUICK_ORDERS if quick else FULL_ORDERS
    reference = measure("reference (6 destinations)", count)
    single = measure(f"one destination ({ONE_DESTINATION})", count, only=[ONE_DESTINATION])
    ref_items, one_items = line_items(reference), line_items(single)
    rows = []
    for name in list(dict.fromkeys([*ref_items, *one_items])):
        ref = ref_items.get(name, (0.0, 0.0, ""))
        one = one_items.get(name, (0.0, 0.0, ""))
        rows.append([name, round(ref[0], 4), round(ref[1], 3), round(one[0], 4), round(one[1], 3)])
    ref_total = sum(cost for _, cost, _ in ref_items.values())
    one_total = sum(cost for _, cost, _ in one_items.values())
    rows.append(["total", "", round(ref_total, 2), "", round(one_total, 2)])
    calls = Counter()
    for who, usage in reference.usage.items():
        if who != COLD_START:
            calls.update({f"{who}: {call}": n for call, n in usage.calls.items()})
    figures = {
        "reference_usd_per_million": round(ref_total, 3),
        "one_destination_usd_per_million": round(one_total, 3),
        "reference_jobs_per_conversion": round(reference.jobs / reference.orders, 3),
        "reference_dynamodb_usd_per_million": round(
            sum(c for n, (_, c, _) in ref_items.items() if n.startswith("DynamoDB")), 3
        ),
        "reference_sqs_usd_per_million": round(
            sum(c for n, (_, c, _) in ref_items.items() if n.startswith("SQS")), 3
        ),
        "reference_lambda_usd_per_million": round(
            sum(c for n, (_, c, _) in ref_items.items() if n.startswith("Lambda")), 3
        ),
    }
    # API Gateway, Lambda, the SQS sends and receives, and the logs do not depend on how the relay
    # uses DynamoDB: what the reference would cost with no DynamoDB request at all.
    without_dynamodb = ref_total - figures["reference_dynamodb_usd_per_million"]
    figures["reference_without_dynamodb_usd_per_million"] = round(without_dynamodb, 3)
    # The requests no design of this pipeline avoids: its floor with no compute time, no logs, no
    # Powertools idempotency and no outcome rows.
    floor = sum(ref_items[name][1] for name in FLOOR_COMPONENTS if name in ref_items)
    figures["reference_floor_usd_per_million"] = round(floor, 3)
    return {
        "title": f"Cost per million conversions (us-east-1 list prices, {count} orders of 2 Stripe webhooks)",
        "columns": [
            "component",
            "reference: per conversion",
            "reference: $ / M",
            "one destination: per conversion",
            "one destination: $ / M",
        ],
        "rows": rows,
        "figures": figures,
        "goals": {"reference_usd_per_million": f"<= {GOAL_PER_MILLION} (reference config)"},
        "notes": [
            "a conversion = an order: checkout.session.completed + payment_intent.succeeded (one id)",
            f"reference: the 6 destinations of config/relay.local.yaml; {WAVE} orders at a time, then the "
            "queues drained (batches as such a backlog fills them)",
            f"prices read {PRICES_CHECKED}, us-east-1, free tiers ignored:",
            *[f"  {name}: {price:g} USD: {source}" for name, (price, source) in PRICES.items()],
            f"reference without any DynamoDB request (API Gateway, Lambda, SQS, logs): "
            f"${without_dynamodb:.2f} per million",
            "reference floor, the requests no design of this pipeline avoids "
            f"({'; '.join(FLOOR_COMPONENTS)}): ${floor:.2f} per million",
            "not per conversion: idle event-source polling (~3 empty receives a minute per queue), "
            "secrets and log storage per month, CloudWatch custom metrics per metric-month",
            "requests per conversion (reference): "
            + "; ".join(f"{name} {n / reference.orders:.2f}" for name, n in sorted(calls.items())),
        ],
    }


if __name__ == "__main__":  # `python -m bench --only cost` is the usual way
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
