"""The AWS world of `template.yaml`, created in moto (tests, benchmarks, the local stack).

Tables, queues (with their redrive policies) and secrets are created from the
template itself, so the test world is the deployed world; each function's
environment is the template's Globals + its own variables with intrinsics
(!Ref, !GetAtt, !Sub, !If) resolved against what was created here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
# The local stack's name: its resources are named <it>-<LogicalId> (the operator CLI finds them so).
LOCAL_STACK_NAME = "conversion-relay-local"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags as their long form."""


def _intrinsic(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


@dataclass(frozen=True)
class Schedule:
    """An EventBridge schedule of a function (a SAM `Schedule` event)."""

    name: str  # the event's key in the function's Events
    expression: str  # rate(1 hour), cron(…)
    enabled: bool
    input: str | None = None  # the event's JSON, if the schedule gives one


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    http_routes: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    sqs_queue: str | None = None  # logical id of the triggering queue
    batch_size: int = 10
    max_concurrency: int = 1  # ScalingConfig.MaximumConcurrency of the SQS event source
    batching_window: int = 0
    report_batch_item_failures: bool = False
    schedules: list[Schedule] = field(default_factory=list)
    # Its identity policy: the statements of `Policies` (or of the role `Role` names), resolved.
    iam_statements: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class World:
    region: str
    account_id: str
    stack_name: str
    resources: dict[str, dict[str, str]]  # logical id → {"Ref": …, "Arn": …, "QueueName": …}
    parameters: dict[str, str]
    functions: dict[str, FunctionSpec]

    def ref(self, logical_id: str) -> str:
        return self.resources[logical_id]["Ref"]

    def queue_url(self, logical_id: str) -> str:
        return self.ref(logical_id)

    @property
    def table_name(self) -> str:
        return self.ref("RelayTable")

    @property
    def hash_keys(self) -> dict[str, str]:
        """Table name → its partition key attribute (what dynamodb:LeadingKeys is about)."""
        return {r["Ref"]: r["HashKey"] for r in self.resources.values() if "HashKey" in r}


class _Resolver:
    def __init__(self, world: World, conditions: dict[str, bool]):
        self.world = world
        self.conditions = conditions

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self._ref(arg)
        if key == "Fn::GetAtt":
            return self.world.resources[arg[0]][arg[1]]
        if key == "Fn::Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), arg)
        if key == "Fn::If":
            name, yes, no = arg
            return self(yes if self.conditions.get(name) else no)
        return {k: self(v) for k, v in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.world.region,
            "AWS::AccountId": self.world.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.world.stack_name,
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]  # type: ignore[return-value]
        if name in self.world.parameters:
            return self.world.parameters[name]
        return self.world.resources[name]["Ref"]

    def _sub(self, name: str) -> str:
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self.world.resources[logical_id][attribute]
        return str(self._ref(name))


def build_world(
    session: Any,
    *,
    secrets: dict[str, str] | None = None,
    stack_name: str = LOCAL_STACK_NAME,
    parameter_overrides: dict[str, str] | None = None,
    template: dict[str, Any] | None = None,
) -> World:
    """Create the template's tables, queues and given secrets with a boto3 session (moto)."""
    template = template or load_template()
    region = session.region_name or "us-east-1"
    sts = session.client("sts")
    account_id = sts.get_caller_identity()["Account"]
    parameters = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    parameters.update(parameter_overrides or {})
    world = World(region, account_id, stack_name, {}, parameters, {})
    resolve = _Resolver(world, conditions(template, parameters))
    resources = template["Resources"]

    # Tables first, then dead-letter queues, then queues (their redrive policy needs the DLQ ARN).
    dynamodb = session.client("dynamodb")
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        props = resource["Properties"]
        name = f"{stack_name}-{logical_id}"
        indexes = (
            {"GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"]}
            if "GlobalSecondaryIndexes" in props
            else {}
        )
        dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            **indexes,
        )
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        arn = f"arn:aws:dynamodb:{region}:{account_id}:table/{name}"
        (hash_key,) = [k["AttributeName"] for k in props["KeySchema"] if k["KeyType"] == "HASH"]
        world.resources[logical_id] = {"Ref": name, "Arn": arn, "HashKey": hash_key}

    sqs = session.client("sqs")
    queues = {k: r for k, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    ordered = sorted(queues, key=lambda k: "RedrivePolicy" in queues[k].get("Properties", {}))
    for logical_id in ordered:
        props = queues[logical_id].get("Properties", {})
        attributes = {
            key: str(props[key])
            for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds")
            if key in props
        }
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(resolve(props["RedrivePolicy"]))
        name = f"{stack_name}-{logical_id}"
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = f"arn:aws:sqs:{region}:{account_id}:{name}"
        world.resources[logical_id] = {"Ref": url, "Arn": arn, "QueueName": name}

    for logical_id, resource in resources.items():
        if resource["Type"] not in world.resources and logical_id not in world.resources:
            world.resources.setdefault(logical_id, {"Ref": f"{stack_name}-{logical_id}", "Arn": ""})

    secretsmanager = session.client("secretsmanager")
    for name, value in (secrets or {}).items():
        secretsmanager.create_secret(Name=name, SecretString=value)

    world.functions = _functions(template, resolve)
    return world


def conditions(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, bool]:
    """The template's Conditions, evaluated against these parameters (Equals, Not, And, Or)."""
    declared = template.get("Conditions", {})
    known: dict[str, bool] = {}

    def value(node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return parameters.get(arg, "")
            if key in ("Condition", "Fn::Condition"):
                return truth(arg)
            if key == "Fn::Equals":
                return str(value(arg[0])) == str(value(arg[1]))
            if key == "Fn::Not":
                return not value(arg[0])
            if key == "Fn::And":
                return all(value(item) for item in arg)
            if key == "Fn::Or":
                return any(value(item) for item in arg)
        return node

    def truth(name: str) -> bool:
        if name not in known:
            known[name] = bool(value(declared[name]))
        return known[name]

    return {name: truth(name) for name in declared}


def _functions(template: dict[str, Any], resolve: _Resolver) -> dict[str, FunctionSpec]:
    globals_ = template.get("Globals", {}).get("Function", {})
    global_env = globals_.get("Environment", {}).get("Variables", {})
    functions = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        variables = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        environment = {k: str(v) for k, v in resolve(variables).items() if v is not None}
        spec = FunctionSpec(
            logical_id=logical_id,
            code_uri=REPO_ROOT / props["CodeUri"],
            handler=props["Handler"],
            environment=environment,
            timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
            iam_statements=_statements(template, props, resolve),
        )
        for name, event in props.get("Events", {}).items():
            event_props = event.get("Properties", {})
            if event["Type"] == "HttpApi":
                spec.http_routes.append((event_props["Method"].upper(), event_props["Path"]))
            elif event["Type"] == "SQS":
                spec.sqs_queue = event_props["Queue"]["Fn::GetAtt"][0]
                spec.batch_size = int(event_props.get("BatchSize", 10))
                spec.max_concurrency = int(event_props.get("ScalingConfig", {}).get("MaximumConcurrency", 1))
                spec.batching_window = int(event_props.get("MaximumBatchingWindowInSeconds", 0))
                spec.report_batch_item_failures = "ReportBatchItemFailures" in event_props.get(
                    "FunctionResponseTypes", []
                )
            elif event["Type"] == "Schedule":
                state = resolve(event_props.get("State", "ENABLED"))
                spec.schedules.append(
                    Schedule(
                        name=name,
                        expression=str(resolve(event_props["Schedule"])),
                        enabled=state == "ENABLED" and event_props.get("Enabled", True) is not False,
                        input=event_props.get("Input"),
                    )
                )
        functions[logical_id] = spec
    return functions


def _statements(template: dict[str, Any], props: dict[str, Any], resolve: _Resolver) -> list[dict[str, Any]]:
    """A function's inline policy statements: SAM `Policies` documents, or its `Role`'s. Managed
    policies named by ARN are left out (the template allows only logs that way)."""
    role = props.get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        role_props = template["Resources"][role["Fn::GetAtt"][0]]["Properties"]
        documents = [policy["PolicyDocument"] for policy in role_props.get("Policies", [])]
    else:
        documents = [policy for policy in props.get("Policies", []) if isinstance(policy, dict)]
    statements = []
    for document in documents:
        for statement in resolve(document.get("Statement", [])):
            if statement:
                statements.append(statement)
    return statements
