"""Least privilege, read from the SAM-translated template (issue 14): what CloudFormation is
given, roles and managed policies SAM adds included, not only what template.yaml says.

samtranslator (installed with aws-sam-cli) translates offline; `sam validate --lint` runs as
`make validate` does. Tests read Given / When / Then in their comments or names.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
from relay import keyspaces
from relay.config import DEFAULT_SECRETS_PREFIX, SourceName, VendorKind, secret_namespace
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from local.world import TEMPLATE_PATH, load_template

REPO = Path(__file__).resolve().parents[2]


def functions_by_code(folder_prefix: str) -> dict[str, str]:
    """Function logical id → what its code folder serves: functions/ingest_<source>/, deliver_<kind>/."""
    found = {}
    for name, resource in load_template()["Resources"].items():
        folder = Path(resource.get("Properties", {}).get("CodeUri", "")).name
        if resource["Type"] == "AWS::Serverless::Function" and folder.startswith(folder_prefix):
            found[name] = folder.removeprefix(folder_prefix)
    return found


SOURCES = functions_by_code("ingest_")  # StripeWebhookFunction → stripe, …
DELIVER = functions_by_code("deliver_")  # ScanovaDeliverFunction → scanova, …
VENDORS = {function.removesuffix("DeliverFunction"): kind for function, kind in DELIVER.items()}
# Services whose actions read or change the relay's data (as opposed to writing its own logs).
DATA_PLANE = ("dynamodb:", "sqs:", "secretsmanager:", "kms:", "s3:", "sns:", "lambda:", "kinesis:", "ssm:")

# The key-space table of docs/security.md: function → {key space: the only actions it may call there}.
LEDGER_KEYS = f"{keyspaces.LEDGER}*"
KEY_SPACES: dict[str, dict[str, set[str]]] = {
    **{
        function: {
            f"{keyspaces.idempotency_prefix(source)}#*": {
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
            },
            f"{keyspaces.PARKED}{source}#*": {"dynamodb:UpdateItem"},
            f"{keyspaces.conversion_prefix(source)}#*": {"dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        }
        for function, source in SOURCES.items()
    },
    **{
        function: {
            LEDGER_KEYS: {
                "dynamodb:GetItem",
                "dynamodb:UpdateItem",
                "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem",
            }
        }
        for function in DELIVER
    },
    "ReplayFunction": {LEDGER_KEYS: {"dynamodb:BatchGetItem", "dynamodb:DeleteItem"}},
    # Relays every source's missed events: their claims, and the parked events it reads and forgets.
    "ReconcileFunction": {
        f"{keyspaces.IDEMPOTENCY}*": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        },
        f"{keyspaces.PARKED}*": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
        f"{keyspaces.CONVERSION}*": {"dynamodb:UpdateItem", "dynamodb:DeleteItem"},
    },
}


@functools.cache
def translated() -> dict[str, Any]:
    """template.yaml as SAM translates it for CloudFormation (code locations stubbed, as `sam
    validate` does; no AWS call: managed policy names are not used)."""
    template = yaml_parse(TEMPLATE_PATH.read_text(encoding="utf-8"))
    for resource in template["Resources"].values():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = "s3://bucket/key"

    class NoManagedPolicyLookup:
        def load(self) -> dict[str, str]:
            raise AssertionError("the template names a managed policy by name: use inline statements")

    return transform(copy.deepcopy(template), {}, NoManagedPolicyLookup())


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in translated()["Resources"].items() if r["Type"] == kind}


def role_of(function: str) -> dict[str, Any]:
    role = translated()["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    return translated()["Resources"][role]["Properties"]


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(function: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in role_of(function).get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def grants(function: str, prefix: str) -> list[tuple[set[str], list[Any], dict[str, Any]]]:
    """(actions, resources, condition) of each statement with an action of this service."""
    found = []
    for statement in statements(function):
        actions = set(listed(statement["Action"]))
        if any(action.startswith(prefix) for action in actions):
            assert all(action.startswith(prefix) for action in actions), (
                f"{function}: one service a statement"
            )
            found.append((actions, listed(statement["Resource"]), statement.get("Condition", {})))
    return found


def sub(value: Any) -> str:
    return value["Fn::Sub"] if isinstance(value, dict) and "Fn::Sub" in value else json.dumps(value)


# --- the template as a whole ----------------------------------------------------------------------


def test_sam_validate_lint_passes():
    sam = Path(sys.executable).with_name("sam")
    result = subprocess.run(  # noqa: S603 - the venv's own sam on the repository's template
        [str(sam), "validate", "--lint", "--region", "us-east-1", "--template-file", str(TEMPLATE_PATH)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_function_of_the_template_is_checked_here():
    functions = {
        n for n, r in load_template()["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    }
    assert functions == set(KEY_SPACES)
    assert set(SOURCES.values()) == set(get_args(SourceName))
    assert set(VENDORS.values()) == set(get_args(VendorKind))


@pytest.mark.parametrize("function", sorted(KEY_SPACES))
def test_no_data_plane_action_on_every_resource_and_no_managed_policy(function: str):
    for statement in statements(function):
        actions = listed(statement["Action"])
        assert statement["Effect"] == "Allow"
        assert not any(action == "*" or action.endswith(":*") for action in actions), (function, actions)
        if any(action.startswith(DATA_PLANE) for action in actions):
            assert "*" not in listed(statement["Resource"]), (function, actions)
    # Then no managed policy grants more (AWSLambdaBasicExecutionRole would allow any log group)
    assert "ManagedPolicyArns" not in role_of(function), function


@pytest.mark.parametrize("function", sorted(KEY_SPACES))
def test_a_function_writes_logs_to_its_own_log_group_only(function: str):
    # Given the function's log group (LoggingConfig)
    log_group = translated()["Resources"][function]["Properties"]["LoggingConfig"]["LogGroup"]
    assert log_group == {"Ref": f"{function}LogGroup"}
    # Then its only logs statement writes streams and events there, and creates no log group
    logs = [s for s in statements(function) if any(a.startswith("logs:") for a in listed(s["Action"]))]
    assert [(set(listed(s["Action"])), s["Resource"]) for s in logs] == [
        ({"logs:CreateLogStream", "logs:PutLogEvents"}, {"Fn::GetAtt": [f"{function}LogGroup", "Arn"]})
    ], function


# --- 1, 4: secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize(("function", "kind"), sorted(DELIVER.items()))
def test_a_deliver_function_reads_only_its_vendors_secret_namespace(function: str, kind: str):
    (secrets,) = grants(function, "secretsmanager:")
    actions, arns, _ = secrets
    assert actions == {"secretsmanager:GetSecretValue"}
    namespace = secret_namespace("${SecretsPrefix}", kind)  # the rule relay check-config applies
    assert [sub(arn) for arn in arns] == [
        f"arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{namespace}*"
    ]


def test_the_default_prefix_of_check_config_is_the_templates():
    assert load_template()["Parameters"]["SecretsPrefix"]["Default"] == DEFAULT_SECRETS_PREFIX


@pytest.mark.parametrize("function", sorted(SOURCES))
def test_an_ingest_function_reads_its_named_secrets_and_not_a_name_that_merely_starts_alike(function: str):
    # Secrets Manager appends -XXXXXX (6 characters) to a name: -* would also match name-old
    ((actions, arns, _),) = grants(function, "secretsmanager:")
    assert actions == {"secretsmanager:GetSecretValue"}
    for arn in map(sub, arns):
        assert arn.startswith(
            "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${"
        )
        assert arn.endswith("Name}-??????"), arn


# --- 2: queues and logs of the deliver functions ----------------------------------------------------


@pytest.mark.parametrize(("vendor", "kind"), sorted(VENDORS.items()))
def test_a_deliver_function_works_its_own_queue_and_dlq_and_logs_to_its_own_group(vendor: str, kind: str):
    function = f"{vendor}DeliverFunction"
    sqs = {
        frozenset(actions): [r["Fn::GetAtt"] for r in arns] for actions, arns, _ in grants(function, "sqs:")
    }
    assert sqs == {
        frozenset(
            {
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            }
        ): [[f"{vendor}Queue", "Arn"]],
        frozenset({"sqs:SendMessage"}): [[f"{vendor}DeadLetterQueue", "Arn"]],
    }
    ((actions, arns, _),) = grants(function, "logs:")
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert arns == [{"Fn::GetAtt": [f"{function}LogGroup", "Arn"]}]
    assert "ManagedPolicyArns" not in role_of(function)  # no AWSLambdaSQSQueueExecutionRole


# --- 3: the table, by action and by key space ----------------------------------------------------------


@pytest.mark.parametrize("function", sorted(KEY_SPACES))
def test_table_access_is_scoped_by_action_and_leading_key(function: str):
    granted = {}
    for actions, arns, condition in grants(function, "dynamodb:"):
        assert arns == [{"Fn::GetAtt": ["RelayTable", "Arn"]}]
        ((keys,),) = [condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]]
        assert set(condition) == {"ForAllValues:StringLike"} and keys not in granted, function
        granted[keys] = actions
    assert granted == KEY_SPACES[function], function


# --- 5: the HTTP API's access log ------------------------------------------------------------------------

ALLOWED_CONTEXT = {
    "$context.requestId",
    "$context.requestTime",
    "$context.routeKey",
    "$context.status",
    "$context.identity.sourceIp",
    "$context.responseLength",
    "$context.responseLatency",
    "$context.integrationLatency",
    "$context.integrationErrorMessage",
}


def test_the_http_api_logs_each_request_by_route_to_its_own_group_with_a_retention():
    ((_, stage),) = resources("AWS::ApiGatewayV2::Stage").items()
    settings = stage["Properties"]["AccessLogSettings"]
    group = settings["DestinationArn"]["Fn::GetAtt"][0]
    assert translated()["Resources"][group]["Type"] == "AWS::Logs::LogGroup"
    assert translated()["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # Then each line is JSON of context variables that hold no body, path or query (PII)
    fields = json.loads(settings["Format"])
    assert "$context.routeKey" in fields.values()
    assert set(fields.values()) <= ALLOWED_CONTEXT
