"""What the local stack reports at GET /_local/status (`make status` and the page at /_local/ show it).

The document is the one `relay status` renders for a deployed stack too (relay_cli.status):
per destination delivered (ledger items) and the other ledger states, rejected and retried
(the deliver functions' metrics, read from their EMF output), skipped by reason, jobs queued
and retrying in its vendor queue, and dead letters by failure_reason (in_doubt among them);
per queue SQS's ApproximateNumberOf* and the age of the oldest message; per source the
requests answered and the events refused, ignored and parked by reason; the latest ledger
updates; the functions' last warnings and errors; the webhook answers by route and status.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.config import RelayConfig
from relay.dlq import LEDGER_KEY_PREFIX, FailureReason, parked_reason, parse_ledger_key

from local.stack.aws import EmbeddedAws, QueuedMessage

RECENT = 10
LAST_ERRORS = 20
_ERROR_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})
# Fields of a function's JSON log line that say why (ids only: the relay logs no payload or PII).
_WHY_FIELDS = (
    "reason",
    "failure_reason",
    "error",
    "vendor_status",
    "vendor_message",
    "destination",
    "event_id",
)


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

    def grouped(self, name: str, *keys: str) -> dict[tuple[str, ...], int]:
        """Counts of metric `name` by the values of the dimensions `keys` (those that have them all)."""
        result: Counter[tuple[str, ...]] = Counter()
        with self._lock:
            for (metric, dimensions), value in self._counts.items():
                dims = dict(dimensions)
                if metric == name and all(key in dims for key in keys):
                    result[tuple(dims[key] for key in keys)] += int(value)
        return dict(result)

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
        route_sources: Mapping[str, str] | None = None,  # route key → provider
    ):
        self._route_sources = dict(route_sources or {})
        self._errors: deque[dict[str, Any]] = deque(maxlen=LAST_ERRORS)
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

    def record_log(self, function: str, line: str) -> None:
        """Keep a function's warnings and errors (its JSON log lines) for the status's last errors."""
        if '"level"' not in line:
            return
        try:
            document = json.loads(line)
        except ValueError:
            return
        if not isinstance(document, dict) or str(document.get("level", "")).upper() not in _ERROR_LEVELS:
            return
        error = {
            "time": document.get("timestamp"),
            "function": function,
            "level": str(document["level"]).upper(),
            "message": document.get("message"),
        }
        error.update({key: document[key] for key in _WHY_FIELDS if document.get(key) is not None})
        with self._lock:
            self._errors.appendleft(error)

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
        now_ms = time.time() * 1000
        for vendor, ref in self._queues.items():
            oldest: float | None = None
            for message in self._aws.peek(self._account_id, ref.name):
                counts = queued[_destination(message)]
                counts["in_flight" if not message.visible else "waiting"] += 1
                # Tried and failed at least once, waiting for (or in) its next attempt.
                counts["retrying" if message.receive_count else "queued"] += 1
                if message.sent_ms is not None:
                    oldest = max(oldest or 0.0, (now_ms - message.sent_ms) / 1000)
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
                    "oldest_age_seconds": None if oldest is None else round(oldest),
                    "dead_letter_queue": ref.dlq_logical_id,
                    "dead_letters": int(dlq_attributes.get("ApproximateNumberOfMessages", 0)),
                }
            )

        by_status: dict[str, Counter[str]] = defaultdict(Counter)
        for item in ledger:
            by_status[item["destination"]][item.get("status") or "released"] += 1
        rejected = self._metrics.grouped("Rejected", "destination")
        retried = self._metrics.grouped("Retried", "destination")
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
                    "rejected": rejected.get((name,), 0),
                    "retried": retried.get((name,), 0),
                    "in_doubt": dead[name][str(FailureReason.IN_DOUBT)],
                    "ledger": dict(states),
                    "skipped": dict(skipped.get(name, {})),
                    "queued": queued[name]["queued"],
                    "retrying": queued[name]["retrying"],
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
            "sources": self._sources(),
            "errors": list(self._errors),
            "metrics": self._metrics.totals(),
            "window": "since the local stack started",
        }

    def _sources(self) -> list[dict[str, Any]]:
        """Per provider: requests answered on its route, events refused/ignored/parked by reason."""
        with self._lock:
            requests: Counter[str] = Counter()
            for (route, _status), count in self.webhooks.items():
                requests[self._route_sources.get(route, route)] += count
        grouped = {
            name: self._metrics.grouped(metric, "source", key)
            for name, metric, key in (
                ("refused", "WebhookRefused", "error"),
                ("ignored", "WebhookIgnored", "reason"),
                ("parked", "WebhookParked", "reason"),
            )
        }
        sources = []
        for source in dict.fromkeys(self._route_sources.values()):
            row: dict[str, Any] = {"source": source, "requests": requests.get(source, 0)}
            for name, counts in grouped.items():
                row[name] = {why: n for (src, why), n in counts.items() if src == source}
            sources.append(row)
        return sources


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
