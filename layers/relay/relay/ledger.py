"""The delivery ledger: exactly once per destination, across redelivery, concurrency and replay.

One DynamoDB item per (destination, conversion), in the table that holds the Powertools
idempotency records. A deliver function claims the item (one conditional write) before it
calls the vendor and marks it after, so an SQS redelivery, a second message for the same
conversion handled concurrently, or a DLQ replay never reaches the vendor twice.

Item: `id` = ledger#<destination>#<conversion_id> (relay.dlq.ledger_key); `status` in_progress | delivered |
rejected | in_doubt (absent once a claim is released after a transient failure: nothing is
in flight and nothing was delivered); `lease_until` (epoch ms) and `owner` while
in_progress; `attempts` (claims so far); `updated_at` (ISO 8601); `vendor_status`;
`reason` (short, no PII); `expiration` (epoch s, now + 15 days: longer than the DLQ's
14-day retention, so a replayed job still finds its record).

Who may claim:
- no status (new, or released) → claimed;
- rejected → claimed: the vendor took nothing, and a replay comes after the cause was fixed;
- in_progress with an expired lease → taken over: the holder died after it may have called
  the vendor and before it wrote the answer; the caller resends or parks it (in doubt);
- in_progress with a live lease → busy (another invocation is delivering it);
- delivered → never again; in_doubt → stays parked until an operator forgets it
  (`relay replay --force`).

A destination whose vendor dedupes on our event id is not claimed (Destination.claims_deliveries):
its deliveries are looked up in batches (`statuses`: delivered already?) and their outcome
recorded after the call (`record`, also used for every delivered job: 25 items a request).
Two copies of such a job sent at once reach the vendor twice, and the vendor counts them once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from relay.dlq import ledger_key, parse_ledger_key
from relay.errors import LedgerError
from relay.sqs import chunks

RETENTION_SECONDS = 15 * 24 * 3600  # longer than the DLQ's 14-day retention
MAX_REASON_CHARS = 200
GET_BATCH = 100  # BatchGetItem's limit
WRITE_BATCH = 25  # BatchWriteItem's limit
BATCH_ATTEMPTS = 4  # calls per batch while DynamoDB leaves items unprocessed (throttling)
UNPROCESSED_PAUSE_SECONDS = 0.05


class Status(StrEnum):
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    IN_DOUBT = "in_doubt"


# Settled on purpose, not delivered: only an operator resends (relay replay --force).
HELD_STATUSES = frozenset({Status.REJECTED, Status.IN_DOUBT})


class ClaimState(StrEnum):
    CLAIMED = "claimed"  # ours; nothing was sent before
    TAKEN_OVER = "taken_over"  # ours, but an earlier holder may have reached the vendor
    BUSY = "busy"  # another invocation holds a live claim
    DELIVERED = "delivered"
    IN_DOUBT = "in_doubt"


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    destination: str
    conversion_id: str
    token: str | None = None
    attempts: int = 0
    busy_for: float | None = None  # BUSY: seconds until the other holder's lease ends

    @property
    def held(self) -> bool:
        return self.state in (ClaimState.CLAIMED, ClaimState.TAKEN_OVER)


@dataclass(frozen=True)
class Outcome:
    """A final state written without a claim check (`Ledger.record`)."""

    destination: str
    conversion_id: str
    status: Status
    vendor_status: int | None = None
    reason: str | None = None
    attempts: int | None = None  # the claim's count, when there was one


def _short(reason: str | None) -> str | None:
    return reason[:MAX_REASON_CHARS] if reason else None


class Ledger:
    def __init__(self, dynamodb_client: Any, table_name: str, *, clock: Callable[[], float] = time.time):
        self._ddb = dynamodb_client
        self._table = table_name
        self._clock = clock

    # ---- reading and operator actions

    def status(self, destination: str, conversion_id: str) -> str | None:
        """delivered, rejected, in_doubt, in_progress, or None (unknown, or released for a retry)."""
        entry = self.entry(destination, conversion_id)
        return entry.get("status") if entry else None

    def entry(self, destination: str, conversion_id: str) -> dict[str, Any] | None:
        """The item as plain values (for status commands), or None."""
        try:
            item = self._ddb.get_item(
                TableName=self._table,
                Key={"id": {"S": ledger_key(destination, str(conversion_id))}},
                ConsistentRead=True,
            ).get("Item")
        except (BotoCoreError, ClientError) as exc:
            raise LedgerError(f"ledger read failed ({type(exc).__name__})") from exc
        return {name: _plain(value) for name, value in item.items()} if item else None

    def forget(self, destination: str, conversion_id: str) -> None:
        """Delete the record, so the next delivery sends again (`relay replay --force`)."""
        self._call("delete_item", Key={"id": {"S": ledger_key(destination, str(conversion_id))}})

    # ---- delivery

    def claim(self, destination: str, conversion_id: str, *, lease_seconds: float) -> Claim:
        now_ms = self._now_ms()
        token = uuid.uuid4().hex
        try:
            answer = self._ddb.update_item(
                TableName=self._table,
                Key={"id": {"S": ledger_key(destination, str(conversion_id))}},
                UpdateExpression=(
                    "SET #status = :in_progress, lease_until = :lease, #owner = :token, updated_at = :now,"
                    " attempts = if_not_exists(attempts, :zero) + :one, expiration = :expiration"
                ),
                ConditionExpression=(
                    "attribute_not_exists(#status) OR #status = :rejected"
                    " OR (#status = :in_progress AND lease_until < :now_ms)"
                ),
                ExpressionAttributeNames={"#status": "status", "#owner": "owner"},
                ExpressionAttributeValues={
                    ":in_progress": {"S": Status.IN_PROGRESS},
                    ":rejected": {"S": Status.REJECTED},
                    ":lease": {"N": str(now_ms + int(lease_seconds * 1000))},
                    ":token": {"S": token},
                    ":now": {"S": self._now_iso()},
                    ":now_ms": {"N": str(now_ms)},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                    ":expiration": {"N": str(self._expiration())},
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise LedgerError(f"ledger claim failed ({_code(exc)})") from exc
            return self._refused(destination, str(conversion_id), exc.response.get("Item"))
        except BotoCoreError as exc:
            raise LedgerError(f"ledger claim failed ({type(exc).__name__})") from exc
        old = answer.get("Attributes") or {}
        attempts = int(old.get("attempts", {}).get("N", "0")) + 1
        crashed = old.get("status", {}).get("S") == Status.IN_PROGRESS
        state = ClaimState.TAKEN_OVER if crashed else ClaimState.CLAIMED
        return Claim(state, destination, str(conversion_id), token, attempts)

    def mark_delivered(self, claim: Claim, *, vendor_status: int | None) -> None:
        """Unconditional: a delivered conversion is delivered, whoever holds the claim now."""
        self._finish(claim, Status.DELIVERED, vendor_status, None, holder_only=False)

    def mark_rejected(self, claim: Claim, *, vendor_status: int | None, reason: str | None) -> None:
        self._finish(claim, Status.REJECTED, vendor_status, reason)

    def mark_in_doubt(self, claim: Claim, *, reason: str | None) -> None:
        self._finish(claim, Status.IN_DOUBT, None, reason)

    def release(self, claim: Claim, *, reason: str | None, vendor_status: int | None = None) -> None:
        """Give a claim back after a failure that certainly delivered nothing (429, 5xx, refused
        connection): the next attempt claims it as new, not as a crashed one."""
        names = {"#status": "status", "#owner": "owner"}
        values = {":token": {"S": claim.token or ""}, ":now": {"S": self._now_iso()}}
        update = "REMOVE #status, lease_until, #owner SET updated_at = :now"
        for attribute, value in (("reason", _short(reason)), ("vendor_status", vendor_status)):
            if value is not None:
                update += f", {attribute} = :{attribute}"
                values[f":{attribute}"] = {"S": value} if isinstance(value, str) else {"N": str(value)}
        self._update(claim, update, names, values, holder_only=True)

    # ---- batches

    def statuses(
        self, destination: str, conversion_ids: Sequence[str], *, consistent: bool = False
    ) -> dict[str, str | None]:
        """Conversion id → status, for many at once. Eventually consistent by default (a record
        written a moment ago may be missed, so only a vendor that dedupes relies on such a read);
        `consistent` reads what was last written, at twice the read units (replay's decisions)."""
        found: dict[str, str | None] = dict.fromkeys(conversion_ids)
        for part in chunks(list(found), GET_BATCH):
            keys = [{"id": {"S": ledger_key(destination, cid)}} for cid in part]
            for item in self._batch_get(keys, consistent=consistent):
                found[parse_ledger_key(item["id"]["S"])[1]] = item.get("status", {}).get("S")
        return found

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Write final states as whole items (BatchWriteItem), whoever holds a claim: delivered is
        unconditional anyway, and a destination that is not claimed has no holder."""
        now, expiration = self._now_iso(), str(self._expiration())
        items = []
        for outcome in outcomes:
            item: dict[str, Any] = {
                "id": {"S": ledger_key(outcome.destination, outcome.conversion_id)},
                "status": {"S": outcome.status},
                "updated_at": {"S": now},
                "expiration": {"N": expiration},
            }
            if outcome.vendor_status is not None:
                item["vendor_status"] = {"N": str(outcome.vendor_status)}
            if reason := _short(outcome.reason):
                item["reason"] = {"S": reason}
            if outcome.attempts is not None:
                item["attempts"] = {"N": str(outcome.attempts)}
            items.append({"PutRequest": {"Item": item}})
        for part in chunks(items, WRITE_BATCH):
            self._batch_write(list(part))

    def _batch_get(self, keys: list[dict[str, Any]], *, consistent: bool) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            self._table: {
                "Keys": keys,
                "ProjectionExpression": "id, #status",
                "ExpressionAttributeNames": {"#status": "status"},
                "ConsistentRead": consistent,
            }
        }
        answers = self._until_processed("batch_get_item", request, "UnprocessedKeys", "ledger read left keys")
        return [item for answer in answers for item in answer.get("Responses", {}).get(self._table, [])]

    def _batch_write(self, writes: list[dict[str, Any]]) -> None:
        self._until_processed(
            "batch_write_item", {self._table: writes}, "UnprocessedItems", "ledger write left items"
        )

    def _until_processed(
        self, operation: str, request: dict[str, Any], unprocessed: str, what: str
    ) -> list[dict[str, Any]]:
        """Every answer of `operation`, called again on what DynamoDB left unprocessed (the answer's
        `unprocessed` part, throttling) after a doubling pause, up to BATCH_ATTEMPTS calls; then
        LedgerError "<what> unprocessed"."""
        answers: list[dict[str, Any]] = []
        for attempt in range(BATCH_ATTEMPTS):
            if attempt:
                time.sleep(UNPROCESSED_PAUSE_SECONDS * 2 ** (attempt - 1))
            answers.append(self._call_batch(operation, RequestItems=request))
            request = answers[-1].get(unprocessed) or {}
            if not request:
                return answers
        raise LedgerError(f"{what} unprocessed")

    def _call_batch(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._ddb, operation)(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise LedgerError(f"ledger {operation} failed ({type(exc).__name__})") from exc

    # ---- internals

    def _refused(self, destination: str, conversion_id: str, item: dict[str, Any] | None) -> Claim:
        if item is None:  # an older DynamoDB API without ReturnValuesOnConditionCheckFailure
            key = {"id": {"S": ledger_key(destination, conversion_id)}}
            item = self._call("get_item", Key=key, ConsistentRead=True).get("Item", {})
        status = item.get("status", {}).get("S")
        attempts = int(item.get("attempts", {}).get("N", "0"))
        if status == Status.DELIVERED:
            return Claim(ClaimState.DELIVERED, destination, conversion_id, attempts=attempts)
        if status == Status.IN_DOUBT:
            return Claim(ClaimState.IN_DOUBT, destination, conversion_id, attempts=attempts)
        lease_left = (int(item.get("lease_until", {}).get("N", "0")) - self._now_ms()) / 1000
        return Claim(
            ClaimState.BUSY, destination, conversion_id, attempts=attempts, busy_for=max(0.0, lease_left)
        )

    def _finish(
        self,
        claim: Claim,
        status: Status,
        vendor_status: int | None,
        reason: str | None,
        *,
        holder_only: bool = True,
    ) -> None:
        names = {"#status": "status", "#owner": "owner"}
        values: dict[str, Any] = {":status": {"S": status}, ":now": {"S": self._now_iso()}}
        update = "SET #status = :status, updated_at = :now"
        for attribute, value in (("reason", _short(reason)), ("vendor_status", vendor_status)):
            if value is not None:
                update += f", {attribute} = :{attribute}"
                values[f":{attribute}"] = {"S": value} if isinstance(value, str) else {"N": str(value)}
        update += " REMOVE lease_until, #owner" + ("" if reason else ", reason")
        if holder_only:
            values[":token"] = {"S": claim.token or ""}
        self._update(claim, update, names, values, holder_only=holder_only)

    def _update(
        self, claim: Claim, update: str, names: dict[str, str], values: dict[str, Any], *, holder_only: bool
    ) -> None:
        """Only the holder of a claim may release it or record a failure."""
        condition = {"ConditionExpression": "#owner = :token"} if holder_only else {}
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"id": {"S": ledger_key(claim.destination, claim.conversion_id)}},
                UpdateExpression=update,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **condition,
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise LedgerError("the claim was taken over by another delivery") from exc
            raise LedgerError(f"ledger write failed ({_code(exc)})") from exc
        except BotoCoreError as exc:
            raise LedgerError(f"ledger write failed ({type(exc).__name__})") from exc

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._ddb, operation)(TableName=self._table, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise LedgerError(f"ledger {operation} failed ({type(exc).__name__})") from exc

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _now_iso(self) -> str:
        return datetime.fromtimestamp(self._clock(), tz=UTC).isoformat(timespec="milliseconds")

    def _expiration(self) -> int:
        return int(self._clock()) + RETENTION_SECONDS


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "ClientError")


def _plain(value: dict[str, Any]) -> Any:
    ((kind, raw),) = value.items()
    return int(raw) if kind == "N" else raw
