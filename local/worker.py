"""The worker side of a local execution environment (`python -m local.worker`, started by
local.runtime): init (the function's IAM, then the handler import), then one invocation per
line on stdin, answered on a private copy of stdout; whatever the function prints goes to
stderr, which the parent reads as the function's log.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import IO, Any

from local import iam
from local.lambda_context import LambdaContext


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "type": "error",
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _init_error_type(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return "Runtime.UserCodeSyntaxError"
    if isinstance(exc, ImportError):
        return "Runtime.ImportModuleError"
    return type(exc).__name__


def _load_handler(handler: str) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = handler.rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


def _send(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, separators=(",", ":")) + "\n")
    channel.flush()


def worker_main() -> int:
    """The worker process: init (import the handler), then one invocation per stdin line."""
    # Keep the original stdout for replies; everything the function prints goes to stderr.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    if task_root not in sys.path:
        sys.path.insert(0, task_root)
    iam.enforce_from_environment(os.environ)  # before the handler makes its first client
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except Exception as exc:
        traceback.print_exc()
        _send(channel, _error(exc, _init_error_type(exc)))
        return 1
    _send(channel, {"type": "ready"})

    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(**request["context"])
        try:
            result = handler(request["event"], context)
        except SystemExit as exc:
            _send(channel, _error(exc, "Runtime.ExitError"))
            return 1
        except Exception as exc:
            print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc()
            _send(channel, _error(exc))
            continue
        try:
            _send(channel, {"type": "result", "result": result})
        except (TypeError, ValueError) as exc:  # the answer is not JSON: Lambda's marshal error
            _send(channel, _error(exc, "Runtime.MarshalError"))
    return 0


if __name__ == "__main__":
    raise SystemExit(worker_main())
