"""Lambda execution environments for the local stack: one worker subprocess per environment.

Each function of template.yaml runs in its own Python process, started on its first
invocation (a cold start), with the environment Lambda would give it (the template's
variables plus Lambda's reserved ones and the local overrides) and nothing inherited
from the stack's own process. Module state, Powertools caches, boto3 clients and
os.environ are therefore the function's own, exactly as in Lambda: a missing variable
or a global shared by mistake fails here as it would in AWS.

Protocol (the worker side is `python -m local.worker`): the parent writes one JSON line per
invocation on the worker's stdin; the worker answers one JSON line on a private copy of
its original stdout. Whatever the function prints (Powertools logs, EMF metrics) goes to
the worker's stderr, which the parent reads line by line (`on_log`).

A worker that does not answer within the function's timeout is killed, like Lambda tears
down a timed-out environment; the next invocation starts a new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_PATH = REPO_ROOT / "layers" / "relay"
# Lambda gives the init phase 10 s; a loaded laptop or CI runner importing boto3 and
# Powertools for the first time may need longer, and a slow init is not what we test.
INIT_TIMEOUT_SECONDS = 30.0
_CLOSE_GRACE_SECONDS = 2.0

LogSink = Callable[[str, str], None]  # (function logical id, one line of its output)


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation, as Lambda reports it to its caller."""

    request_id: str
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None  # {"errorType", "errorMessage", "stackTrace"}
    cold_start: bool = False
    duration_ms: float = 0.0


def lambda_environment(
    *,
    logical_id: str,
    function_name: str,
    code_uri: Path,
    handler: str,
    variables: dict[str, str],
    region: str,
    memory_mb: int = 512,
    overrides: dict[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of one function: Lambda's reserved variables, the template's, overrides."""
    log_group = f"/aws/lambda/{function_name}"
    reserved = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(code_uri),
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{logical_id}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        # What `sam local` sets; Powertools and the AWS SDK know it means "not in AWS".
        "AWS_SAM_LOCAL": "true",
        # Never pick up the developer's real AWS profile or credentials.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # The layer is /opt/python in Lambda; the repository root makes `local` importable.
        "PYTHONPATH": os.pathsep.join([str(LAYER_PATH), str(REPO_ROOT)]),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return {**reserved, **variables, **(overrides or {})}


class InitError(Exception):
    """The function failed its init phase (import of the handler module)."""

    def __init__(self, error: dict[str, Any]):
        self.error = error
        super().__init__(f"{error.get('errorType')}: {error.get('errorMessage')}")


class _Environment:
    """One execution environment: a worker process that imported the handler once."""

    def __init__(self, logical_id: str, environment: dict[str, str], on_log: LogSink | None):
        self.logical_id = logical_id
        self._on_log = on_log
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=environment["LAMBDA_TASK_ROOT"],
            env=environment,
            # Its own process group: the terminal's Ctrl-C reaches the stack only, which closes
            # its workers itself (EOF on stdin), instead of a KeyboardInterrupt traceback each,
            # even from a worker still importing.
            start_new_session=True,
        )
        self._readers = [
            threading.Thread(target=self._read_replies, name=f"{logical_id}-replies", daemon=True),
            threading.Thread(target=self._read_logs, name=f"{logical_id}-logs", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_replies(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            try:
                self._replies.put(json.loads(raw))
            except ValueError:
                self._log(f"[local runtime] unreadable reply from the worker: {raw[:200]!r}")
        self._replies.put(None)  # end of stream: the worker is gone

    def _read_logs(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self._log(raw.decode("utf-8", errors="replace").rstrip("\n"))

    def _log(self, line: str) -> None:
        if self._on_log is not None:
            self._on_log(self.logical_id, line)

    def wait_ready(self, timeout: float) -> None:
        reply = self._next_reply(timeout, "init")
        if reply.get("type") != "ready":
            self.kill()
            raise InitError(reply)

    def invoke(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(request, separators=(",", ":")).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, OSError):
            return self._exit_error()
        return self._next_reply(timeout, "invoke")

    def _next_reply(self, timeout: float, phase: str) -> dict[str, Any]:
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            kind = "Sandbox.Timedout" if phase == "invoke" else "Runtime.InitTimeout"
            return {
                "type": "error",
                "errorType": kind,
                "errorMessage": f"Task timed out after {timeout:.2f} seconds",
            }
        return reply if reply is not None else self._exit_error()

    def _exit_error(self) -> dict[str, Any]:
        code = self.process.wait()
        return {
            "type": "error",
            "errorType": "Runtime.ExitError",
            "errorMessage": f"RequestId: the worker exited with status {code}",
        }

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()

    def close(self) -> None:
        """End of the environment: EOF on stdin lets the worker exit; kill it if it does not."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=_CLOSE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
        for reader in self._readers:
            reader.join(timeout=_CLOSE_GRACE_SECONDS)


class FunctionRuntime:
    """Invokes one function; keeps up to `max_environments` warm execution environments."""

    def __init__(
        self,
        *,
        logical_id: str,
        function_name: str,
        environment: dict[str, str],
        timeout_seconds: float,
        region: str,
        account_id: str,
        memory_mb: int = 512,
        max_environments: int = 1,
        on_log: LogSink | None = None,
        init_timeout: float = INIT_TIMEOUT_SECONDS,
    ):
        self.logical_id = logical_id
        self.function_name = function_name
        self.environment = environment
        self.timeout_seconds = timeout_seconds
        self._context = {
            "function_name": function_name,
            "timeout_seconds": timeout_seconds,
            "memory_limit_in_mb": memory_mb,
            "region": region,
            "account_id": account_id,
            "log_group_name": environment.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            "log_stream_name": environment.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
        }
        self._on_log = on_log
        self._init_timeout = init_timeout
        self._slots = threading.BoundedSemaphore(max_environments)
        self._lock = threading.Lock()
        self._idle: list[_Environment] = []
        self._all: set[_Environment] = set()
        self._closed = False
        self.cold_starts = 0

    def invoke(self, event: Any) -> Invocation:
        """Invoke synchronously (RequestResponse); errors come back in the Invocation, never raised."""
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        with self._slots:
            if self._closed:
                return self._failed(request_id, "Runtime.Unavailable", "the local stack is stopping", started)
            environment, cold = self._acquire()
            if environment is None:
                return self._failed(request_id, "Runtime.Unavailable", "the local stack is stopping", started)
            if cold:
                try:
                    environment.wait_ready(self._init_timeout)
                except InitError as exc:
                    self._discard(environment)
                    return Invocation(
                        request_id,
                        False,
                        error=_lambda_error(exc.error),
                        cold_start=True,
                        duration_ms=_elapsed_ms(started),
                    )
            request = {"event": event, "context": {**self._context, "aws_request_id": request_id}}
            reply = environment.invoke(request, self.timeout_seconds)
            if environment.alive and not self._closed:
                with self._lock:
                    self._idle.append(environment)
            else:
                self._discard(environment)
        if reply.get("type") == "result":
            return Invocation(
                request_id,
                True,
                result=reply.get("result"),
                cold_start=cold,
                duration_ms=_elapsed_ms(started),
            )
        return Invocation(
            request_id, False, error=_lambda_error(reply), cold_start=cold, duration_ms=_elapsed_ms(started)
        )

    def warm(self) -> bool:
        """Start one execution environment before the first invocation needs it (the local
        stack does this for every function at startup, so the first webhook does not wait for
        the imports). False when its init failed: the first invocation reports that error."""
        with self._slots:
            environment, cold = self._acquire()
            if environment is None:
                return False
            if cold:
                try:
                    environment.wait_ready(self._init_timeout)
                except InitError:
                    self._discard(environment)
                    return False
            with self._lock:
                if self._closed:
                    environment.close()
                    return False
                self._idle.append(environment)
        return True

    def _acquire(self) -> tuple[_Environment | None, bool]:
        with self._lock:
            while self._idle:
                environment = self._idle.pop()
                if environment.alive:
                    return environment, False
                self._all.discard(environment)
            if self._closed:
                return None, False
            environment = _Environment(self.logical_id, self.environment, self._on_log)
            self._all.add(environment)
            self.cold_starts += 1
            return environment, True

    def _discard(self, environment: _Environment) -> None:
        environment.kill()
        with self._lock:
            self._all.discard(environment)

    def _failed(self, request_id: str, kind: str, message: str, started: float) -> Invocation:
        return Invocation(
            request_id,
            False,
            error={"errorType": kind, "errorMessage": message},
            duration_ms=_elapsed_ms(started),
        )

    def close(self) -> None:
        """Shut every environment down; invocations still running end with an error."""
        with self._lock:
            self._closed = True
            environments = list(self._all)
            self._all.clear()
            self._idle.clear()
        for environment in environments:
            environment.close()


def _lambda_error(reply: dict[str, Any]) -> dict[str, Any]:
    """A worker's error reply as Lambda reports a function error."""
    return {k: reply[k] for k in ("errorType", "errorMessage", "stackTrace") if reply.get(k) is not None}


def _elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
