"""Delivery jobs to the vendor queues with SendMessageBatch (relay.sqs: 10 a call, failed entries retried)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from relay import sqs
from relay.errors import EnqueueError
from relay.models import DeliveryJob

ATTEMPTS = 3


class JobQueues:
    """Routes each job to its vendor's queue (destination name → vendor kind → URL)."""

    def __init__(self, sqs_client: Any, queue_urls: dict[str, str], kinds: dict[str, str]):
        self._sqs = sqs_client
        self._urls = queue_urls
        self._kinds = kinds  # destination name → vendor kind

    def url_for(self, destination: str) -> str:
        kind = self._kinds[destination]
        try:
            return self._urls[kind]
        except KeyError as exc:
            raise EnqueueError(f"no queue URL configured for {kind} (destination {destination})") from exc

    def send(self, jobs: Iterable[DeliveryJob]) -> int:
        """Queue every job or raise EnqueueError; returns how many were queued."""
        by_queue: dict[str, list[DeliveryJob]] = defaultdict(list)
        for job in jobs:
            by_queue[self.url_for(job.destination)].append(job)
        sent = 0
        for url, queued in by_queue.items():
            entries = [
                {"MessageBody": job.model_dump_json(), "MessageAttributes": job.message_attributes()}
                for job in queued
            ]
            try:
                failed = sqs.batch_call(self._sqs.send_message_batch, url, entries, attempts=ATTEMPTS)
            except (BotoCoreError, ClientError) as exc:
                raise EnqueueError(f"jobs not queued ({type(exc).__name__})") from exc
            if failed:
                code = next(iter(failed.values()))
                raise EnqueueError(f"{len(failed)} of {len(queued)} jobs not queued ({code})")
            sent += len(queued)
        return sent
