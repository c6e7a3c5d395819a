"""Fixtures shared by every test folder (unit, integration, e2e). Keep them small and stable.

- `aws_credentials` (autouse): a fake AWS account and region, so nothing can reach real AWS.
- `clear_parameter_caches` (autouse): Powertools parameters (secrets) start cold in every test.
- `world_secrets` / `moto_world`: the AWS world of template.yaml (table, queues, DLQs, secrets)
  created in moto for the duration of one test (`mock_aws`), via `local.world.build_world`.
- `load_handler`: import a function's `app.py` in isolation, with its environment applied.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from aws_lambda_powertools.logging.constants import LOGGER_ATTRIBUTE_PRECONFIGURED
from aws_lambda_powertools.utilities.parameters import constants as parameters_constants
from moto import mock_aws

from local.world import FunctionSpec, World, build_world, load_template

REGION = "us-east-1"

# The secrets the local stack documents (config/relay.local.yaml names them; the sandboxes
# accept these values). Tests that need others override the `world_secrets` fixture.
LOCAL_SECRETS: dict[str, str] = {
    "conversion-relay/stripe-webhook-secret": "whsec_local_conversion_relay",
    "conversion-relay/scanova/api-key": "sk_local_scanova",
    "conversion-relay/pagent/api-key": "pk_local_pagent",
    "conversion-relay/scalev/storefront-key": "sfpk_local_scalev",
    "conversion-relay/quicklizard/client-key": "ql_local_client",
    "conversion-relay/quicklizard/stripe-api-key": "sk_test_local_conversion_relay",
}


@pytest.fixture(autouse=True, scope="session")
def shared_botocore_data() -> Iterator[None]:
    """One botocore data loader for the whole run.

    Every boto3 session (each moto world, each cold-started handler) otherwise re-parses
    botocore's JSON models and endpoints: ~0.3 s per test. The data is read-only; sharing the
    loader is what a single long-lived session does anyway.
    """
    cached = functools.cache(botocore.loaders.create_loader)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", cached)
        yield


@functools.cache
def _template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a fixed region; no profile or endpoint from the developer's shell."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    # boto3.client() reuses one default session; a fresh one per test sees this environment.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.fixture(autouse=True)
def clear_parameter_caches() -> Iterator[None]:
    """Powertools caches secret values and their providers (with a boto3 client) per process."""
    # Drop the providers too (in place: Powertools and relay.secrets hold the same dict), so
    # none carries a cached value or a boto3 client from an earlier test's world.
    parameters_constants.DEFAULT_PROVIDERS.clear()
    yield
    parameters_constants.DEFAULT_PROVIDERS.clear()


@pytest.fixture
def world_secrets() -> dict[str, str]:
    """Secrets created in the moto world (name → SecretString). Override to change them."""
    return dict(LOCAL_SECRETS)


@pytest.fixture
def moto_world(world_secrets: dict[str, str]) -> Iterator[World]:
    """template.yaml's table, queues (with redrive) and `world_secrets`, in moto for one test.

    `moto_world.functions["<LogicalId>"].environment` is that function's resolved environment.
    """
    with mock_aws():
        yield build_world(boto3.Session(region_name=REGION), secrets=world_secrets, template=_template())


class _CurrentStdout:
    """A stream that writes to whatever sys.stdout is now (capsys swaps it per test)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def load_handler(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """Import a function's handler module afresh, as a cold start would.

    `load_handler(function, env)` takes a `FunctionSpec` (from `moto_world.functions`) or the
    path of an `app.py`, plus extra environment variables (they win over the function's).
    The environment is applied with monkeypatch for this test only, the module gets a unique
    name (so two loads never share state), and its Powertools logs go to the current
    sys.stdout, where `capsys` sees them next to the EMF metrics.
    """

    def load(function: FunctionSpec | str | Path, env: Mapping[str, str] | None = None) -> ModuleType:
        if isinstance(function, FunctionSpec):
            path = function.code_uri / f"{function.handler.rsplit('.', 1)[0]}.py"
            environment = {"AWS_LAMBDA_FUNCTION_NAME": function.logical_id, **function.environment}
        else:
            path, environment = Path(function), {}
        for name, value in {**environment, **(env or {})}.items():
            monkeypatch.setenv(name, str(value))
        monkeypatch.syspath_prepend(str(path.parent))  # Lambda puts the code directory first
        module_name = f"handler_{path.parent.name}_{uuid.uuid4().hex[:8]}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None, f"no handler module at {path}"
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, module_name, module)
        spec.loader.exec_module(module)
        _log_to_current_stdout()
        return module

    return load


def _log_to_current_stdout() -> None:
    # Powertools configures a service's logger once per process, binding the sys.stdout of
    # that moment; point its stream handlers at whatever stdout is current instead.
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and getattr(logger, LOGGER_ATTRIBUTE_PRECONFIGURED, False):
            for handler in logger.handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(_CurrentStdout())  # type: ignore[arg-type]
