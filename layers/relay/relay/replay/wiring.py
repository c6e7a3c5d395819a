"""Replayers wired to AWS: ReplayFunction's (from its environment) and the operator CLI's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from relay.config import load_config
from relay.ledger import Ledger
from relay.replay.replayer import Replayer
from relay.replay.scan import QueuePair
from relay.settings import ReplaySettings


def queue_pairs(settings: ReplaySettings) -> dict[str, QueuePair]:
    """Each vendor's queue and dead-letter queue, from ReplayFunction's environment."""
    return {
        kind: QueuePair(kind, queues.queue_url, queues.dlq_url)
        for kind, queues in settings.vendor_queues.items()
    }


def build_replayer(
    *,
    sqs: Any,
    dynamodb: Any,
    queues: Mapping[str, QueuePair],
    table_name: str,
    config_path: str | None,
    wait_seconds: int = 1,
    native_supported: bool = True,
) -> Replayer:
    """A Replayer on the given clients. Without a config only vendor kinds name destinations."""
    return Replayer(
        sqs,
        Ledger(dynamodb, table_name),
        queues,
        load_config(config_path) if config_path else None,
        wait_seconds=wait_seconds,
        native_supported=native_supported,
    )


def build_function_replayer(environ: Mapping[str, str] | None = None) -> Replayer:
    """ReplayFunction's Replayer, built once at cold start from its environment."""
    settings = ReplaySettings.from_env(environ)
    return build_replayer(
        sqs=boto3.client("sqs"),
        dynamodb=boto3.client("dynamodb"),
        queues=queue_pairs(settings),
        table_name=settings.table_name,
        config_path=settings.relay_config,
    )
