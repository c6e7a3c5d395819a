"""Bulk redrive of a whole vendor DLQ with SQS StartMessageMoveTask (AWS only; moto lacks it)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from relay.errors import NativeMoveUnsupportedError, ReplayError, aws_error
from relay.replay.results import NativeMove
from relay.replay.scan import QueuePair, call

logger = Logger(child=True)


def start_message_move(sqs_client: Any, pair: QueuePair, rate: float | None, count: int) -> NativeMove:
    """Start moving every message of the pair's DLQ back to its queue; `count` is SQS's estimate."""
    source, target = _arn(sqs_client, pair.dlq_url), _arn(sqs_client, pair.queue_url)
    params: dict[str, Any] = {"SourceArn": source, "DestinationArn": target}
    if rate is not None:
        params["MaxNumberOfMessagesPerSecond"] = int(rate)
    try:
        handle = sqs_client.start_message_move_task(**params)["TaskHandle"]
    except NotImplementedError as exc:  # moto in-process
        raise NativeMoveUnsupportedError(
            "StartMessageMoveTask is not implemented by this SQS endpoint (moto lacks it)"
        ) from exc
    except (BotoCoreError, ClientError) as exc:
        raise ReplayError(f"StartMessageMoveTask failed: {aws_error(exc)}") from exc
    logger.info("native move started", extra={"vendor": pair.vendor, "messages": count})
    return NativeMove(
        vendor=pair.vendor,
        task_handle=handle,
        source_arn=source,
        destination_arn=target,
        approximate_messages=count,
        rate=params.get("MaxNumberOfMessagesPerSecond"),
    )


def _arn(sqs_client: Any, url: str) -> str:
    answer = call(sqs_client.get_queue_attributes, QueueUrl=url, AttributeNames=["QueueArn"])
    return answer["Attributes"]["QueueArn"]
