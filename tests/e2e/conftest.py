"""End-to-end fixtures: the whole local stack (`python -m local run`) on free ports, driven over HTTP.

The stack runs as its own process, exactly as `make run` starts it, with the local relay
config rewritten to free ports, retry delays scaled by 0.001 (1 s each) and a 0.2 s batching window.
Tests reach it only over HTTP: the webhook routes, GET /_local/*, the sandboxes' /_sandbox/*.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local.commands import send_document

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_CONFIG = REPO_ROOT / "config" / "relay.local.yaml"
STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0
SETTLE_SECONDS = 40.0
_LOOPBACK_PORT = re.compile(r"127\.0\.0\.1:(\d+)")
# What the stack reads from its environment: a developer's own values must not leak in.
_STACK_VARIABLES = (
    "PORT",
    "MOTO_PORT",
    "RELAY_CONFIG",
    "RETRY_DELAY_SCALE",
    "BATCHING_WINDOW",
    "STRIPE_WEBHOOK_SECRET",
    "HUBSPOT_CLIENT_SECRET",
    "PIPEDRIVE_BASIC_AUTH",
    "PADDLE_WEBHOOK_SECRET",
    "SHOPIFY_WEBHOOK_SECRET",
    "EVENTS_WEBHOOK_SECRET",
    "HUBSPOT_PRIVATE_APP_TOKEN",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], Any], what: str, timeout: float = SETTLE_SECONDS) -> Any:
    """Poll `condition` every 50 ms until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def poll() -> Callable[..., Any]:
    return wait_for


class LocalStackClient:
    """The running stack as its users see it: HTTP endpoints only."""

    def __init__(self, url: str, sandboxes: dict[str, str], log: Path, info: dict[str, Any] | None = None):
        self.url = url
        self.sandboxes = sandboxes
        self.log = log
        self.info = info or {}

    def get(self, endpoint: str) -> Any:
        answer = requests.get(f"{self.url}/_local/{endpoint}", timeout=30)
        answer.raise_for_status()
        return answer.json()

    def status(self) -> dict[str, Any]:
        return self.get("status")

    def ledger(self) -> list[dict[str, Any]]:
        return self.get("ledger")

    def send(self, api_event: dict[str, Any]) -> requests.Response:
        """The `make send` path: signed again with the stack's secret and the current time."""
        return send_document(api_event, base_url=self.url)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(f"{self.url}{path}", data=body, headers=headers, timeout=30)

    def accepted(self, sandbox: str) -> list[dict[str, Any]]:
        return requests.get(f"{self.sandboxes[sandbox]}/_sandbox/accepted", timeout=10).json()

    def vendor_requests(self, sandbox: str) -> list[dict[str, Any]]:
        return requests.get(f"{self.sandboxes[sandbox]}/_sandbox/requests", timeout=10).json()

    def set_faults(self, sandbox: str, **plan: Any) -> None:
        requests.post(f"{self.sandboxes[sandbox]}/_sandbox/faults", json=plan, timeout=10).raise_for_status()

    def reset_sandboxes(self) -> None:
        for url in self.sandboxes.values():
            requests.post(f"{url}/_sandbox/reset", timeout=10).raise_for_status()
            requests.post(f"{url}/_sandbox/faults", json={}, timeout=10).raise_for_status()

    def invoke(self, function: str, event: dict[str, Any] | None = None) -> Any:
        """POST /_local/invoke: run a function of the stack now; its answer."""
        answer = requests.post(
            f"{self.url}/_local/invoke", json={"function": function, "event": event or {}}, timeout=300
        )
        answer.raise_for_status()
        outcome = answer.json()
        assert outcome["ok"], outcome["error"]
        return outcome["result"]

    def outage(self, path: str, status: int | None = 503) -> None:
        """POST /_local/outage: the route answers `status` without invoking (None: back up)."""
        requests.post(
            f"{self.url}/_local/outage", json={"path": path, "status": status}, timeout=10
        ).raise_for_status()

    def idle(self) -> bool:
        """No job waiting, in flight or delayed in any vendor queue."""
        return all(q["visible"] + q["not_visible"] + q["delayed"] == 0 for q in self.status()["queues"])

    def settle(self) -> None:
        wait_for(self.idle, "every vendor queue to drain")


@contextlib.contextmanager
def running_stack(root: Path, config_text: str, *options: str) -> Iterator[LocalStackClient]:
    """The whole relay (`python -m local run`) on free ports with this config; stopped after."""
    config = root / "relay.local.yaml"
    config.write_text(config_text, encoding="utf-8")
    port = free_port()
    log_path = root / "stack.log"
    environment = {k: v for k, v in os.environ.items() if k not in _STACK_VARIABLES}
    command = [
        sys.executable,
        "-m",
        "local",
        "run",
        "--config",
        str(config),
        "--port",
        str(port),
        "--moto-port",
        str(free_port()),
        "--retry-delay-scale",
        "0.001",  # every retry after SQS's 1 s minimum
        "--batching-window",
        "0.2",
        "--schedule-scale",
        "0",  # no scheduled run in the middle of a test: tests invoke what they need
        *options,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=environment
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> dict[str, Any] | None:
        if process.poll() is not None:
            raise AssertionError(f"the local stack exited ({process.returncode}):\n{log_path.read_text()}")
        try:
            return requests.get(f"{url}/_local/info", timeout=2).json()
        except requests.ConnectionError:
            return None

    try:
        info = wait_for(ready, "the local stack to start", timeout=STARTUP_SECONDS)
        yield LocalStackClient(url, info["sandboxes"], log_path, info)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
    assert code == 0, f"the local stack did not stop cleanly ({code}):\n{log_path.read_text()[-4000:]}"


def config_on_free_ports(text: str | None = None) -> str:
    """The local relay config (or `text`), its loopback ports replaced by free ones."""
    text = LOCAL_CONFIG.read_text(encoding="utf-8") if text is None else text
    ports = {port: free_port() for port in set(_LOOPBACK_PORT.findall(text))}
    return _LOOPBACK_PORT.sub(lambda m: f"127.0.0.1:{ports[m.group(1)]}", text)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory) -> Iterator[LocalStackClient]:
    """Given the whole relay running locally (`make run`), on free ports, with fast retries."""
    with running_stack(tmp_path_factory.mktemp("local-stack"), config_on_free_ports()) as stack:
        yield stack


@pytest.fixture
def stack(local_stack: LocalStackClient) -> Iterator[LocalStackClient]:
    """The session's stack, settled, with its sandboxes emptied and their faults cleared."""
    local_stack.settle()
    local_stack.reset_sandboxes()
    yield local_stack
    local_stack.reset_sandboxes()
