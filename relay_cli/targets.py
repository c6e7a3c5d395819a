"""Where an operator command runs: the local stack (`--local`) or a deployed stack (`--stack NAME`).

The local stack's queues are named `<stack>-<LogicalId>` by local.world; a deployed stack's
are found in its CloudFormation outputs (ScanovaQueueUrl, ScanovaDeadLetterQueueUrl, …).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from relay.errors import ReplayError, aws_error
from relay.replay.replayer import Replayer
from relay.replay.scan import QueuePair
from relay.replay.wiring import build_replayer
from relay.vendors.registry import VENDORS

from local.world import LOCAL_STACK_NAME

DEFAULT_MOTO_PORT = "4566"
# Used when --config is not given and the file exists (run from the repository root).
DEFAULT_CONFIGS = {"local": "config/relay.local.yaml", "aws": "config/deploy/relay.yaml"}


def describe_stack(cloudformation: Any, stack_name: str) -> dict[str, Any]:
    """A deployed stack's description (outputs, parameters): read once per command."""
    try:
        return cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except (BotoCoreError, ClientError) as exc:
        raise ReplayError(f"cannot read stack {stack_name}: {aws_error(exc)}") from exc


def stack_queues(cloudformation: Any, stack_name: str) -> tuple[dict[str, QueuePair], str]:
    """The vendor queues and the table of a deployed stack, from its outputs (ScanovaQueueUrl, …)."""
    return queues_of(describe_stack(cloudformation, stack_name), stack_name)


def queues_of(stack: dict[str, Any], stack_name: str) -> tuple[dict[str, QueuePair], str]:
    """The vendor queues and the table in a stack's description (see describe_stack)."""
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    try:
        queues = {
            kind: QueuePair(kind, outputs[f"{prefix}QueueUrl"], outputs[f"{prefix}DeadLetterQueueUrl"])
            for kind, prefix in ((kind, spec.title) for kind, spec in VENDORS.items())
        }
        return queues, outputs["RelayTableName"]
    except KeyError as exc:
        raise ReplayError(f"stack {stack_name} has no output {exc}: is it a conversion relay stack?") from exc


def local_queues(sqs: Any, stack_name: str = LOCAL_STACK_NAME) -> tuple[dict[str, QueuePair], str]:
    """The local stack's queues and table, named as local.world.build_world creates them."""

    def url(logical_id: str) -> str:
        try:
            return sqs.get_queue_url(QueueName=f"{stack_name}-{logical_id}")["QueueUrl"]
        except (BotoCoreError, ClientError) as exc:
            raise ReplayError(
                f"cannot find queue {stack_name}-{logical_id} ({aws_error(exc)}): is the local stack "
                "running (make run)?"
            ) from exc

    queues = {
        kind: QueuePair(kind, url(f"{spec.title}Queue"), url(f"{spec.title}DeadLetterQueue"))
        for kind, spec in VENDORS.items()
    }
    return queues, f"{stack_name}-RelayTable"


@dataclass(frozen=True)
class Target:
    """The AWS clients and names of the stack a command works on."""

    session: Any  # boto3.session.Session
    sqs: Any
    dynamodb: Any
    queues: dict[str, QueuePair]
    table: str
    config_path: str | None
    local: bool
    # A deployed stack's parameters (ParameterKey → value), from the description connect() read.
    parameters: dict[str, str] = field(default_factory=dict)


def connect(args: argparse.Namespace) -> Target:
    """Clients, queues and table of the stack the command names (--local or --stack)."""
    import boto3  # not needed by check-config

    config_path = args.config or DEFAULT_CONFIGS["local" if args.local else "aws"]
    if not args.config and not Path(config_path).is_file():
        config_path = None  # vendor kinds still work as --destination
    if args.local:
        endpoint = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', DEFAULT_MOTO_PORT)}"
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto accepts any credentials
            region_name=args.region or os.environ.get("AWS_REGION", "us-east-1"),
        )
        sqs = session.client("sqs", endpoint_url=endpoint)
        dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        queues, table = local_queues(sqs, LOCAL_STACK_NAME)
        parameters: dict[str, str] = {}
    else:
        session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
        sqs, dynamodb = session.client("sqs"), session.client("dynamodb")
        stack = describe_stack(session.client("cloudformation"), args.stack)
        queues, table = queues_of(stack, args.stack)
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    return Target(session, sqs, dynamodb, queues, table, config_path, bool(args.local), parameters)


def replayer_for(args: argparse.Namespace) -> Replayer:
    return replayer_of(connect(args))


def replayer_of(target: Target) -> Replayer:
    return build_replayer(
        sqs=target.sqs,
        dynamodb=target.dynamodb,
        queues=target.queues,
        table_name=target.table,
        config_path=target.config_path,
        # One moto server answers at once; AWS samples a subset of hosts, so it gets a short poll.
        wait_seconds=0 if target.local else 1,
        native_supported=not target.local,
    )
