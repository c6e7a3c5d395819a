"""`relay status --stack`: the status document from CloudWatch, SQS, the DLQs and Logs Insights.

Offline: the table and queues of template.yaml and the metrics live in moto (mock_aws); the
CloudFormation resource list and the Logs Insights query are answered by botocore's Stubber
(moto does not model a SAM stack's resources, nor Logs Insights results).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
from botocore.stub import ANY, Stubber
from relay.config import load_config
from relay.dlq import FailureReason, failure_attributes
from relay.models import DeliveryJob
from relay.replay.scan import QueuePair
from relay.replay.wiring import build_replayer
from relay.vendors.registry import VENDORS

from relay_cli.status import render
from relay_cli.status_aws import ERRORS_QUERY, AwsStatus
from tests.unit.test_vendor_payloads import conversion

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "relay.local.yaml"
STACK = "conversion-relay"
STRIPE_FUNCTION = "conversion-relay-StripeWebhookFunction-AbC123"
STRIPE_LOG_GROUP = "/aws/lambda/conversion-relay-StripeWebhookFunction-AbC123"
PAGENT_LOG_GROUP = "/aws/lambda/conversion-relay-PagentDeliverFunction-XyZ789"


def put(cloudwatch, namespace: str, name: str, value: float, **dimensions: str) -> None:
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Value": value,
                "Unit": "Count",
            }
        ],
    )


def stubbed(client_name: str) -> tuple[object, Stubber]:
    client = boto3.client(client_name, region_name="us-east-1")
    return client, Stubber(client)


def test_the_stack_status_reads_metrics_queues_dead_letters_and_last_errors(moto_world):
    # Given a deployed stack's metrics over the last day (ConversionRelay, AWS/Lambda, AWS/SQS)
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    service = {"service": "conversion-relay"}
    put(cloudwatch, "ConversionRelay", "Delivered", 3, destination="scanova", **service)
    put(cloudwatch, "ConversionRelay", "Retried", 2, destination="scanova", **service)
    put(cloudwatch, "ConversionRelay", "Rejected", 1, destination="pagent", **service)
    put(
        cloudwatch,
        "ConversionRelay",
        "Skipped",
        2,
        destination="quicklizard",
        reason="no_line_items",
        **service,
    )
    put(
        cloudwatch,
        "ConversionRelay",
        "WebhookRefused",
        4,
        source="stripe",
        error="invalid_signature",
        **service,
    )
    put(cloudwatch, "ConversionRelay", "WebhookParked", 1, source="paddle", reason="invalid_money", **service)
    put(cloudwatch, "AWS/Lambda", "Invocations", 7, FunctionName=STRIPE_FUNCTION)
    scanova_queue = moto_world.resources["ScanovaQueue"]["QueueName"]
    put(cloudwatch, "AWS/SQS", "ApproximateAgeOfOldestMessage", 900, QueueName=scanova_queue)
    # and a pagent job parked in doubt, and one job waiting in Scanova's queue
    sqs = boto3.client("sqs", region_name="us-east-1")
    job = DeliveryJob(destination="pagent", conversion=conversion())
    attributes = {
        **job.message_attributes(),
        **failure_attributes(
            FailureReason.IN_DOUBT, vendor="pagent", attempts=1, first_failure_at=datetime.now(UTC)
        ),
    }
    sqs.send_message(
        QueueUrl=moto_world.queue_url("PagentDeadLetterQueue"),
        MessageBody=job.model_dump_json(),
        MessageAttributes=attributes,
    )
    sqs.send_message(QueueUrl=moto_world.queue_url("ScanovaQueue"), MessageBody="{}")
    # and the stack's resources, and a Logs Insights query that finds one warning
    cloudformation, resources = stubbed("cloudformation")
    summaries = [
        (STRIPE_FUNCTION, "StripeWebhookFunction"),
        (STRIPE_LOG_GROUP, "StripeWebhookFunctionLogGroup"),
        (PAGENT_LOG_GROUP, "PagentDeliverFunctionLogGroup"),
    ]
    resources.add_response(
        "list_stack_resources",
        {
            "StackResourceSummaries": [
                {
                    "LogicalResourceId": logical,
                    "PhysicalResourceId": physical,
                    "ResourceType": "AWS::Lambda::Function",
                    "LastUpdatedTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
                    "ResourceStatus": "CREATE_COMPLETE",
                }
                for physical, logical in summaries
            ]
        },
        {"StackName": STACK},
    )
    logs, insights = stubbed("logs")
    insights.add_response(
        "start_query",
        {"queryId": "q-1"},
        {
            "logGroupNames": [STRIPE_LOG_GROUP, PAGENT_LOG_GROUP],
            "startTime": ANY,
            "endTime": ANY,
            "queryString": ERRORS_QUERY,
            "limit": 20,
        },
    )
    insights.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q-1"})
    warning = {
        "@timestamp": "2026-01-01 00:00:01.000",
        "@log": f"123456789012:{PAGENT_LOG_GROUP}",
        "level": "WARNING",
        "message": "job parked",
        "failure_reason": "in_doubt",
        "destination": "pagent",
    }
    insights.add_response(
        "get_query_results",
        {"status": "Complete", "results": [[{"field": k, "value": v} for k, v in warning.items()]]},
        {"queryId": "q-1"},
    )
    queues = {
        kind: QueuePair(
            kind, moto_world.queue_url(f"{s.title}Queue"), moto_world.queue_url(f"{s.title}DeadLetterQueue")
        )
        for kind, s in VENDORS.items()
    }
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    replayer = build_replayer(
        sqs=sqs,
        dynamodb=dynamodb,
        queues=queues,
        table_name=moto_world.table_name,
        config_path=str(CONFIG),
        wait_seconds=0,
        native_supported=False,
    )
    collector = AwsStatus(
        cloudformation=cloudformation,
        cloudwatch=cloudwatch,
        logs=logs,
        sqs=sqs,
        replayer=replayer,
        queues=queues,
        config=load_config(CONFIG),
        stack_name=STACK,
        sleep=lambda _s: None,
    )
    now = datetime.now(UTC) + timedelta(minutes=1)

    # When the status of the last 24 hours is collected
    with resources, insights:
        status = collector.collect(now - timedelta(hours=24), "24h", now=now)

    # Then each figure is where the operator looks for it
    rows = {d["destination"]: d for d in status["destinations"]}
    assert (rows["scanova"]["delivered"], rows["scanova"]["retried"]) == (3, 2)
    assert (rows["pagent"]["rejected"], rows["pagent"]["in_doubt"]) == (1, 1)
    assert rows["pagent"]["dead_letters"] == {"in_doubt": 1}
    assert rows["quicklizard"]["skipped"] == {"no_line_items": 2}
    sources = {s["source"]: s for s in status["sources"]}
    assert sources["stripe"]["requests"] == 7
    assert sources["stripe"]["refused"] == {"invalid_signature": 4}
    assert sources["paddle"]["parked"] == {"invalid_money": 1}
    by_queue = {q["vendor"]: q for q in status["queues"]}
    assert (by_queue["scanova"]["visible"], by_queue["scanova"]["oldest_age_seconds"]) == (1, 900)
    assert by_queue["pagent"]["dead_letters"] == 1
    (error,) = status["errors"]
    assert (error["function"], error["failure_reason"], error["level"]) == (
        "PagentDeliverFunction",
        "in_doubt",
        "WARNING",
    )
    # and the rendered tables hold them in full
    text = render(status)
    assert "stack conversion-relay: the last 24h" in text
    assert "invalid_signature 4" in text and "in_doubt 1" in text and "15m00s" in text
    json.dumps(status, default=str)  # --json prints it
