"""A dry run's AWS clients: the real pipeline runs, and nothing is written or sent.

`ReadOnlyDynamoDB` passes reads through (claims, parked events, the delivery ledger) and
swallows writes; `RecordingSqs` answers SendMessageBatch as SQS would and keeps the jobs, so
a dry run shows which destination each event would reach, or why one is skipped, from the
very code that would do it.
"""

from __future__ import annotations

from typing import Any

_READS = frozenset({"get_item", "query", "scan", "batch_get_item", "describe_table"})
_WRITES = frozenset({"put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"})


class ReadOnlyDynamoDB:
    def __init__(self, client: Any):
        self._client = client
        self.writes = 0  # what a real run would have written

    def __getattr__(self, name: str) -> Any:
        if name in _READS:
            return getattr(self._client, name)
        if name in _WRITES:
            return self._swallow
        raise AttributeError(f"a dry run does not call DynamoDB {name}")

    def _swallow(self, **_kwargs: Any) -> dict[str, Any]:
        self.writes += 1
        return {}


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
