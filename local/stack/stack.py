"""The whole relay on loopback, wired as template.yaml wires it: no Docker, no AWS account.

    stack = LocalStack(StackOptions(port=3000)).start()
    ...
    stack.stop()

- embedded AWS: moto's server (DynamoDB table, queues with their redrive policies,
  Secrets Manager) created from template.yaml by local.world.build_world;
- the template's HttpApi routes (local.apigw) and SQS event source mappings
  (local.pollers), each function in its own execution environments (local.runtime);
- the vendor sandboxes (the `sandboxes` package) for every loopback URL of the relay config,
  and the provider-API sandboxes, which also keep each provider's log: every webhook a route
  was sent, whatever it answered (relay backfill and ReconcileFunction read them back);
- the template's schedules (local.scheduler: ReconcileFunction, its hour scaled to a minute);
- GET /_local/ (the dashboard page, local/dashboard.html), /_local/status (what `make status`
  prints and the page shows), /_local/ledger (every delivery ledger item) and /_local/info
  (what `make send` needs: routes and their signing secrets' names);
  POST /_local/invoke {"function", "event"} (run a function now) and /_local/outage
  {"path", "status"} (a route answers that status, as in an outage; a null status ends it).

See docs/local-stack.md.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relay.config import RelayConfig, load_config

from local import iam
from local.apigw import HttpAnswer, HttpApi, HttpRequest, Route
from local.pollers import EventSourceMapping, QueuePoller
from local.runtime import FunctionRuntime, Invocation, lambda_environment
from local.scheduler import ScheduleRunner, start_schedules
from local.stack.aws import (
    LOCAL_CREDENTIALS,
    MOTO_PORT_CHANGE,
    EmbeddedAws,
    PortInUseError,
    ensure_port_free,
    is_loopback_host,
)
from local.stack.describe import banner, dashboard_page, provider_of, shown_path, stack_info
from local.stack.logs import compact
from local.stack.sandboxes import (
    SandboxPlan,
    is_loopback,
    plan_sandboxes,
    provider_sandboxes,
    start_sandboxes,
)
from local.stack.secrets import local_secrets, read_key_parameters
from local.stack.status import MetricsTally, QueueRef, StatusCollector
from local.world import REPO_ROOT, World, build_world, load_template
from sandboxes import Sandbox

DEFAULT_CONFIG = REPO_ROOT / "config" / "relay.local.yaml"
DEFAULT_RETRY_DELAY_SCALE = 0.01
DEFAULT_SCHEDULE_SCALE = 1 / 60  # an hour of the template's schedules is a minute locally
HTTP_ENVIRONMENTS = 4  # concurrent requests per webhook function before they queue
_POLLER_GRACE_SECONDS = 5.0
# Answers to requests no provider sent (bad signature, malformed, wrong method, too large).
NOT_THE_PROVIDERS = frozenset({400, 401, 405, 413, 415})

__all__ = ["DEFAULT_CONFIG", "LocalStack", "PortInUseError", "RemoteHostError", "StackOptions"]


class RemoteHostError(RuntimeError):
    """A non-loopback --host without --allow-remote: it would expose moto (secrets included)."""


@dataclass
class StackOptions:
    config_path: Path = DEFAULT_CONFIG
    host: str = "127.0.0.1"
    allow_remote: bool = False  # a non-loopback host exposes moto, its secrets, the API, the sandboxes
    port: int = 3000
    moto_port: int = 4566
    retry_delay_scale: float = DEFAULT_RETRY_DELAY_SCALE
    batching_window: float | None = None  # None: each mapping's MaximumBatchingWindowInSeconds
    schedule_scale: float = DEFAULT_SCHEDULE_SCALE  # 0: no schedule runs (POST /_local/invoke does)
    secret_overrides: dict[str, str] = field(default_factory=dict)
    function_logs: bool = True
    warm: bool = True  # start every function's first execution environment at startup
    json_logs: bool = False  # the functions' log lines as they are, not compacted
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


class LocalStack:
    def __init__(self, options: StackOptions, *, out: Callable[[str], None] | None = None):
        self.options = options
        self._out = out or _print
        self._out_lock = threading.Lock()
        self.config: RelayConfig | None = None
        self.aws: EmbeddedAws | None = None
        self.world: World | None = None
        self.sandboxes: list[tuple[SandboxPlan, Sandbox]] = []
        self.unavailable_sandboxes: list[SandboxPlan] = []
        self.runtimes: dict[str, FunctionRuntime] = {}
        self.pollers: list[QueuePoller] = []
        self.schedules: list[ScheduleRunner] = []
        self.missing: dict[str, Path] = {}  # functions whose code is not there: not deployed
        self.http: HttpApi | None = None
        self.metrics = MetricsTally()
        self.status: StatusCollector | None = None
        self.secrets: dict[str, str] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalStack:
        options = self.options
        config_path = options.config_path.resolve()
        if not (is_loopback_host(options.host) or options.allow_remote):
            raise RemoteHostError(
                f"--host {options.host} would expose the embedded AWS (with every secret), the API and the "
                "sandboxes to the network: use a loopback address, or add --allow-remote if you mean it"
            )
        self.config = load_config(config_path)
        # Every port before anything starts: a taken one fails fast, with how to move it.
        ensure_port_free(options.host, options.port, "the HTTP API", "make run PORT=3001")
        ensure_port_free(options.host, options.moto_port, "the embedded AWS (moto)", MOTO_PORT_CHANGE)
        plans = plan_sandboxes(self.config)
        for plan in plans:
            if plan.available:
                where = f"the base_url of {', '.join(plan.serves)} in {shown_path(config_path)}"
                ensure_port_free(options.host, plan.port, f"the {plan.name} sandbox", where)
        try:
            self._start_aws()
            self._start_sandboxes(plans)
            self._start_functions(config_path)
            self._start_http()
        except BaseException:
            self.stop()
            raise
        if options.warm:
            threading.Thread(target=self._warm, name="warm-functions", daemon=True).start()
        return self

    def _warm(self) -> None:
        """Cold starts at startup, not on the first conversion (the imports take seconds each)."""
        started = time.monotonic()
        runtimes = list(self.runtimes.values())
        with ThreadPoolExecutor(max_workers=4) as pool:
            warmed = sum(pool.map(FunctionRuntime.warm, runtimes))
        if self.http is not None:
            self._say(f"{warmed} of {len(runtimes)} functions warm ({time.monotonic() - started:.1f} s)")

    def _start_aws(self) -> None:
        assert self.config is not None
        template = load_template()
        self.aws = EmbeddedAws(self.options.host, self.options.moto_port).start()
        self.secrets = local_secrets(
            template,
            self.config,
            environ=self.options.environ,
            overrides=self.options.secret_overrides,
            sandboxed=is_loopback,
        )
        self.world = build_world(
            self.aws.session(),
            secrets=self.secrets,
            template=template,
            parameter_overrides=read_key_parameters(self.config, sandboxed=is_loopback),
        )
        queues = {}
        for spec in self.world.functions.values():
            if spec.sqs_queue is None:
                continue
            redrive = template["Resources"][spec.sqs_queue]["Properties"]["RedrivePolicy"]
            dlq_id = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
            kind = spec.code_uri.name.removeprefix("deliver_")
            queues[kind] = QueueRef(
                vendor=kind,
                logical_id=spec.sqs_queue,
                url=self.world.queue_url(spec.sqs_queue),
                name=self.world.resources[spec.sqs_queue]["QueueName"],
                dlq_logical_id=dlq_id,
                dlq_url=self.world.queue_url(dlq_id),
                dlq_name=self.world.resources[dlq_id]["QueueName"],
            )
        self.status = StatusCollector(
            aws=self.aws,
            account_id=self.world.account_id,
            table_name=self.world.table_name,
            queues=queues,
            config=self.config,
            metrics=self.metrics,
            route_sources={
                f"{method} {path}": provider_of(spec)
                for spec in self.world.functions.values()
                for method, path in spec.http_routes
            },
        )

    def _start_sandboxes(self, plans: list[SandboxPlan]) -> None:
        self.sandboxes = start_sandboxes(plans, self.options.host)
        self.unavailable_sandboxes = [plan for plan in plans if not plan.available]

    def _start_functions(self, config_path: Path) -> None:
        assert self.world is not None and self.aws is not None
        world, options = self.world, self.options
        for logical_id, spec in world.functions.items():
            if not (spec.http_routes or spec.sqs_queue or spec.schedules):
                continue  # not triggered by anything the local stack emulates (e.g. ReplayFunction)
            if not (spec.code_uri / f"{spec.handler.rpartition('.')[0]}.py").is_file():
                self.missing[logical_id] = spec.code_uri
                continue
            overrides = {
                "RELAY_CONFIG": str(config_path),
                "AWS_ENDPOINT_URL": self.aws.endpoint_url,
                **LOCAL_CREDENTIALS,
            }
            if spec.sqs_queue:
                overrides["RETRY_DELAY_SCALE"] = str(options.retry_delay_scale)
            function_name = f"{world.stack_name}-{logical_id}"
            # The function's IAM from template.yaml, enforced in its worker (local/iam.py).
            overrides |= iam.policy_variable(
                logical_id, spec.iam_statements, world.region, world.account_id, world.hash_keys
            )
            self.runtimes[logical_id] = FunctionRuntime(
                logical_id=logical_id,
                function_name=function_name,
                environment=lambda_environment(
                    logical_id=logical_id,
                    function_name=function_name,
                    code_uri=spec.code_uri,
                    handler=spec.handler,
                    variables=spec.environment,
                    region=world.region,
                    overrides=overrides,
                ),
                timeout_seconds=spec.timeout,
                region=world.region,
                account_id=world.account_id,
                max_environments=HTTP_ENVIRONMENTS if spec.http_routes else 1,
                on_log=self._function_output,
            )
        sqs = self.aws.session().client("sqs")
        for logical_id, runtime in self.runtimes.items():
            spec = world.functions[logical_id]
            if spec.sqs_queue is None:
                continue
            attributes = sqs.get_queue_attributes(
                QueueUrl=world.queue_url(spec.sqs_queue), AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
            queue_visibility = int(attributes["VisibilityTimeout"])
            mapping = EventSourceMapping(
                function=logical_id,
                queue_url=world.queue_url(spec.sqs_queue),
                queue_arn=world.resources[spec.sqs_queue]["Arn"],
                region=world.region,
                batch_size=spec.batch_size,
                batching_window=spec.batching_window
                if options.batching_window is None
                else options.batching_window,
                report_batch_item_failures=spec.report_batch_item_failures,
            )
            self.pollers.append(
                QueuePoller(
                    mapping,
                    runtime,
                    sqs,
                    failure_visibility_seconds=max(1, round(queue_visibility * options.retry_delay_scale)),
                    log=self._say,
                ).start()
            )

        self.schedules = start_schedules(world, self.runtimes, scale=options.schedule_scale, log=self._say)

    def _start_http(self) -> None:
        assert self.world is not None
        routes = [
            Route(method, path, logical_id)
            for logical_id, spec in self.world.functions.items()
            if logical_id in self.runtimes
            for method, path in spec.http_routes
        ]
        self.http = HttpApi(
            routes,
            self.runtimes,
            account_id=self.world.account_id,
            local_endpoints={
                "": dashboard_page,
                "status": self.snapshot,
                "info": self.info,
                "ledger": self.ledger,
            },
            local_actions={"invoke": self.invoke, "outage": self.outage},
            on_answer=self._answered,
            on_request=self._to_provider_log,
            log=self._say,
        ).start(self.options.host, self.options.port)

    def stop(self) -> None:
        """Stop everything this stack started, newest first; safe to call twice."""
        if self.http is not None:
            self.http.stop()
            self.http = None
        for runner in self.schedules:
            runner.stop()
        for runner in self.schedules:
            runner.join(_POLLER_GRACE_SECONDS)
        self.schedules = []
        for poller in self.pollers:
            poller.stop()
        for poller in self.pollers:
            poller.join(_POLLER_GRACE_SECONDS)  # let a running batch finish
        # Ends a batch that would not finish; each worker takes a moment to exit: in parallel.
        with ThreadPoolExecutor() as pool:
            list(pool.map(FunctionRuntime.close, self.runtimes.values()))
        for poller in self.pollers:
            poller.join()
        self.pollers = []
        self.runtimes = {}
        for _, sandbox in self.sandboxes:
            sandbox.stop()
        self.sandboxes = []
        if self.aws is not None:
            self.aws.stop()
            self.aws = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ observation

    def _say(self, line: str) -> None:
        with self._out_lock:
            self._out(line)

    def _function_output(self, logical_id: str, line: str) -> None:
        self.metrics.observe(line)
        if self.status is not None:
            self.status.record_log(logical_id, line)
        if self.options.function_logs and '"_aws"' not in line:  # EMF lines feed the tally only
            self._say(f"[{logical_id}] {line if self.options.json_logs else compact(line)}")

    def _answered(self, route: Route, invocation: Invocation, answer: HttpAnswer) -> None:
        if self.status is not None:
            self.status.record_answer(route.key, answer.status)

    def _to_provider_log(self, route: Route, request: HttpRequest, answer: HttpAnswer) -> None:
        """The provider sent this webhook: it is in the provider's log whatever the answer, unless
        the relay refused it as not the provider's (a forged or malformed request: 4xx)."""
        if answer.status in NOT_THE_PROVIDERS:
            return
        assert self.world is not None
        sandbox = provider_sandboxes(self.sandboxes).get(provider_of(self.world.functions[route.function]))
        if sandbox is not None:
            sandbox.observe_webhook(dict(request.headers), request.body, answer.status)

    def invoke(self, request: dict[str, Any]) -> dict[str, Any]:
        """POST /_local/invoke {"function": logical id, "event": {…}}: run a function now."""
        runtime = self.runtimes.get(str(request["function"]))
        if runtime is None:
            raise ValueError(f"no function {request['function']!r} runs in the local stack")
        invocation = runtime.invoke(request.get("event") or {})
        return {"ok": invocation.ok, "result": invocation.result, "error": invocation.error}

    def outage(self, request: dict[str, Any]) -> dict[str, Any]:
        """POST /_local/outage {"path": "/webhooks/stripe", "status": 503} (null status: over)."""
        assert self.http is not None
        path, status = str(request["path"]), request.get("status")
        if status is None:
            self.http.outages.pop(path, None)
        else:
            self.http.outages[path] = int(status)
        return {"outages": self.http.outages}

    def snapshot(self) -> dict[str, Any]:
        assert self.status is not None
        return self.status.snapshot()

    def ledger(self) -> list[dict[str, Any]]:
        assert self.status is not None
        return self.status.ledger()

    def info(self) -> dict[str, Any]:
        return stack_info(self)

    def banner(self) -> str:
        return banner(self)


def _print(line: str) -> None:
    print(line, file=sys.stdout, flush=True)
