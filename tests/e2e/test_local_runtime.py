"""The local stack's execution environments (local.runtime) with stub functions.

Each function runs in its own worker process: its own module state, its own
environment, a cold start on first use, Lambda's error types for init errors,
handler errors and timeouts.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from local.runtime import FunctionRuntime, lambda_environment

pytestmark = pytest.mark.e2e

STATEFUL = """
import os
from pathlib import Path

Path(os.environ["IMPORTED_MARKER"]).write_text("imported")
CALLS = []  # module state: per execution environment


def lambda_handler(event, context):
    CALLS.append(event)
    return {
        "name": os.environ["FUNCTION_LABEL"],
        "calls": len(CALLS),
        "canary": os.environ.get("LOCAL_RUNTIME_CANARY"),
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
    }
"""


def make_function(root: Path, name: str, code: str) -> Path:
    code_uri = root / name
    code_uri.mkdir()
    (code_uri / "app.py").write_text(textwrap.dedent(code))
    return code_uri


def runtime_for(code_uri: Path, *, timeout: float = 5, **variables: str) -> FunctionRuntime:
    function_name = f"local-{code_uri.name}"
    environment = lambda_environment(
        logical_id=code_uri.name,
        function_name=function_name,
        code_uri=code_uri,
        handler="app.lambda_handler",
        variables=variables,
        region="us-east-1",
    )
    return FunctionRuntime(
        logical_id=code_uri.name,
        function_name=function_name,
        environment=environment,
        timeout_seconds=timeout,
        region="us-east-1",
        account_id="123456789012",
    )


@pytest.fixture
def runtimes():
    started: list[FunctionRuntime] = []
    yield started
    for runtime in started:
        runtime.close()


def test_each_function_has_its_own_module_state_environment_and_cold_start(tmp_path, runtimes, monkeypatch):
    """Given two functions whose handler modules have the same name and a module-level list,
    When they are invoked (a twice, b once),
    Then each counts its own calls, sees only its own environment, and imports on first use."""
    monkeypatch.setenv("LOCAL_RUNTIME_CANARY", "the stack's own environment")
    markers = {name: tmp_path / f"{name}.imported" for name in ("a", "b")}
    a = runtime_for(
        make_function(tmp_path, "a", STATEFUL), FUNCTION_LABEL="a", IMPORTED_MARKER=str(markers["a"])
    )
    b = runtime_for(
        make_function(tmp_path, "b", STATEFUL), FUNCTION_LABEL="b", IMPORTED_MARKER=str(markers["b"])
    )
    runtimes += [a, b]
    assert not markers["a"].exists(), "nothing is imported before the first invocation"

    first, second, other = a.invoke({"n": 1}), a.invoke({"n": 2}), b.invoke({"n": 1})

    assert markers["a"].exists() and markers["b"].exists()
    assert [first.result["calls"], second.result["calls"], other.result["calls"]] == [1, 2, 1]
    assert {first.result["name"], other.result["name"]} == {"a", "b"}
    assert first.result["canary"] is None, "the stack's environment does not leak into a function"
    assert first.result["pid"] == second.result["pid"] != other.result["pid"]
    assert (first.cold_start, second.cold_start, other.cold_start) == (True, False, True)
    assert first.result["request_id"] == first.request_id
    assert first.result["function_name"] == "local-a"
    assert 0 < first.result["remaining_ms"] <= 5000


def test_an_init_error_fails_the_invocation_and_the_next_one_cold_starts_again(tmp_path, runtimes):
    """Given a function whose module reads a variable the environment lacks,
    When it is invoked twice,
    Then both invocations fail with the init error (KeyError), each from a fresh cold start."""
    runtime = runtime_for(
        make_function(
            tmp_path,
            "broken",
            "import os\nTABLE = os.environ['TABLE_NAME']\n"
            "def lambda_handler(event, context):\n    return TABLE\n",
        )
    )
    runtimes.append(runtime)

    first, second = runtime.invoke({}), runtime.invoke({})

    for invocation in (first, second):
        assert not invocation.ok
        assert invocation.error["errorType"] == "KeyError"
        assert invocation.cold_start
    assert runtime.cold_starts == 2


def test_a_handler_error_is_reported_and_the_environment_stays_warm(tmp_path, runtimes):
    """Given a handler that raises on demand,
    When it raises and is then invoked again,
    Then the error type and message come back and the second invocation reuses the environment."""
    runtime = runtime_for(
        make_function(
            tmp_path,
            "raising",
            """
            def lambda_handler(event, context):
                if event.get("fail"):
                    raise ValueError("no good")
                return "fine"
            """,
        )
    )
    runtimes.append(runtime)

    failed, fine = runtime.invoke({"fail": True}), runtime.invoke({})

    assert not failed.ok
    assert failed.error["errorType"] == "ValueError"
    assert failed.error["errorMessage"] == "no good"
    assert fine.ok and fine.result == "fine"
    assert not fine.cold_start


def test_a_timed_out_invocation_tears_the_environment_down(tmp_path, runtimes):
    """Given a function with a 1 s timeout whose handler can hang,
    When an invocation hangs,
    Then it fails as Lambda's timeout and the next invocation gets a new environment."""
    runtime = runtime_for(
        make_function(
            tmp_path,
            "hanging",
            """
            import threading

            def lambda_handler(event, context):
                if event.get("hang"):
                    threading.Event().wait(30)
                return "done"
            """,
        ),
        timeout=1,
    )
    runtimes.append(runtime)
    runtime.invoke({})  # warm

    hung, after = runtime.invoke({"hang": True}), runtime.invoke({})

    assert not hung.ok
    assert hung.error["errorType"] == "Sandbox.Timedout"
    assert after.ok and after.result == "done"
    assert after.cold_start


def test_an_answer_that_is_not_json_is_a_marshal_error(tmp_path, runtimes):
    """Given a handler returning a set, When invoked, Then the invocation fails as Runtime.MarshalError."""
    runtime = runtime_for(
        make_function(tmp_path, "unmarshallable", "def lambda_handler(event, context):\n    return {1, 2}\n")
    )
    runtimes.append(runtime)

    invocation = runtime.invoke({})

    assert not invocation.ok
    assert invocation.error["errorType"] == "Runtime.MarshalError"


def test_the_environment_carries_lambdas_reserved_variables_and_the_overrides(tmp_path):
    """Given a function spec with template variables and local overrides,
    When its environment is built,
    Then it has Lambda's reserved variables, the template's, the overrides last, and no AWS profile."""
    environment = lambda_environment(
        logical_id="Fn",
        function_name="stack-Fn",
        code_uri=tmp_path,
        handler="app.lambda_handler",
        variables={"TABLE_NAME": "t", "RELAY_CONFIG": "/opt/relay.yaml"},
        region="eu-west-1",
        overrides={"RELAY_CONFIG": "/abs/relay.yaml"},
    )

    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == "stack-Fn"
    assert environment["LAMBDA_TASK_ROOT"] == str(tmp_path)
    assert environment["_HANDLER"] == "app.lambda_handler"
    assert environment["AWS_REGION"] == environment["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert environment["TABLE_NAME"] == "t"
    assert environment["RELAY_CONFIG"] == "/abs/relay.yaml"
    assert environment["AWS_CONFIG_FILE"] == environment["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert "HOME" not in environment


def test_ctrl_c_in_the_terminal_reaches_the_stack_not_its_workers(tmp_path, runtimes):
    """Given a warm function, Then its worker is not in the stack's process group, so the
    terminal's Ctrl-C (SIGINT to the foreground group) reaches only the stack, which closes its
    workers itself: no KeyboardInterrupt traceback from each (tests/e2e/test_stack_run.py sends
    the real Ctrl-C)."""
    code_uri = make_function(tmp_path, "quiet", "def lambda_handler(event, context):\n    return event\n")
    runtime = runtime_for(code_uri)
    runtimes.append(runtime)
    assert runtime.invoke({"n": 1}).result == {"n": 1}
    (worker,) = runtime._all

    assert os.getpgid(worker.process.pid) != os.getpgid(0)


def test_a_warmed_function_answers_its_first_invocation_without_a_cold_start(tmp_path, runtimes):
    """Given a function warmed at startup (what the local stack does for every function), When it
    is first invoked, Then its handler module was imported before, and the invocation is warm."""
    marker = tmp_path / "imported"
    code_uri = make_function(tmp_path, "warmed", STATEFUL)
    runtime = runtime_for(code_uri, IMPORTED_MARKER=str(marker), FUNCTION_LABEL="warmed")
    runtimes.append(runtime)

    assert runtime.warm() is True
    assert marker.read_text() == "imported"
    first = runtime.invoke({})

    assert first.ok and first.cold_start is False
    assert first.result["calls"] == 1 and runtime.cold_starts == 1
