"""What the chaos and cost benchmarks share: the whole relay in one process, against moto and the
vendor sandboxes, driven the way API Gateway and Lambda's SQS event source drive it.

- `fake_aws()`: moto in-process, with credentials that cannot reach a real account.
- `SandboxProcess`: the four vendor sandboxes and the Stripe API stub in a child process (their
  own interpreter, so they do not compete with the relay for the GIL), without rate limits,
  seeded with the orders' Checkout Sessions; faults are set through their control endpoints.
- `orders(n)`: per order a signed `checkout.session.completed` and `payment_intent.succeeded`
  (one conversion: the same payment intent), each order with attribution ids of its own, so
  what a vendor accepted can be traced back to its order.
- `Relay`: the Stripe ingest function and the four deliver functions cold-started from
  functions/*/app.py with the template's environment (their own `build_*`, Secrets Manager
  included); `post()` is one API Gateway request; `drain()` plays the SQS event source of every
  deliver function (up to BatchSize records, the answer's failures left in the queue, moto
  keeping the visibility timeouts the functions set) until every queue is empty.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import requests
import yaml

from bench.bench_ingest import patched_environ

REPO = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ESM_RECEIVE_LIMIT = 10  # ReceiveMessage returns at most 10 messages

_SANDBOX_SCRIPT = """
import json, sys
from sandboxes import PagentSandbox, QuickLizardSandbox, ScalevSandbox, ScanovaSandbox
from sandboxes.stripe_api import StripeApiSandbox
sessions = json.loads(sys.stdin.readline())
sandboxes = [ScanovaSandbox(events_per_minute=None), PagentSandbox(requests_per_minute=None),
             ScalevSandbox(requests_per_minute=None), QuickLizardSandbox(requests_per_minute=None),
             StripeApiSandbox(sessions={})]
stripe = sandboxes[-1]
for session_id, (intent, items) in sessions.items():
    stripe.seed_session(session_id, items, payment_intent=intent)
for sandbox in sandboxes:
    sandbox.start()
    print(sandbox.name, sandbox.url, flush=True)
sys.stdin.read()  # until the parent closes the pipe
for sandbox in sandboxes:
    sandbox.stop()
"""
VENDOR_SANDBOXES = ("scanova", "pagent", "scalev", "quicklizard")


class Sink(io.TextIOBase):
    """The functions' stdout (logs, EMF metrics): discarded, or counted by `count`. One per process:
    Powertools binds its loggers to the stdout of the moment they are first created."""

    def __init__(self) -> None:
        self.count: Callable[[int], None] | None = None

    def write(self, text: str) -> int:
        if self.count is not None:
            self.count(len(text.encode()))
        return len(text)


SINK = Sink()


def _retained(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's retention check of a received message, without computing every attribute of the
    queue for each message (quadratic in the backlog: a backlog of 3,000 jobs then takes
    minutes to receive). No message of a run comes near the template's retention."""
    from moto.core.utils import unix_time

    queue = backend.get_queue(queue_name)
    return int(queue.message_retention_period) + message.sent_timestamp / 1000 > unix_time()


@contextlib.contextmanager
def fake_aws() -> Iterator[None]:
    """moto in-process, with fake credentials that cannot reach a real account. One request at
    a time: moto's backends are not thread-safe (two pollers receiving from one queue at once
    break its bookkeeping), and moto in-process is CPU-bound anyway."""
    from unittest import mock

    from moto import mock_aws
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.sqs.models import SQSBackend

    answer, one_at_a_time = BotocoreStubber.__call__, threading.RLock()

    def serialized(stubber: Any, *args: Any, **kwargs: Any) -> Any:
        with one_at_a_time:
            return answer(stubber, *args, **kwargs)

    fake = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with patched_environ(fake):
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            os.environ.pop(name, None)
        with (
            mock_aws(),
            mock.patch.object(SQSBackend, "is_message_valid_based_on_retention_period", _retained),
            mock.patch.object(BotocoreStubber, "__call__", serialized),
        ):
            yield


# --------------------------------------------------------------------------- orders


@dataclass(frozen=True)
class Order:
    index: int
    payment_intent: str
    session: str
    webhooks: tuple[dict[str, Any], ...]  # unsigned Stripe events

    @property
    def marker(self) -> str:
        """The order's own attribution id suffix (its pagent session, SnackVideo click id, QL vid)."""
        return f"o{self.index:06d}"


def orders(count: int, *, prefix: str = "bench") -> list[Order]:
    """Orders as Stripe reports them: a Checkout Session's completion and its payment intent."""
    import testkit

    made = []
    for i in range(count):
        marker = f"o{i:06d}"
        intent, session = f"pi_{prefix}_{marker}", f"cs_{prefix}_{marker}"
        metadata = dict(testkit.ATTRIBUTION_METADATA)
        metadata.update(
            scan_session_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{prefix}/{marker}")),
            pagent=json.dumps({**testkit.PAGENT_SESSION, "session_id": f"sess_{marker}"}),
            snackvideo_click_id=f"kwai_{marker}",
            quicklizard_vid=f"vid_{marker}",
        )
        checkout = testkit.stripe_event(
            "checkout.session.completed",
            testkit.checkout_session(session_id=session, payment_intent=intent, metadata=metadata),
            event_id=f"evt_{prefix}_cs_{marker}",
        )
        paid = testkit.stripe_event(
            "payment_intent.succeeded",
            testkit.payment_intent(intent_id=intent, metadata=metadata),
            event_id=f"evt_{prefix}_pi_{marker}",
        )
        made.append(Order(i, intent, session, (checkout, paid)))
    return made


def checkout_sessions(made: list[Order]) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """The Stripe API stub's sessions for these orders: two product lines each."""
    from sandboxes.stripe_api import line_item

    lines = [line_item("prod_tshirt", 2000, quantity=2), line_item("prod_mug", 999)]
    return {order.session: (order.payment_intent, lines) for order in made}


# --------------------------------------------------------------------------- sandboxes


class SandboxProcess:
    """The vendor sandboxes and the Stripe API stub in a child process (see the module doc)."""

    def __init__(self, sessions: dict[str, tuple[str, list[dict[str, Any]]]]):
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SANDBOX_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(sessions) + "\n")
        self._process.stdin.flush()
        self.urls: dict[str, str] = dict(self._process.stdout.readline().split() for _ in range(5))

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _control(self, vendor: str, action: str, body: Any = None) -> Any:
        url = f"{self.urls[vendor]}/_sandbox/{action}"
        answer = (
            requests.post(url, json=body, timeout=30) if body is not None else requests.get(url, timeout=60)
        )
        answer.raise_for_status()
        return answer.json()

    def set_faults(self, plan: dict[str, Any]) -> None:
        for vendor in VENDOR_SANDBOXES:
            self._control(vendor, "faults", plan)

    def reset(self) -> None:
        for vendor in VENDOR_SANDBOXES:
            self._control(vendor, "reset", {})

    def accepted(self, vendor: str) -> list[dict[str, Any]]:
        return self._control(vendor, "accepted")

    def duplicates(self, vendor: str) -> list[dict[str, Any]]:
        return self._control(vendor, "duplicates")

    def requests(self, vendor: str) -> list[dict[str, Any]]:
        return self._control(vendor, "requests")


def relay_config(urls: dict[str, str], path: Path, *, only: list[str] | None = None, **changes: Any) -> Path:
    """config/relay.local.yaml pointed at the sandboxes (optionally fewer destinations, or changed)."""
    raw = yaml.safe_load((REPO / "config" / "relay.local.yaml").read_text(encoding="utf-8"))
    if only is not None:
        raw["destinations"] = {name: raw["destinations"][name] for name in only}
    for destination in raw["destinations"].values():
        destination["base_url"] = urls[destination["kind"]]
        destination.update(changes)
        if destination.get("stripe_api_key_secret"):
            destination["stripe_api_base"] = urls["stripe"]
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the relay


@dataclass
class Invocation:
    function: str
    started: float  # time.monotonic()
    duration_ms: float
    records: int = 0


@dataclass
class Relay:
    """The functions of template.yaml, cold-started in this process (see the module doc)."""

    world: Any  # local.world.World
    config_path: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    before_invoke: Callable[[str], None] = lambda _function: None
    after_invoke: Callable[[str], None] = lambda _function: None
    invocations: list[Invocation] = field(default_factory=list)

    def __post_init__(self) -> None:
        from relay.vendors.registry import VENDORS

        self._lock = threading.Lock()
        self.vendors = {spec.kind: spec for spec in VENDORS.values()}
        self.ingest = self._load("StripeWebhookFunction")
        # As many execution environments per deliver function as its event source may invoke at
        # once (ScalingConfig.MaximumConcurrency in template.yaml): each its own cold start.
        self.deliver = {
            kind: [
                self._load(f"{spec.title}DeliverFunction")
                for _ in range(self.world.functions[f"{spec.title}DeliverFunction"].max_concurrency)
            ]
            for kind, spec in self.vendors.items()
        }

    def environment(self, function: str) -> dict[str, str]:
        spec = self.world.functions[function]
        return {
            **spec.environment,
            "RELAY_CONFIG": str(self.config_path),
            "AWS_LAMBDA_FUNCTION_NAME": function,
            "POWERTOOLS_METRICS_NAMESPACE": "ConversionRelayBench",
            **self.env_overrides,
        }

    def _load(self, function: str) -> ModuleType:
        spec = self.world.functions[function]
        path = spec.code_uri / f"{spec.handler.rsplit('.', 1)[0]}.py"
        module_spec = importlib.util.spec_from_file_location(f"bench_{function}_{uuid.uuid4().hex[:6]}", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        with patched_environ(self.environment(function)), contextlib.redirect_stdout(SINK):
            module_spec.loader.exec_module(module)
        return module

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """While the benchmark drives the functions: their logs and EMF metrics go nowhere, and
        the environment is the ingest function's (the deliver functions read theirs at cold
        start; os.environ and sys.stdout are one per process, so they are set once, not per call)."""
        with patched_environ(self.environment("StripeWebhookFunction")), contextlib.redirect_stdout(SINK):
            yield

    def invoke(self, function: str, module: ModuleType, event: dict[str, Any], records: int = 0) -> Any:
        from local.lambda_context import LambdaContext

        spec = self.world.functions[function]
        context = LambdaContext(function_name=function, timeout_seconds=spec.timeout)
        self.before_invoke(function)
        started = time.monotonic()
        try:
            return module.lambda_handler(event, context)
        finally:
            elapsed = (time.monotonic() - started) * 1000
            self.after_invoke(function)
            with self._lock:
                self.invocations.append(Invocation(function, started, elapsed, records))

    # ---- API Gateway → ingest

    def post(self, stripe_event: dict[str, Any]) -> dict[str, Any]:
        """One webhook, signed now, through the Stripe function; its answer's JSON body."""
        import testkit

        answer = self.invoke(
            "StripeWebhookFunction", self.ingest, testkit.signed_stripe_http_event(stripe_event)
        )
        if answer["statusCode"] != 200:
            raise RuntimeError(f"the Stripe function answered {answer['statusCode']}: {answer['body']}")
        return json.loads(answer["body"])

    # ---- SQS → deliver

    def drain(
        self, sqs: Any, *, parallel: bool = True, idle_wait: float = 0.1, limit_seconds: float = 900
    ) -> dict[str, float]:
        """Every deliver function's queue until empty: one poller thread per execution environment,
        as Lambda's event source invokes each function up to MaximumConcurrency at once
        (`parallel=False`: one invocation at a time); each vendor's seconds until its queue was
        empty."""
        finished: dict[str, float] = {}
        started = time.monotonic()
        errors: list[BaseException] = []
        if not parallel:
            for kind in self.vendors:
                self._poll(sqs, kind, self.deliver[kind][0], idle_wait, started + limit_seconds)
                finished[kind] = time.monotonic() - started
            return finished

        def poll(kind: str, environment: ModuleType) -> None:
            try:
                self._poll(sqs, kind, environment, idle_wait, started + limit_seconds)
                with self._lock:
                    finished[kind] = max(finished.get(kind, 0.0), time.monotonic() - started)
            except BaseException as exc:  # reported by the caller's thread (and now: the others wait)
                traceback.print_exc()
                errors.append(exc)

        threads = [
            threading.Thread(target=poll, args=(kind, environment), daemon=True)
            for kind, environments in self.deliver.items()
            for environment in environments
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return finished

    def _poll(self, sqs: Any, kind: str, environment: ModuleType, idle_wait: float, until: float) -> None:
        from local.pollers import failed_items, lambda_record

        spec = self.vendors[kind]
        function = f"{spec.title}DeliverFunction"
        mapping = self.world.functions[function]
        queue = self.world.queue_url(f"{spec.title}Queue")
        arn = self.world.resources[f"{spec.title}Queue"]["Arn"]
        while time.monotonic() < until:
            batch: list[dict[str, Any]] = []
            while len(batch) < mapping.batch_size:
                page = sqs.receive_message(
                    QueueUrl=queue,
                    MaxNumberOfMessages=min(ESM_RECEIVE_LIMIT, mapping.batch_size - len(batch)),
                    MessageAttributeNames=["All"],
                    MessageSystemAttributeNames=["All"],
                ).get("Messages", [])
                if not page:
                    break
                batch += page
            if not batch:
                if queue_empty(sqs, queue):
                    return
                time.sleep(idle_wait)  # the rest is invisible: backing off, or being retried
                continue
            event = {"Records": [lambda_record(m, arn, REGION) for m in batch]}
            answer = self.invoke(function, environment, event, records=len(batch))
            failed = failed_items(answer, {m["MessageId"] for m in batch})
            if failed is None:
                raise RuntimeError(f"{function} answered {answer!r}")
            done = [m for m in batch if m["MessageId"] not in failed]
            for start in range(0, len(done), ESM_RECEIVE_LIMIT):
                sqs.delete_message_batch(
                    QueueUrl=queue,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done[start : start + ESM_RECEIVE_LIMIT])
                    ],
                )
        raise TimeoutError(f"the {kind} queue was not drained in time")


def queue_empty(sqs: Any, queue: str) -> bool:
    counts = sqs.get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return not any(int(value) for value in counts.values())


def dead_letters(sqs: Any, queue: str) -> list[dict[str, Any]]:
    """Every message of a DLQ (read and left invisible: call once per queue)."""
    found: list[dict[str, Any]] = []
    while page := sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=600
    ).get("Messages"):
        found += page
    return found


def attribute_strings(message: dict[str, Any]) -> dict[str, str]:
    from relay import dlq

    return dlq.attribute_strings(message.get("MessageAttributes") or {})
