"""Delivery jobs to the vendor queues with SendMessageBatch (10 a call, retried once)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from relay.exceptions import EnqueueError
from relay.models import DeliveryJob

SQS_BATCH_LIMIT = 10
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
            for start in range(0, len(queued), SQS_BATCH_LIMIT):
                sent += self._send_batch(url, queued[start : start + SQS_BATCH_LIMIT])
        return sent

    def _send_batch(self, url: str, jobs: list[DeliveryJob]) -> int:
        pending = {
            str(i): {
                "Id": str(i),
                "MessageBody": job.model_dump_json(),
                "MessageAttributes": job.message_attributes(),
            }
            for i, job in enumerate(jobs)
        }
        failure = "unknown"
        for _ in range(ATTEMPTS):
            try:
                answer = self._sqs.send_message_batch(QueueUrl=url, Entries=list(pending.values()))
            except (BotoCoreError, ClientError) as exc:
                failure = type(exc).__name__
                continue
            for ok in answer.get("Successful", []):
                pending.pop(ok["Id"], None)
            failed = answer.get("Failed", [])
            if failed:
                failure = failed[0].get("Code", "unknown")
                # Sender faults (malformed entries) will not succeed on a retry.
                if any(f.get("SenderFault") for f in failed):
                    break
            if not pending:
                return len(jobs)
        raise EnqueueError(f"{len(pending)} of {len(jobs)} jobs not queued ({failure})")
