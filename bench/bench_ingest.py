"""Stripe ingest: cold init against the boto3 floor, and the warm handler against signature + parse.

Cold init: the handler module (functions/ingest_stripe/app.py) imported in a fresh interpreter with
the template's environment: imports, config validation, the SQS and DynamoDB clients. No network
is used at init. The floor is what any such function pays: `import boto3` and the same two
clients. Both run alternately in fresh processes; medians and their ratio are reported. When the
ratio misses its goal, `python -X importtime` names the modules only the handler imports.
The fresh interpreters are python3.13, what Lambda runs, when `make bench` could build
`.venv313` (the layer's requirements and boto3 for a python3.13 found as `make build` finds it);
otherwise this interpreter (the notes say which). BENCH_COLD_PYTHON names another.

Warm: `lambda_handler` on a signed checkout.session.completed (a new event id each time) with the
idempotency store in memory and SQS answered locally, so no AWS call is made: once by a fake
client object (the relay's own time: the goal) and once by real boto3 clients under botocore's
Stubber (adds botocore's request building for the 4 SendMessageBatch calls). The floor is the
Stripe signature check plus `json.loads` of the same body.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
LAMBDA_PYTHON = REPO / ".venv313" / "bin" / "python"  # built by `make bench` where python3.13 exists
HANDLER = REPO / "functions" / "ingest_stripe" / "app.py"
CONFIG = REPO / "config" / "relay.local.yaml"
FUNCTION = "StripeWebhookFunction"
SECRET = "whsec_bench_conversion_relay"
COLD_GOAL_RATIO = 1.3
WARM_GOAL_MS = 1.0
SQS_CALLS_PER_CHECKOUT = 4  # one SendMessageBatch per vendor queue (local config: 6 jobs, 4 queues)

HANDLER_INIT = f"""
import time
start = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("app", {str(HANDLER)!r})
spec.loader.exec_module(importlib.util.module_from_spec(spec))
print((time.perf_counter() - start) * 1000)
"""
FLOOR_INIT = """
import time
start = time.perf_counter()
import boto3
boto3.client("sqs")
boto3.client("dynamodb")
print((time.perf_counter() - start) * 1000)
"""
# What the libraries the handler is built on cost before any relay code runs: the floor, plus
# Powertools (the utilities the handler uses) and pydantic. The relay's own share of cold init
# is the handler's time over this; the goal's headroom (0.3 x floor) is compared with it.
LIBRARIES_INIT = """
import time
start = time.perf_counter()
import boto3
boto3.client("sqs")
boto3.client("dynamodb")
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
Logger()
Metrics()
from pydantic import BaseModel
print((time.perf_counter() - start) * 1000)
"""


# --- the function's environment -----------------------------------------------------------------------


def function_environment() -> dict[str, str]:
    """The Stripe function's environment from template.yaml (resolved in a throwaway moto world)."""
    import boto3
    from moto import mock_aws

    from local.world import build_world

    with fake_aws(), mock_aws():
        world = build_world(boto3.Session(region_name="us-east-1"))
    return {
        **world.functions[FUNCTION].environment,
        "RELAY_CONFIG": str(CONFIG),
        "WEBHOOK_SECRET": SECRET,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
    }


def fake_aws() -> contextlib.AbstractContextManager[None]:
    return patched_environ(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- cold init ---------------------------------------------------------------------------------------------


def cold_python() -> str:
    """The interpreter of the cold-init children (see the module doc)."""
    if os.environ.get("BENCH_COLD_PYTHON"):
        return os.environ["BENCH_COLD_PYTHON"]
    return str(LAMBDA_PYTHON) if LAMBDA_PYTHON.exists() else sys.executable


def cold_python_version() -> str:
    done = subprocess.run(
        [cold_python(), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def child_environment(environment: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(environment)
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",  # nothing may reach for credentials over the network
        PYTHONPATH=str(REPO / "layers" / "relay"),  # the layer, as /opt/python is in Lambda
        PYTHONDONTWRITEBYTECODE="",
    )
    return env


def time_child(code: str, env: dict[str, str]) -> float:
    done = subprocess.run(
        [cold_python(), "-c", code],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold-init child failed: {done.stderr.strip()[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def import_profile(code: str, env: dict[str, str]) -> dict[str, int]:
    """Module → self import time (µs), from `python -X importtime`."""
    done = subprocess.run(
        [cold_python(), "-X", "importtime", "-c", code],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            self_us, _, name = line.removeprefix("import time:").split("|")
            found[name.strip()] = int(self_us)
    return found


def steady_profile(code: str, env: dict[str, str], repeats: int = 3) -> dict[str, int]:
    """Each module's smallest self time over a few runs: one run is too noisy to rank."""
    runs = [import_profile(code, env) for _ in range(repeats)]
    return {name: min(run.get(name, us) for run in runs) for name, us in runs[0].items()}


def biggest_extra_imports(env: dict[str, str], top: int = 8) -> list[str]:
    """The packages (and their heaviest module) that the handler imports and the floor does not."""
    handler, floor = steady_profile(HANDLER_INIT, env), steady_profile(FLOOR_INIT, env, repeats=1)
    extra = {name: us for name, us in handler.items() if name not in floor}
    packages: dict[str, list[tuple[int, str]]] = {}
    for name, us in extra.items():
        packages.setdefault(name.split(".")[0], []).append((us, name))
    ranked = sorted(packages.items(), key=lambda item: -sum(us for us, _ in item[1]))[:top]
    return [
        f"{package}: {sum(us for us, _ in modules) / 1000:.1f} ms (heaviest: {max(modules)[1]} "
        f"{max(modules)[0] / 1000:.1f} ms)"
        for package, modules in ranked
    ]


class ColdInit(NamedTuple):
    handler: list[float]
    floor: list[float]
    libraries: list[float]
    notes: list[str]


def measure_cold(environment: dict[str, str], runs: int, profile: bool) -> ColdInit:
    env = child_environment(environment)
    if profile:  # warm the OS file cache and .pyc files once, unmeasured
        for code in (HANDLER_INIT, FLOOR_INIT, LIBRARIES_INIT):
            time_child(code, env)
    handler, floor, libraries = [], [], []
    for _ in range(runs):  # alternate, so drift in machine load hits all alike
        handler.append(time_child(HANDLER_INIT, env))
        floor.append(time_child(FLOOR_INIT, env))
        libraries.append(time_child(LIBRARIES_INIT, env))
    ratio = statistics.median(handler) / statistics.median(floor)
    notes = []
    if profile and ratio > COLD_GOAL_RATIO:
        notes = [
            "imports only the handler makes (python -X importtime, self time):",
            *biggest_extra_imports(env),
        ]
    return ColdInit(handler, floor, libraries, notes)


# --- warm handler -------------------------------------------------------------------------------------------


def in_memory_persistence() -> type:
    """A Powertools idempotency store kept in a dict: the same claim logic, no DynamoDB."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyItemAlreadyExistsError,
        IdempotencyItemNotFoundError,
    )
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

    class InMemoryPersistenceLayer(BasePersistenceLayer):
        def __init__(self, *_: Any, **__: Any) -> None:
            super().__init__()
            self.records: dict[str, Any] = {}

        def _get_record(self, idempotency_key: str) -> Any:
            try:
                return self.records[idempotency_key]
            except KeyError as exc:
                raise IdempotencyItemNotFoundError from exc

        def _put_record(self, data_record: Any) -> None:
            existing = self.records.get(data_record.idempotency_key)
            if existing is not None and not existing.is_expired:
                raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
            self.records[data_record.idempotency_key] = data_record

        def _update_record(self, data_record: Any) -> None:
            self.records[data_record.idempotency_key] = data_record

        def _delete_record(self, data_record: Any) -> None:
            self.records.pop(data_record.idempotency_key, None)

    return InMemoryPersistenceLayer


SEND_OK = {
    "Successful": [{"Id": str(i), "MessageId": f"m-{i}", "MD5OfMessageBody": "0" * 32} for i in range(10)],
    "Failed": [],
}


class FakeSQS:
    """Answers SendMessageBatch as SQS does when every entry is accepted; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        return {
            "Successful": [
                {"Id": e["Id"], "MessageId": f"m-{e['Id']}", "MD5OfMessageBody": "0" * 32} for e in Entries
            ],
            "Failed": [],
        }


class FakeDynamoDB:
    """Answers the conversion claim (relay.ingest.claims) as DynamoDB does for a new conversion:
    every destination is the webhook's own. Nothing else may be called (the idempotency store is
    in memory)."""

    def __init__(self) -> None:
        self.calls = 0

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        return {"Attributes": claimed_item(kwargs)}

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected AWS call: {name}")


def claimed_item(update: dict[str, Any]) -> dict[str, Any]:
    """The conversion item after a first claim: each destination named by the write is this event's."""
    event = update["ExpressionAttributeValues"][":event"]
    return {name: event for name in update["ExpressionAttributeNames"].values()}


def load_handler(environment: dict[str, str], make_client: Callable[..., Any]) -> Callable[..., Any]:
    """The handler module cold-started with `make_client` in place of boto3.client and the
    idempotency store in memory."""
    import boto3
    import relay.ingest.pipeline

    spec = importlib.util.spec_from_file_location(f"bench_app_{uuid.uuid4().hex[:8]}", HANDLER)
    module = importlib.util.module_from_spec(spec)
    with (
        patched_environ(environment),
        fake_aws(),
        mock.patch.object(boto3, "client", make_client),
        mock.patch.object(relay.ingest.pipeline, "DynamoDBPersistenceLayer", in_memory_persistence()),
    ):
        spec.loader.exec_module(module)
    return module.lambda_handler


def fake_clients() -> tuple[Callable[..., Any], Callable[[int], None]]:
    """(client factory, check(checkouts)) for the fake SQS client."""
    sqs, dynamodb = FakeSQS(), FakeDynamoDB()

    def check(checkouts: int) -> None:
        assert sqs.calls == checkouts * SQS_CALLS_PER_CHECKOUT, sqs.calls
        assert dynamodb.calls == checkouts, dynamodb.calls  # one claim per conversion

    return (lambda service, *_, **__: sqs if service == "sqs" else dynamodb), check


def stubbed_clients(checkouts: int) -> tuple[Callable[..., Any], Callable[[int], None]]:
    """(client factory, check) for real boto3 clients under botocore's Stubber. The stubs hold
    exactly the answers the checkouts need (SQS: the sends; DynamoDB: each conversion's claim);
    any other call fails."""
    import boto3
    import yaml
    from botocore.stub import Stubber

    real_client, stubbers = boto3.client, {}
    destinations = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["destinations"]

    def make(service: str, *args: Any, **kwargs: Any) -> Any:
        client = real_client(service, *args, **kwargs)
        stubbers[service] = Stubber(client)
        stubbers[service].activate()
        for _ in range(checkouts * SQS_CALLS_PER_CHECKOUT if service == "sqs" else 0):
            stubbers[service].add_response("send_message_batch", SEND_OK)
        for i in range(checkouts if service == "dynamodb" else 0):
            claimed = {f"to:{name}": {"S": f"evt_bench_{i:06d}"} for name in destinations}
            stubbers[service].add_response("update_item", {"Attributes": claimed})
        return client

    def check(_: int) -> None:
        stubbers["sqs"].assert_no_pending_responses()
        stubbers["dynamodb"].assert_no_pending_responses()

    return make, check


def signed_checkouts(count: int) -> list[dict[str, Any]]:
    """Distinct checkout.session.completed events (new ids: no duplicate short-cut), signed now."""
    import testkit

    template = testkit.sample_stripe_events()["checkout_session_completed"]
    signed = []
    for i in range(count):
        event = copy.deepcopy(template)
        event["id"] = f"evt_bench_{i:06d}"
        signed.append(testkit.signed_stripe_http_event(event, secret=SECRET))
    return signed


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter_ns()
    result = call()
    return (time.perf_counter_ns() - start) / 1e6, result


def measure_warm(
    environment: dict[str, str],
    clients: tuple[Callable[..., Any], Callable[[int], None]],
    iterations: int,
    warmup: int,
) -> list[float]:
    from local.lambda_context import LambdaContext

    make_client, check = clients
    requests = signed_checkouts(warmup + iterations)
    contexts = [LambdaContext(function_name=FUNCTION) for _ in requests]
    timings = []
    # Logs and EMF metrics go to stdout in Lambda too: write them, but to /dev/null.
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        handler = load_handler(environment, make_client)
        for n, (event, context) in enumerate(zip(requests, contexts, strict=True)):
            elapsed, answer = timed(lambda e=event, c=context: handler(e, c))
            body = json.loads(answer["body"])
            if answer["statusCode"] != 200 or body.get("jobs") != 6:
                raise RuntimeError(f"the handler answered {answer['statusCode']}: {body}")
            if n >= warmup:
                timings.append(elapsed)
    check(len(requests))  # every job went out, in the expected number of SQS calls
    return timings


def measure_floor(iterations: int) -> list[float]:
    from relay.ingest.signatures import verify_stripe

    timings = []
    for event in signed_checkouts(iterations):
        body, header = event["body"].encode(), event["headers"]["stripe-signature"]
        elapsed, _ = timed(lambda b=body, h=header: (verify_stripe(b, h, [SECRET]), json.loads(b)))
        timings.append(elapsed)
    return timings


# --- the report ---------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def row(label: str, values: list[float], ratio: float, goal: str) -> list[Any]:
    return [
        label,
        len(values),
        statistics.median(values),
        percentile(values, 90),
        percentile(values, 99),
        min(values),
        round(ratio, 2),
        goal,
    ]


def run(quick: bool = False) -> dict[str, Any]:
    environment = function_environment()
    cold = measure_cold(environment, runs=1 if quick else 12, profile=not quick)
    handler_init, floor_init, libraries_init = cold.handler, cold.floor, cold.libraries
    cold_version = cold_python_version()
    n, stub_n, warmup = (20, 10, 3) if quick else (2000, 400, 200)
    warm = measure_warm(environment, fake_clients(), n, warmup)
    stubbed = measure_warm(environment, stubbed_clients(stub_n + warmup), stub_n, warmup)
    floor = measure_floor(n)
    cold_ratio = statistics.median(handler_init) / statistics.median(floor_init)
    libraries_ratio = statistics.median(libraries_init) / statistics.median(floor_init)
    relay_share_ms = statistics.median(handler_init) - statistics.median(libraries_init)
    # What the goal leaves the relay's own code once the libraries are loaded (negative: nothing).
    relay_budget_ms = COLD_GOAL_RATIO * statistics.median(floor_init) - statistics.median(libraries_init)
    warm_ratio = statistics.median(warm) / statistics.median(floor)
    stubbed_ratio = statistics.median(stubbed) / statistics.median(floor)
    return {
        "title": "Stripe ingest: cold init and warm handler time",
        "columns": ["measure", "n", "median ms", "p90 ms", "p99 ms", "min ms", "x floor", "goal"],
        "rows": [
            row(
                "cold init: handler module (imports, config, clients)",
                handler_init,
                cold_ratio,
                f"<= {COLD_GOAL_RATIO} x floor",
            ),
            row("cold init floor: import boto3 + SQS and DynamoDB clients", floor_init, 1.0, ""),
            row(
                "cold init: libraries only (floor + Powertools + pydantic)",
                libraries_init,
                libraries_ratio,
                "",
            ),
            row(
                "warm: lambda_handler, checkout (fake SQS client)",
                warm,
                warm_ratio,
                f"<= {WARM_GOAL_MS} ms median",
            ),
            row("warm: lambda_handler, checkout (boto3 + Stubber)", stubbed, stubbed_ratio, ""),
            row("warm floor: Stripe signature check + json.loads", floor, 1.0, ""),
        ],
        "figures": {
            "cold_init_handler_median_ms": round(statistics.median(handler_init), 1),
            "cold_init_floor_median_ms": round(statistics.median(floor_init), 1),
            "cold_init_ratio": round(cold_ratio, 3),
            "cold_init_libraries_median_ms": round(statistics.median(libraries_init), 1),
            "cold_init_libraries_ratio": round(libraries_ratio, 3),
            "cold_init_relay_share_ms": round(relay_share_ms, 1),
            "cold_init_relay_budget_ms": round(relay_budget_ms, 1),
            "warm_handler_median_ms": round(statistics.median(warm), 4),
            "warm_handler_p99_ms": round(percentile(warm, 99), 4),
            "warm_handler_botocore_median_ms": round(statistics.median(stubbed), 4),
            "warm_floor_median_ms": round(statistics.median(floor), 4),
            "warm_ratio": round(warm_ratio, 2),
        },
        "goals": {
            "cold_init_ratio": f"<= {COLD_GOAL_RATIO} (handler init over the boto3 floor)",
            "warm_handler_median_ms": f"<= {WARM_GOAL_MS} ms on this machine (fake SQS client)",
        },
        "notes": [
            f"cold init: python {cold_version} ({cold_python()}); warm: python {sys.version.split()[0]}; "
            "Lambda runs python3.13 on arm64",
            "quick run: too few samples to read" if quick else "cold init: alternating fresh processes",
            f"cold init: the libraries alone take {libraries_ratio:.2f} x the floor; the relay's own share "
            f"(handler - libraries) is {relay_share_ms:.0f} ms, where the goal leaves it "
            f"{relay_budget_ms:.0f} ms",
            *cold.notes,
        ],
    }
