"""Parked events: authentic webhooks whose content the relay cannot use, kept so nothing is lost.

An event that passed its signature check but cannot be mapped (a bad amount, an unknown
currency, a body of the wrong shape, a config rule that does not fit) is answered 2xx
`{"status": "parked", "reason": …}`: the provider stops retrying and keeps the endpoint
healthy. What is kept here is only what identifies it — provider, event id and type, event
time, the reason (a short code), a bounded detail with emails and phones scrubbed, and a
fingerprint of the body — never the payload. `relay parked ls` lists them; after the fix,
`relay backfill --parked` fetches each event again from the provider and runs it through
the normal pipeline. An item lives as long as the provider keeps its event log (the source's
`event_log_days`: Stripe 30 days, Paddle 90).

Item: `id` = parked#<provider>#<event id>; `parked_provider` and `parked_at` feed the
table's sparse `ParkedEvents` index (only parked items carry them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from relay import keyspaces, pii
from relay.errors import ParkingError

KEY_PREFIX = keyspaces.PARKED
INDEX_NAME = "ParkedEvents"  # template.yaml's GSI on RelayTable
MAX_DETAIL_CHARS = 300
FINGERPRINT_CHARS = 32  # hex characters of a parked event's sha-256 fingerprint


def parked_key(provider: str, event_id: str) -> str:
    return f"{KEY_PREFIX}{provider}#{event_id}"


@dataclass(frozen=True)
class ParkedEvent:
    provider: str
    event_id: str
    event_type: str | None
    reason: str  # a short code: malformed_payload, invalid_money, unmappable, …
    detail: str | None  # bounded and scrubbed of emails and phones here, whoever builds it
    fingerprint: str  # sha-256 (hex, FINGERPRINT_CHARS) of the body or of the event's payload
    parked_at: datetime
    occurred_at: datetime | None = None
    times: int = 1  # how often the provider sent it before it stopped retrying

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", clean_detail(self.detail))

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "reason": self.reason,
            "detail": self.detail,
            "fingerprint": self.fingerprint,
            "parked_at": self.parked_at.isoformat(),
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "times": self.times,
        }


def clean_detail(text: str | None) -> str | None:
    """What may be kept and logged of a reason: one line, bounded, emails and phones masked."""
    one_line = " ".join(str(text or "").split())
    return str(pii.scrub(one_line))[:MAX_DETAIL_CHARS] if one_line else None


class ParkedEvents:
    def __init__(self, dynamodb_client: Any, table_name: str, *, clock: Callable[[], float] = time.time):
        self._ddb = dynamodb_client
        self._table = table_name
        self._clock = clock

    def park(self, event: ParkedEvent, *, retention_days: int) -> None:
        """Record (or re-record) a parked event; ParkingError when DynamoDB refuses (→ 5xx)."""
        values: dict[str, Any] = {
            ":provider": {"S": event.provider},
            ":event_id": {"S": event.event_id},
            ":reason": {"S": event.reason},
            ":fingerprint": {"S": event.fingerprint},
            ":parked_at": {"S": event.parked_at.isoformat(timespec="milliseconds")},
            ":expiration": {"N": str(int(self._clock()) + retention_days * 86400)},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
        }
        update = (
            "SET parked_provider = :provider, event_id = :event_id, reason = :reason,"
            " fingerprint = :fingerprint, parked_at = :parked_at, expiration = :expiration,"
            " times = if_not_exists(times, :zero) + :one"
        )
        optional = {
            "event_type": event.event_type,
            "detail": event.detail,
            "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
        }
        for name, value in optional.items():
            if value:
                update += f", {name} = :{name}"
                values[f":{name}"] = {"S": value}
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"id": {"S": parked_key(event.provider, event.event_id)}},
                UpdateExpression=update,
                ExpressionAttributeValues=values,
            )
        except (BotoCoreError, ClientError) as exc:
            raise ParkingError(f"parked event not recorded ({type(exc).__name__})") from exc

    def get(self, provider: str, event_id: str) -> ParkedEvent | None:
        item = self._call(
            "get_item", Key={"id": {"S": parked_key(provider, event_id)}}, ConsistentRead=True
        ).get("Item")
        return _event(item) if item else None

    def forget(self, provider: str, event_id: str) -> None:
        """Drop the record once the event was relayed (`relay backfill --parked`)."""
        self._call("delete_item", Key={"id": {"S": parked_key(provider, event_id)}})

    def list(self, providers: list[str], *, since: datetime | None = None) -> Iterator[ParkedEvent]:
        """Parked events of these providers, newest first (the sparse ParkedEvents index)."""
        for provider in providers:
            condition = "parked_provider = :provider"
            values: dict[str, Any] = {":provider": {"S": provider}}
            if since is not None:
                condition += " AND parked_at >= :since"
                values[":since"] = {"S": since.astimezone(UTC).isoformat(timespec="milliseconds")}
            start: dict[str, Any] | None = None
            while True:
                page = self._call(
                    "query",
                    IndexName=INDEX_NAME,
                    KeyConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ScanIndexForward=False,
                    **({"ExclusiveStartKey": start} if start else {}),
                )
                yield from (_event(item) for item in page.get("Items", []))
                start = page.get("LastEvaluatedKey")
                if not start:
                    break

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._ddb, operation)(TableName=self._table, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise ParkingError(f"parked events: {operation} failed ({type(exc).__name__})") from exc


def _event(item: dict[str, Any]) -> ParkedEvent:
    def text(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    occurred = text("occurred_at")
    return ParkedEvent(
        provider=item["parked_provider"]["S"],
        event_id=item["event_id"]["S"],
        event_type=text("event_type"),
        reason=item["reason"]["S"],
        detail=text("detail"),
        fingerprint=item["fingerprint"]["S"],
        parked_at=datetime.fromisoformat(item["parked_at"]["S"]),
        occurred_at=datetime.fromisoformat(occurred) if occurred else None,
        times=int(item.get("times", {}).get("N", "1")),
    )
