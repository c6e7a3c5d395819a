"""The local stack's IAM (local/iam.py): a function's AWS calls are checked against the policy
template.yaml gives it, as AWS would, so a grant missing from the template fails locally first.

The policies come from the moto world built from template.yaml (resolved ARNs); the calls are
real boto3 calls into moto, refused before they leave when the policy does not allow them.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from relay import keyspaces

from local import iam
from local.world import World

pytestmark = pytest.mark.integration


def enforce_as(world: World, function: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Enforce one function's template policy in this process (restored after the test)."""
    monkeypatch.setattr(BaseClient, "_make_api_call", BaseClient._make_api_call)
    reports: list[str] = []
    account = iam.Account(world.region, world.account_id, world.hash_keys)
    iam.enforce(function, iam.Policy(world.functions[function].iam_statements), account, reports.append)
    return reports


def update(dynamodb: BaseClient, table: str, key: str) -> None:
    dynamodb.update_item(
        TableName=table,
        Key={"id": {"S": key}},
        UpdateExpression="SET touched = :t",
        ExpressionAttributeValues={":t": {"S": "yes"}},
    )


def read(dynamodb: BaseClient, table: str, *keys: str) -> dict:
    """One BatchGetItem of the given keys."""
    return dynamodb.batch_get_item(RequestItems={table: {"Keys": [{"id": {"S": key}} for key in keys]}})


def denied(call: object) -> str:
    with pytest.raises(ClientError) as refused:
        call()  # type: ignore[operator]
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    return str(refused.value)


def test_an_ingest_function_writes_its_own_sources_key_spaces_and_nothing_else(
    moto_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the Stripe webhook function's policy enforced
    reports = enforce_as(moto_world, "StripeWebhookFunction", monkeypatch)
    dynamodb, table = boto3.client("dynamodb"), moto_world.table_name
    # When it claims a Stripe conversion and parks a Stripe event, Then moto answers
    update(dynamodb, table, f"{keyspaces.conversion_prefix('stripe')}#c1")
    update(dynamodb, table, f"{keyspaces.PARKED}stripe#evt_1")
    # And when it touches another source's claim, the ledger, or scans, Then AWS's error comes back
    message = denied(lambda: update(dynamodb, table, f"{keyspaces.conversion_prefix('paddle')}#c1"))
    assert "dynamodb:UpdateItem" in message and "conversion#paddle#c1" in message
    denied(lambda: update(dynamodb, table, f"{keyspaces.LEDGER}scanova#c1"))
    denied(lambda: dynamodb.scan(TableName=table))
    assert reports and all("AccessDenied" in line for line in reports)


def test_an_ingest_function_sends_to_the_vendor_queues_not_to_a_dead_letter_queue(
    moto_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the Paddle webhook function's policy enforced
    enforce_as(moto_world, "PaddleWebhookFunction", monkeypatch)
    sqs = boto3.client("sqs")
    # When it queues jobs (one, or a batch), Then SQS takes them; a DLQ and a receive are refused
    sqs.send_message(QueueUrl=moto_world.queue_url("ScanovaQueue"), MessageBody="{}")
    sqs.send_message_batch(
        QueueUrl=moto_world.queue_url("PagentQueue"), Entries=[{"Id": "1", "MessageBody": "{}"}]
    )  # authorized as sqs:SendMessage, as SQS does
    dead_letters = moto_world.queue_url("ScanovaDeadLetterQueue")
    denied(lambda: sqs.send_message(QueueUrl=dead_letters, MessageBody="{}"))
    denied(lambda: sqs.receive_message(QueueUrl=moto_world.queue_url("ScanovaQueue")))


def test_a_deliver_function_batches_ledger_items_only_and_reads_its_vendors_secrets(
    moto_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Scanova's deliver function's policy enforced
    enforce_as(moto_world, "ScanovaDeliverFunction", monkeypatch)
    dynamodb, table = boto3.client("dynamodb"), moto_world.table_name

    def put(*keys: str) -> None:
        dynamodb.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": {"id": {"S": key}}}} for key in keys]}
        )

    # When it records ledger outcomes in a batch, Then moto takes them
    put(f"{keyspaces.LEDGER}scanova#c1", f"{keyspaces.LEDGER}scanova#c2")
    assert read(dynamodb, table, f"{keyspaces.LEDGER}scanova#c1")["Responses"][table]
    # And a batch with one key outside the ledger is refused whole (ForAllValues)
    denied(lambda: put(f"{keyspaces.LEDGER}scanova#c3", f"{keyspaces.idempotency_prefix('stripe')}#h"))
    # And it reads Scanova's secrets, not a webhook secret or another vendor's
    secrets = boto3.client("secretsmanager")
    secrets.get_secret_value(SecretId="conversion-relay/scanova/api-key")
    denied(lambda: secrets.get_secret_value(SecretId="conversion-relay/pagent/api-key"))
    denied(lambda: secrets.get_secret_value(SecretId="conversion-relay/stripe-webhook-secret"))


def test_the_replay_function_reads_ledger_statuses_in_batches_and_nothing_outside_the_ledger(
    moto_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given ReplayFunction's policy enforced
    enforce_as(moto_world, "ReplayFunction", monkeypatch)
    dynamodb, table = boto3.client("dynamodb"), moto_world.table_name
    ledger = (f"{keyspaces.LEDGER}scanova#c1", f"{keyspaces.LEDGER}pagent#c2")
    # When it reads a page's ledger records in one batch, Then moto answers
    assert read(dynamodb, table, *ledger)["Responses"] == {table: []}
    # And a batch with one key outside the ledger is refused whole, as is a write or a single read
    message = denied(lambda: read(dynamodb, table, *ledger, f"{keyspaces.PARKED}stripe#evt_1"))
    assert "dynamodb:BatchGetItem" in message
    denied(lambda: update(dynamodb, table, f"{keyspaces.LEDGER}scanova#c1"))
    denied(lambda: dynamodb.get_item(TableName=table, Key={"id": {"S": f"{keyspaces.LEDGER}scanova#c1"}}))


def test_every_function_of_the_template_has_a_policy_this_emulation_evaluates(moto_world: World) -> None:
    # Given every function's statements as the template resolves them
    for name, function in moto_world.functions.items():
        policy = iam.Policy(function.iam_statements)
        # Then each has some, and none carries a condition the emulation would ignore
        assert policy.statements, name
        assert policy.unevaluated() == [], name


def test_a_deny_wins_and_stringequals_leading_keys_are_literal() -> None:
    # Given an allow on every key, a literal-key allow, and a deny on one key
    policy = iam.Policy(
        [
            {"Effect": "Allow", "Action": "dynamodb:*Item", "Resource": "arn:aws:dynamodb:*:*:table/t"},
            {
                "Effect": "Deny",
                "Action": ["dynamodb:DeleteItem"],
                "Resource": "*",
                "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["ledger#*"]}},
            },
        ]
    )
    table = "arn:aws:dynamodb:us-east-1:1:table/t"
    # Then the deny applies to the literal key "ledger#*" only, and the allow to the rest
    assert not policy.allows(iam.Request("dynamodb:DeleteItem", table, ("ledger#*",)))
    assert policy.allows(iam.Request("dynamodb:DeleteItem", table, ("ledger#x",)))
    assert policy.allows(iam.Request("dynamodb:GetItem", table, ("anything",)))
    assert not policy.allows(iam.Request("dynamodb:Scan", table))
    assert not policy.allows(iam.Request("dynamodb:GetItem", table + "2", ("a",)))
