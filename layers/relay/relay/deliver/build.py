"""A deliver function's Deliverer, built once at cold start from its environment."""

from __future__ import annotations

import boto3
from aws_lambda_powertools import Metrics
from botocore.config import Config
from relay.config import RelayConfig, load_config
from relay.deliver.deliverer import IO_CONCURRENCY, Deliverer
from relay.errors import ConfigError
from relay.ledger import Ledger
from relay.settings import DeliverSettings

AWS_CLIENT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=IO_CONCURRENCY,
)


def build_deliverer(kind: str, metrics: Metrics, environ: dict[str, str] | None = None) -> Deliverer:
    """Everything a deliver function needs; a bad config or environment fails the init."""
    settings = DeliverSettings.from_env(environ)
    config = load_config(settings.relay_config)
    check_secret_names(config, kind, settings.secrets_prefix)
    return Deliverer(
        kind=kind,
        config=config,
        settings=settings,
        ledger=Ledger(boto3.client("dynamodb", config=AWS_CLIENT_CONFIG), settings.table_name),
        sqs=boto3.client("sqs", config=AWS_CLIENT_CONFIG),
        metrics=metrics,
    )


def check_secret_names(config: RelayConfig, kind: str, prefix: str) -> None:
    """The function may only read its vendor's secrets, <SECRETS_PREFIX><kind>/… (its IAM in
    template.yaml): say so at cold start, not at the first delivery. No prefix: no check."""
    problems = config.misplaced_secrets(prefix, kind) if prefix else []
    if problems:
        raise ConfigError("secrets the deliver function cannot read", problems)
