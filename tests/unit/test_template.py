"""template.yaml: the properties the deployment relies on, read with local.world.load_template."""

from __future__ import annotations

from typing import Any

import pytest

from local.world import load_template

TEMPLATE = load_template()
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
GLOBALS = TEMPLATE["Globals"]["Function"]
MAX_RECEIVE_COUNT = 5
FOURTEEN_DAYS = 14 * 24 * 3600


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


FUNCTIONS = of_type("AWS::Serverless::Function")
QUEUES = of_type("AWS::SQS::Queue")
DLQS = {name: q for name, q in QUEUES.items() if name.endswith("DeadLetterQueue")}
WORK_QUEUES = {name: q for name, q in QUEUES.items() if name not in DLQS}


def getatt(value: Any) -> list[str] | None:
    return value.get("Fn::GetAtt") if isinstance(value, dict) else None


def sqs_triggered() -> dict[str, tuple[str, dict[str, Any]]]:
    """Queue logical id → (function logical id, event properties)."""
    found = {}
    for name, function in FUNCTIONS.items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                found[getatt(event["Properties"]["Queue"])[0]] = (name, event["Properties"])
    return found


def test_globals_python313_arm64_json_logs_powertools_and_the_layer():
    assert GLOBALS["Runtime"] == "python3.13"
    assert GLOBALS["Architectures"] == ["arm64"]
    assert GLOBALS["LoggingConfig"]["LogFormat"] == "JSON"
    env = GLOBALS["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "conversion-relay"
    assert env["POWERTOOLS_METRICS_NAMESPACE"]
    assert env["POWERTOOLS_LOG_LEVEL"] in {"DEBUG", "INFO", "WARNING", "ERROR"}
    assert env["PYDANTIC_DISABLE_PLUGINS"] == "__all__"  # no entry-point scan at cold start
    assert {"Ref": "RelayLayer"} in GLOBALS["Layers"]
    layer = RESOURCES["RelayLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/relay/"
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}


def test_no_function_overrides_runtime_or_architecture():
    for name, function in FUNCTIONS.items():
        assert "Runtime" not in function["Properties"], name
        assert "Architectures" not in function["Properties"], name


def test_there_is_a_queue_and_a_dead_letter_queue_per_vendor():
    vendors = {"Scanova", "Pagent", "Scalev", "QuickLizard"}
    assert set(WORK_QUEUES) == {f"{v}Queue" for v in vendors}
    assert set(DLQS) == {f"{v}DeadLetterQueue" for v in vendors}


@pytest.mark.parametrize("queue", sorted(WORK_QUEUES))
def test_each_queue_redrives_to_its_own_dlq_after_5_receives(queue):
    policy = WORK_QUEUES[queue]["Properties"]["RedrivePolicy"]
    assert policy["maxReceiveCount"] == MAX_RECEIVE_COUNT
    assert getatt(policy["deadLetterTargetArn"]) == [queue.replace("Queue", "DeadLetterQueue"), "Arn"]


@pytest.mark.parametrize("dlq", sorted(DLQS))
def test_dead_letter_queues_keep_messages_14_days(dlq):
    assert DLQS[dlq]["Properties"]["MessageRetentionPeriod"] == FOURTEEN_DAYS


@pytest.mark.parametrize("queue", sorted(WORK_QUEUES))
def test_visibility_is_at_least_6x_the_deliver_function_timeout(queue):
    function_name, event = sqs_triggered()[queue]
    timeout = FUNCTIONS[function_name]["Properties"].get("Timeout", GLOBALS["Timeout"])
    assert WORK_QUEUES[queue]["Properties"]["VisibilityTimeout"] >= 6 * timeout
    # partial batch failures, so one bad job does not redeliver its batch
    assert "ReportBatchItemFailures" in event["FunctionResponseTypes"]


@pytest.mark.parametrize("queue", sorted(WORK_QUEUES))
def test_deliver_functions_know_the_redrive_count(queue):
    function_name, _ = sqs_triggered()[queue]
    env = FUNCTIONS[function_name]["Properties"]["Environment"]["Variables"]
    assert env["MAX_RECEIVE_COUNT"] == str(MAX_RECEIVE_COUNT)
    assert env["DEAD_LETTER_QUEUE_URL"] == {"Ref": queue.replace("Queue", "DeadLetterQueue")}


def test_sqs_triggered_functions_have_no_async_dead_letter_config():
    # A function DeadLetterQueue only applies to async invokes; SQS redrive is the DLQ here.
    for name, function in FUNCTIONS.items():
        assert "DeadLetterQueue" not in function["Properties"], name


def test_the_table_is_on_demand_with_ttl_on_expiration_and_pitr():
    (table,) = of_type("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"  # the ledger outlives a stack deletion


def statements() -> list[tuple[str, dict[str, Any]]]:
    """Each function's inline statements: its SAM Policies, or those of the role it names."""
    found = []
    for name, function in FUNCTIONS.items():
        props = function["Properties"]
        if "Role" in props:
            role = RESOURCES[getatt(props["Role"])[0]]["Properties"]
            documents = [policy["PolicyDocument"] for policy in role["Policies"]]
        else:
            documents = props.get("Policies", [])
        for policy in documents:
            assert isinstance(policy, dict) and "Statement" in policy, f"{name}: inline statements only"
            found += [(name, statement) for statement in policy["Statement"]]
    return found


def test_every_function_has_its_own_least_privilege_policy():
    assert {name for name, _ in statements()} == set(FUNCTIONS)


@pytest.mark.parametrize(
    ("function", "statement"), statements(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_iam_statements_are_action_level_and_resource_scoped(function, statement):
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    assert statement["Effect"] == "Allow"
    for action in actions:
        assert "*" not in action, f"{function}: wildcard action {action}"
        assert ":" in action
    for resource in resources:
        assert resource != "*", f"{function}: unscoped resource"
        assert isinstance(resource, dict), f"{function}: resources name the stack's own ARNs ({resource})"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_function_logs_to_its_own_group_with_a_retention(function):
    group = FUNCTIONS[function]["Properties"]["LoggingConfig"]["LogGroup"]
    assert group == {"Ref": f"{function}LogGroup"}
    log_group = RESOURCES[group["Ref"]]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize("dlq", sorted(DLQS))
def test_every_dlq_has_an_alarm_on_visible_messages(dlq):
    alarms = [
        a["Properties"]
        for a in of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]
    ]
    assert len(alarms) == 1
    alarm = alarms[0]
    # Redrive does not count in NumberOfMessagesSent: the visible depth is the signal.
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_dlq_alarms_exist_without_an_alarm_topic():
    # Only the notification depends on the AlarmTopicArn parameter, not the alarm itself.
    for alarm in of_type("AWS::CloudWatch::Alarm").values():
        assert "Condition" not in alarm
        assert alarm["Properties"]["AlarmActions"]["Fn::If"][0] == "HasAlarmTopic"


def test_outputs_name_the_webhook_url_queues_and_table():
    outputs = TEMPLATE["Outputs"]
    assert "/webhooks/stripe" in outputs["StripeWebhookUrl"]["Value"]["Fn::Sub"]
    for queue in QUEUES:
        assert outputs[f"{queue}Url"]["Value"] == {"Ref": queue}
    assert outputs["RelayTableName"]["Value"] == {"Ref": "RelayTable"}


def test_no_hard_coded_physical_names():
    # CloudFormation names resources itself, so two stacks (dev, prod) never collide.
    named = {"TableName", "QueueName", "FunctionName", "LogGroupName", "AlarmName", "LayerName", "Name"}
    for name, resource in RESOURCES.items():
        assert not named & set(resource.get("Properties", {})), name


def test_the_stripe_function_is_wired_to_its_route_and_every_vendor_queue():
    props = FUNCTIONS["StripeWebhookFunction"]["Properties"]
    (event,) = props["Events"].values()
    assert (event["Type"], event["Properties"]["Method"], event["Properties"]["Path"]) == (
        "HttpApi",
        "POST",
        "/webhooks/stripe",
    )
    env = props["Environment"]["Variables"]
    assert {
        env[f"{v.upper()}_QUEUE_URL"]["Ref"] for v in ("Scanova", "Pagent", "Scalev", "QuickLizard")
    } == set(WORK_QUEUES)
    assert env["WEBHOOK_SECRET_NAME"] == {"Ref": "StripeWebhookSecretName"}
