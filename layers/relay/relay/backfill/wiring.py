"""Building a backfill: one ingest pipeline and one reader per source, over given AWS clients.

ReconcileFunction builds it from its environment at cold start (`build_reconciler`); `relay
backfill` from the stack it works on (`assemble`, with that stack's clients, table, queues and
the read keys it resolved). A dry run wraps the clients (relay.backfill.dryrun): the very same
pipeline runs, and nothing is written or sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import boto3
from aws_lambda_powertools import Metrics
from relay import secrets
from relay.backfill.dryrun import ReadOnlyDynamoDB, RecordingSqs
from relay.backfill.readers import READERS
from relay.backfill.reconcile import Reconciler
from relay.backfill.runner import Backfill
from relay.ingest.pipeline import build_ingest
from relay.ledger import Ledger
from relay.parking import ParkedEvents
from relay.settings import IngestSettings, ReadKey, ReconcileSettings


def assemble(
    *,
    sources: Iterable[str],
    environ: Mapping[str, str],
    dynamodb: Any,
    sqs: Any,
    keys: Mapping[str, Callable[[], str]],
    metrics: Metrics,
    dry_run: bool = False,
    api_options: Mapping[str, Any] | None = None,
) -> Backfill:
    """A Backfill over these clients; `environ` is an ingest function's (RELAY_CONFIG, TABLE_NAME,
    <KIND>_QUEUE_URL, the HubSpot token); `keys[source]()` is that provider's read key."""
    recorder = None
    if dry_run:
        dynamodb, recorder = ReadOnlyDynamoDB(dynamodb), RecordingSqs()
        sqs = recorder
    env = dict(environ)
    pipelines = {source: build_ingest(source, metrics, env, dynamodb=dynamodb, sqs=sqs) for source in sources}
    readers = {}
    for source, pipeline in pipelines.items():
        readers[source] = READERS[source].build(
            pipeline.source, keys[source], pipeline.handled, **dict(api_options or {})
        )
    table = IngestSettings.from_env(env).table_name
    return Backfill(
        pipelines=pipelines,
        readers=readers,
        parked=ParkedEvents(dynamodb, table),
        ledger=Ledger(dynamodb, table),
        recorder=recorder,
    )


def read_key(key: ReadKey, *, max_age: int) -> Callable[[], str]:
    """The key, read at each call through the Powertools cache (a rotation is picked up)."""
    return lambda: secrets.resolve(name=key.secret_name, inline=key.value, max_age=max_age)[0]


def build_reconciler(metrics: Metrics, environ: Mapping[str, str] | None = None) -> Reconciler:
    """ReconcileFunction at cold start: every provider with a read key in its environment."""
    env = dict(os.environ if environ is None else environ)
    settings = ReconcileSettings.from_env(env)
    backfill = assemble(
        sources=list(settings.read_keys),
        environ=env,
        dynamodb=boto3.client("dynamodb"),
        sqs=boto3.client("sqs"),
        keys={
            provider: read_key(key, max_age=settings.secrets_max_age)
            for provider, key in settings.read_keys.items()
        },
        metrics=metrics,
    )
    return Reconciler(backfill, window_hours=settings.window_hours, metrics=metrics)
