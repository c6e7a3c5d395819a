"""A dry run's AWS clients: the real pipeline runs, and nothing is written or sent.

`ReadOnlyDynamoDB` passes reads through (claims, parked events, the delivery ledger) and
swallows writes (an update that asks for the item back gets the item as the write would have
left it: a conversion claim answers which destinations this event would queue);
`RecordingSqs` answers SendMessageBatch as SQS would and keeps the jobs, so
a dry run shows which destination each event would reach, or why one is skipped, from the
very code that would do it.
"""

from __future__ import annotations

import re
from typing import Any

_READS = frozenset({"get_item", "query", "scan", "batch_get_item", "describe_table"})
_WRITES = frozenset({"put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"})
# The SET forms the relay writes: `a = :v` and `a = if_not_exists(a, :v)`, comma-separated.
_ASSIGNMENT = re.compile(r"([#\w]+)\s*=\s*(?:if_not_exists\(\s*[#\w]+\s*,\s*(:\w+)\s*\)|(:\w+))\s*(?:,|$)")


class ReadOnlyDynamoDB:
    def __init__(self, client: Any):
        self._client = client
        self.writes = 0  # what a real run would have written

    def __getattr__(self, name: str) -> Any:
        if name in _READS:
            return getattr(self._client, name)
        if name == "update_item":
            return self._update_item
        if name in _WRITES:
            return self._swallow
        raise AttributeError(f"a dry run does not call DynamoDB {name}")

    def _swallow(self, **_kwargs: Any) -> dict[str, Any]:
        self.writes += 1
        return {}

    def _update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.writes += 1
        if kwargs.get("ReturnValues") != "ALL_NEW":
            return {}
        item = dict(
            self._client.get_item(TableName=kwargs["TableName"], Key=kwargs["Key"], ConsistentRead=True).get(
                "Item", {}
            )
        )
        return {"Attributes": _updated(item, kwargs)}


def _updated(item: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The item after a plain SET update (the only kind the relay asks back), without writing it."""
    names = update.get("ExpressionAttributeNames", {})
    values = update.get("ExpressionAttributeValues", {})
    expression = update.get("UpdateExpression", "")
    if not expression.startswith("SET ") or " REMOVE " in expression:
        return item
    for target, guarded, value in _ASSIGNMENT.findall(expression.removeprefix("SET ")):
        attribute = names.get(target, target)
        if guarded:
            item.setdefault(attribute, values[guarded])
        else:
            item[attribute] = values[value]
    return item


class RecordingSqs:
    def __init__(self) -> None:
        self.destinations: list[str] = []  # of the jobs since the last `take`

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        for entry in Entries:
            self.destinations.append(entry["MessageAttributes"]["destination"]["StringValue"])
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def take(self) -> list[str]:
        taken, self.destinations = self.destinations, []
        return taken
