"""template.yaml has, for every vendor of the registry (relay.vendors.registry), the resources the
relay expects by name: the check that keeps the template and the vendor modules in step.

Adding a vendor (docs/adding-a-vendor.md) without its template entries fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from relay.vendors.registry import VENDORS
from relay.vendors.spec import VendorSpec

from local.world import load_template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
SPECS = list(VENDORS.values())


def env(function: str) -> dict[str, Any]:
    return RESOURCES[function]["Properties"]["Environment"]["Variables"]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_each_vendor_has_its_queue_dead_letter_queue_alarm_and_outputs(spec: VendorSpec) -> None:
    queue, dlq = f"{spec.title}Queue", f"{spec.title}DeadLetterQueue"
    assert RESOURCES[queue]["Type"] == RESOURCES[dlq]["Type"] == "AWS::SQS::Queue"
    redrive = RESOURCES[queue]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq, "Arn"]}
    alarm = RESOURCES[f"{spec.title}DeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]
    outputs = TEMPLATE["Outputs"]
    assert outputs[f"{queue}Url"]["Value"] == {"Ref": queue}
    assert outputs[f"{dlq}Url"]["Value"] == {"Ref": dlq}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_each_vendor_has_its_deliver_function_on_its_own_queue(spec: VendorSpec) -> None:
    function = RESOURCES[f"{spec.title}DeliverFunction"]["Properties"]
    assert function["CodeUri"] == f"functions/deliver_{spec.kind}/"
    (event,) = function["Events"].values()
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": [f"{spec.title}Queue", "Arn"]}
    variables = function["Environment"]["Variables"]
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": f"{spec.title}DeadLetterQueue"}
    # the deliver function's redrive count is the queue's own
    redrive = RESOURCES[f"{spec.title}Queue"]["Properties"]["RedrivePolicy"]
    assert variables["MAX_RECEIVE_COUNT"] == str(redrive["maxReceiveCount"])


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_each_deliver_handler_builds_the_deliverer_of_its_own_kind(spec: VendorSpec) -> None:
    source = (REPO / "functions" / f"deliver_{spec.kind}" / "app.py").read_text(encoding="utf-8")
    calls = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "build_deliverer"
    ]
    assert [ast.literal_eval(call.args[0]) for call in calls] == [spec.kind]


def test_every_ingest_function_can_queue_to_every_vendor() -> None:
    ingest = [
        name
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function"
        and str(resource["Properties"]["CodeUri"]).startswith("functions/ingest_")
    ]
    assert ingest
    for name in ingest:
        for spec in SPECS:
            assert env(name)[f"{spec.env_prefix}_QUEUE_URL"] == {"Ref": f"{spec.title}Queue"}, name


def test_replay_knows_every_vendor_queue_pair() -> None:
    variables = env("ReplayFunction")
    for spec in SPECS:
        assert variables[f"{spec.env_prefix}_QUEUE_URL"] == {"Ref": f"{spec.title}Queue"}
        assert variables[f"{spec.env_prefix}_DLQ_URL"] == {"Ref": f"{spec.title}DeadLetterQueue"}


def test_the_template_has_no_vendor_the_registry_does_not_know() -> None:
    deliver = {
        name.removesuffix("DeliverFunction")
        for name, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function" and name.endswith("DeliverFunction")
    }
    assert deliver == {spec.title for spec in SPECS}
