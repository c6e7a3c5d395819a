"""What the local stack reports at GET /_local/status (and `make status` prints).

Per destination: delivered and other ledger states (DynamoDB ledger items), skipped by
reason (the functions' DestinationSkipped-style metrics, read from their EMF output),
jobs waiting or in flight in its vendor queue, and dead letters by failure_reason. Per
queue: SQS's own ApproximateNumberOf* attributes. And the latest ledger updates.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.config import RelayConfig
from relay.dlq import LEDGER_KEY_PREFIX, parked_reason, parse_ledger_key

from local.stack.aws import EmbeddedAws, QueuedMessage

RECENT = 10


class MetricsTally:
    """Sums the EMF metrics the functions print (Powertools Metrics), by name and dimensions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, frozenset[tuple[str, str]]]] = Counter()

    def observe(self, line: str) -> None:
        if '"_aws"' not in line:
            return
        try:
            document = json.loads(line)
            directives = document["_aws"]["CloudWatchMetrics"]
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            for directive in directives:
                names = {name for dimension_set in directive.get("Dimensions", []) for name in dimension_set}
                dimensions = frozenset((name, str(document.get(name, ""))) for name in names)
                for metric in directive.get("Metrics", []):
                    value = document.get(metric.get("Name"))
                    total = sum(value) if isinstance(value, list) else value
                    if isinstance(total, int | float):
                        self._counts[(metric["Name"], dimensions)] += total

    def skipped(self) -> dict[str, Counter[str]]:
        """destination → reason → count, from every metric named *Skipped with those dimensions."""
        result: dict[str, Counter[str]] = defaultdict(Counter)
        with self._lock:
            for (name, dimensions), value in self._counts.items():
                dims = dict(dimensions)
                if name.endswith("Skipped") and "destination" in dims and "reason" in dims:
                    result[dims["destination"]][dims["reason"]] += int(value)
        return result

    def totals(self) -> dict[str, float]:
        with self._lock:
            totals: Counter[str] = Counter()
            for (name, _), value in self._counts.items():
                totals[name] += value
        return dict(totals)


@dataclass(frozen=True)
class QueueRef:
    vendor: str
    logical_id: str
    url: str
    name: str
    dlq_logical_id: str
    dlq_url: str
    dlq_name: str


class StatusCollector:
    def __init__(
        self,
        *,
        aws: EmbeddedAws,
        account_id: str,
        table_name: str,
        queues: Mapping[str, QueueRef],  # vendor kind → its queues
        config: RelayConfig,
        metrics: MetricsTally,
    ):
        self._aws = aws
        self._account_id = account_id
        self._table = table_name
        self._queues = queues
        self._config = config
        self._metrics = metrics
        session = aws.session()
        self._dynamodb = session.client("dynamodb")
        self._sqs = session.client("sqs")
        self._lock = threading.Lock()
        self.webhooks: Counter[tuple[str, int]] = Counter()  # (route key, status) → answers

    def record_answer(self, route_key: str, status: int) -> None:
        with self._lock:
            self.webhooks[(route_key, status)] += 1

    def ledger(self) -> list[dict[str, Any]]:
        """Every delivery ledger item, in plain values, with its destination and conversion id."""
        items: list[dict[str, Any]] = []
        paginator = self._dynamodb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="begins_with(id, :prefix)",
            ExpressionAttributeValues={":prefix": {"S": LEDGER_KEY_PREFIX}},
        ):
            items += [_plain(item) for item in page.get("Items", [])]
        for item in items:
            item["destination"], item["conversion_id"] = parse_ledger_key(item["id"])
        return items

    def snapshot(self) -> dict[str, Any]:
        ledger = self.ledger()
        skipped = self._metrics.skipped()
        queued: dict[str, Counter[str]] = defaultdict(Counter)
        dead: dict[str, Counter[str]] = defaultdict(Counter)
        queues = []
        for vendor, ref in self._queues.items():
            for message in self._aws.peek(self._account_id, ref.name):
                queued[_destination(message)]["in_flight" if not message.visible else "waiting"] += 1
            for message in self._aws.peek(self._account_id, ref.dlq_name):
                dead[_destination(message)][str(parked_reason(message.attributes.get("failure_reason")))] += 1
            attributes = self._sqs.get_queue_attributes(QueueUrl=ref.url, AttributeNames=["All"])[
                "Attributes"
            ]
            dlq_attributes = self._sqs.get_queue_attributes(
                QueueUrl=ref.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            queues.append(
                {
                    "vendor": vendor,
                    "queue": ref.logical_id,
                    "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
                    "not_visible": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
                    "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
                    "dead_letter_queue": ref.dlq_logical_id,
                    "dead_letters": int(dlq_attributes.get("ApproximateNumberOfMessages", 0)),
                }
            )

        by_status: dict[str, Counter[str]] = defaultdict(Counter)
        for item in ledger:
            by_status[item["destination"]][item.get("status") or "released"] += 1
        destinations = []
        for name, destination in self._config.destinations.items():
            states = by_status.get(name, Counter())
            destinations.append(
                {
                    "destination": name,
                    "vendor": destination.kind,
                    "enabled": destination.enabled,
                    "base_url": str(destination.base_url),
                    "delivered": states.get("delivered", 0),
                    "ledger": dict(states),
                    "skipped": dict(skipped.get(name, {})),
                    "waiting": queued[name]["waiting"],
                    "in_flight": queued[name]["in_flight"],
                    "dead_letters": dict(dead.get(name, {})),
                }
            )
        recent = sorted(ledger, key=lambda item: item.get("updated_at", ""), reverse=True)[:RECENT]
        with self._lock:
            webhooks = [
                {"route": route, "status": status, "count": count}
                for (route, status), count in sorted(self.webhooks.items())
            ]
        return {
            "destinations": destinations,
            "queues": queues,
            "recent": [
                {
                    key: item.get(key)
                    for key in (
                        "updated_at",
                        "destination",
                        "conversion_id",
                        "status",
                        "attempts",
                        "vendor_status",
                        "reason",
                    )
                }
                for item in recent
            ],
            "webhooks": webhooks,
            "metrics": self._metrics.totals(),
        }


def _destination(message: QueuedMessage) -> str:
    if message.attributes.get("destination"):
        return message.attributes["destination"]
    try:
        return str(json.loads(message.body).get("destination") or "unknown")
    except (ValueError, AttributeError):
        return "unknown"


def _plain(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A DynamoDB item in plain values (the ledger only uses S and N)."""
    plain: dict[str, Any] = {}
    for key, typed in item.items():
        ((kind, value),) = typed.items()
        if kind == "N":
            number = float(value)
            plain[key] = int(number) if number.is_integer() else number
        else:
            plain[key] = value
    return plain
