"""`relay backfill --stack`'s read keys (relay_cli.read_keys): the stack is described once and
each secret looked up and read once a run, however many steps ask for it (moto, calls counted)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from moto import mock_aws
from relay.vendors.registry import VENDORS

from relay_cli import backfill
from relay_cli.read_keys import HUBSPOT_TOKEN_PARAMETER, ReadKeys
from relay_cli.targets import connect

REGION = "us-east-1"
SECRETS = {
    "StripeReadKeySecretName": "relay/stripe-read-key",
    "HubSpotReadKeySecretName": "relay/hubspot-read-key",
    HUBSPOT_TOKEN_PARAMETER: "relay/hubspot-token",
}


def _template() -> str:
    outputs = {"RelayTableName": {"Value": "relay-table"}}
    for spec in VENDORS.values():
        outputs[f"{spec.title}QueueUrl"] = {"Value": f"https://sqs/{spec.title}Queue"}
        outputs[f"{spec.title}DeadLetterQueueUrl"] = {"Value": f"https://sqs/{spec.title}DLQ"}
    return json.dumps(
        {
            "Parameters": {name: {"Type": "String"} for name in SECRETS},
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
            "Outputs": outputs,
        }
    )


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[str, str | None]]:
    """Every AWS call any client makes: (operation, SecretId or StackName)."""
    counted: Counter[tuple[str, str | None]] = Counter()
    make_api_call = BaseClient._make_api_call

    def counting(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        counted[(operation, params.get("SecretId") or params.get("StackName"))] += 1
        return make_api_call(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    return counted


def test_a_backfill_describes_the_stack_once_and_reads_each_secret_once(calls, monkeypatch) -> None:
    with mock_aws():
        # Given a deployed relay stack naming the Stripe and HubSpot read keys and the HubSpot token
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="relay",
            TemplateBody=_template(),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in SECRETS.items()],
        )
        secretsmanager = boto3.client("secretsmanager", region_name=REGION)
        for name in SECRETS.values():
            secretsmanager.create_secret(Name=name, SecretString=f"value of {name}")
        for name in ("STRIPE_READ_KEY", "HUBSPOT_READ_KEY", "HUBSPOT_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        assembled: dict[str, Any] = {}

        def assemble(**parts: Any) -> None:
            assembled.update(parts, keys={s: key() for s, key in parts["keys"].items()})

        # Not the real relay.backfill.wiring: importing the ingest pipeline here would bind its
        # module logger to this process's (undefined) service before the handlers' tests load it.
        monkeypatch.setitem(sys.modules, "relay.backfill.wiring", SimpleNamespace(assemble=assemble))
        args = argparse.Namespace(
            stack="relay",
            local=False,
            region=REGION,
            profile=None,
            config="relay.yaml",
            source=None,
            event=None,
        )
        calls.clear()

        # When a backfill finds its sources and builds its readers (what run_backfill does)
        target = connect(args)
        keys = ReadKeys(target)
        sources = backfill._sources(args, keys, target)
        backfill._backfill(target, keys, sources, dry_run=True)

    # Then the stack was described once, and each secret looked up and read at most once
    assert set(sources) == {"hubspot", "stripe"}
    assert assembled["keys"] == {s: f"value of relay/{s}-read-key" for s in sources}
    assert assembled["environ"]["HUBSPOT_TOKEN"] == "value of relay/hubspot-token"
    assert calls[("DescribeStacks", "relay")] == 1
    repeated = {call: count for call, count in calls.items() if count > 1}
    assert repeated == {}
    assert {secret for (operation, secret) in calls if operation == "GetSecretValue"} == set(SECRETS.values())
