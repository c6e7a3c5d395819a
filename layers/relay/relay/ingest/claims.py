"""One conversion, queued once: which destinations a conversion was queued to, and by which webhook.

Stripe reports one order twice (a Checkout Session's completion and its payment intent: one
conversion id), and a provider may retry a webhook: without this, every such webhook would queue
the conversion to every destination again, each copy then dropped by the delivery ledger at the
cost of SQS sends and ledger writes. Before its jobs are queued, a webhook claims them with ONE
write on the item `conversion#<source>#<conversion id>`: one attribute per destination, `to:<name>`, set to
the event id of the webhook that queues it, unless already set (`if_not_exists`). The answer (the
item after the write) tells each webhook which destinations are its own to queue:
- a destination no webhook claimed → this one's (a later webhook, a new destination, or a
  backfill aimed at a destination the conversion never reached still gets it);
- claimed by another event → already queued (or being queued) by that webhook: not again;
- claimed by this same event → this webhook's own earlier attempt, which failed or died after
  claiming: queued again (the delivery ledger drops whatever that attempt did queue).
A queueing failure gives the claim back (`release`), so nothing waits on a webhook that failed;
the provider's retry claims it again. The delivery ledger remains the exactly-once guard for
everything else: SQS redelivery, replay, backfill of the same event.

The item lives as long as the ingest idempotency records (IDEMPOTENCY_TTL_SECONDS, at least
Stripe's 3 days of retries) from its first claim, in the table that holds them: a later claim
(a retry, a destination-scoped backfill) leaves an item it adds nothing to unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from relay import keyspaces
from relay.errors import EnqueueError
from relay.models import DeliveryJob

logger = Logger(child=True)

DESTINATION_PREFIX = "to:"
EXPIRES_FROM_FIRST_CLAIM = "expiration = if_not_exists(expiration, :expiration)"


def claim_key(source: str, conversion_id: str) -> str:
    """Scoped by source: an ingest function's IAM reaches its own source's claims only."""
    return f"{keyspaces.conversion_prefix(source)}#{conversion_id}"


@dataclass(frozen=True)
class _Claimed:
    """A webhook's claim on one conversion: the destinations it got, and whether the item holds no
    other webhook's (then releasing it deletes the item)."""

    conversion_id: str
    destinations: list[str]
    alone: bool


class ConversionClaims:
    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        source: str,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ):
        self._ddb = dynamodb_client
        self._table = table_name
        self._source = source
        self._ttl = ttl_seconds
        self._clock = clock

    def send_once(
        self, jobs: Sequence[DeliveryJob], event_id: str, send: Callable[[list[DeliveryJob]], int]
    ) -> tuple[int, int]:
        """Send the jobs no other webhook queued: (jobs sent, jobs another webhook queued already).
        One write per conversion first; if sending fails, the claims are given back and the
        error raised. DynamoDB failing raises EnqueueError (nothing queued: 5xx, retried)."""
        by_conversion: dict[str, list[DeliveryJob]] = {}
        for job in jobs:
            by_conversion.setdefault(str(job.conversion.conversion_id), []).append(job)
        mine: list[DeliveryJob] = []
        claimed: list[_Claimed] = []
        for conversion_id, wanted in by_conversion.items():
            owners = self._claim(conversion_id, [job.destination for job in wanted], event_id)
            ours = [job for job in wanted if owners.get(job.destination) == event_id]
            mine += ours
            if ours:
                alone = all(owner == event_id for owner in owners.values())
                claimed.append(_Claimed(conversion_id, [job.destination for job in ours], alone))
        try:
            return (send(mine) if mine else 0), len(jobs) - len(mine)
        except Exception:
            for claim in claimed:
                self._release(claim, event_id)
            raise

    def _claim(self, conversion_id: str, destinations: list[str], event_id: str) -> dict[str, str]:
        """Destination → the event that queues it, for every destination the item names."""
        names = {f"#d{i}": f"{DESTINATION_PREFIX}{name}" for i, name in enumerate(destinations)}
        sets = [f"{name} = if_not_exists({name}, :event)" for name in names]
        try:
            answer = self._ddb.update_item(
                TableName=self._table,
                Key={"id": {"S": claim_key(self._source, conversion_id)}},
                UpdateExpression="SET "
                + ", ".join([*sets, "expiration = if_not_exists(expiration, :expiration)"]),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":event": {"S": event_id},
                    ":expiration": {"N": str(int(self._clock()) + self._ttl)},
                },
                ReturnValues="ALL_NEW",
            )
        except (BotoCoreError, ClientError) as exc:
            raise EnqueueError(f"conversion {conversion_id} not claimed ({type(exc).__name__})") from exc
        return {
            name.removeprefix(DESTINATION_PREFIX): value["S"]
            for name, value in (answer.get("Attributes") or {}).items()
            if name.startswith(DESTINATION_PREFIX)
        }

    def _release(self, claim: _Claimed, event_id: str) -> None:
        """Best effort: a claim left behind is this event's own, and the provider's retry of the
        event queues it again."""
        names = {f"#d{i}": f"{DESTINATION_PREFIX}{name}" for i, name in enumerate(claim.destinations)}
        still_ours = {
            "ConditionExpression": " AND ".join(f"{name} = :event" for name in names),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":event": {"S": event_id}},
        }
        key = {"id": {"S": claim_key(self._source, claim.conversion_id)}}
        try:
            if claim.alone:
                self._ddb.delete_item(TableName=self._table, Key=key, **still_ours)
            else:
                self._ddb.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="REMOVE " + ", ".join(names),
                    **still_ours,
                )
        except (BotoCoreError, ClientError):
            logger.warning("conversion claim not released", extra={"conversion_id": claim.conversion_id})
