"""`relay status --stack NAME`: the status document of a deployed stack (relay_cli.status renders it).

Where each figure comes from:
- per destination delivered / rejected / retried / dead-lettered / skipped: the deliver and
  ingest functions' metrics (namespace ConversionRelay, dimension `destination`), summed over
  the window with CloudWatch GetMetricData; the dimension sets come from ListMetrics;
- per source: requests = the ingest function's Lambda Invocations; refused / ignored /
  parked = WebhookRefused(error), WebhookIgnored(reason), WebhookParked(reason) by `source`;
- queues: SQS's ApproximateNumberOf* now, and the oldest message's age from AWS/SQS
  ApproximateAgeOfOldestMessage (SQS has no attribute for it);
- dead letters by reason (in_doubt among them): the DLQs read as `relay dlq ls` reads them
  (under a visibility hold; nothing moves);
- last errors: CloudWatch Logs Insights over the stack's function log groups (level WARNING
  and above), newest first.
"""

from __future__ import annotations

import functools
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from relay.config import RelayConfig, load_config
from relay.dlq import FailureReason
from relay.errors import RelayError, aws_error
from relay.replay.replayer import Replayer
from relay.replay.scan import QueuePair

from local.world import load_template

NAMESPACE = "ConversionRelay"
MAX_QUERIES = 500  # per GetMetricData call
LAST_ERRORS = 20
QUERY_SECONDS = 30  # how long to wait for Logs Insights
DLQ_READ_MAX = 500
ERRORS_QUERY = (
    "fields @timestamp, @log, level, message, reason, failure_reason, error, vendor_status, vendor_message,"
    " destination, event_id"
    ' | filter level in ["WARNING", "ERROR", "CRITICAL"]'
    f" | sort @timestamp desc | limit {LAST_ERRORS}"
)
# metric name → (status field, the dimension beside `destination` whose values it is split by)
_DESTINATION_METRICS = {
    "Delivered": ("delivered", None),
    "Rejected": ("rejected", None),
    "Retried": ("retried", None),
    "DeadLettered": ("dead_lettered", None),
    "Skipped": ("skipped", "reason"),
    "DestinationSkipped": ("skipped", "reason"),
}
_SOURCE_METRICS = {
    "WebhookRefused": ("refused", "error"),
    "WebhookIgnored": ("ignored", "reason"),
    "WebhookParked": ("parked", "reason"),
}


@functools.cache  # one parse of template.yaml per run (collect and _invocations both ask)
def ingest_functions() -> dict[str, str]:
    """Logical id → provider of each ingest function (functions/ingest_<provider> in template.yaml)."""
    found = {}
    for logical_id, resource in load_template()["Resources"].items():
        folder = Path(str(resource.get("Properties", {}).get("CodeUri", ""))).name
        if resource.get("Type") == "AWS::Serverless::Function" and folder.startswith("ingest_"):
            found[logical_id] = folder.removeprefix("ingest_")
    return found


@dataclass
class AwsStatus:
    cloudformation: Any
    cloudwatch: Any
    logs: Any
    sqs: Any
    replayer: Replayer
    queues: Mapping[str, QueuePair]
    config: RelayConfig | None
    stack_name: str
    sleep: Callable[[float], None] = time.sleep

    def collect(self, since: datetime, window: str, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        resources = self._resources()
        by_destination, by_source = self._metric_sums(since, now)
        requests = self._invocations(resources, since, now)
        dead = self._dead_letters()
        names = list(self.config.destinations) if self.config else sorted(by_destination)
        destinations = []
        for name in names:
            sums = by_destination.get(name, {})
            destination = self.config.destinations.get(name) if self.config else None
            destinations.append(
                {
                    "destination": name,
                    "vendor": destination.kind if destination else "?",
                    "enabled": destination.enabled if destination else True,
                    "delivered": sums.get("delivered", 0),
                    "rejected": sums.get("rejected", 0),
                    "retried": sums.get("retried", 0),
                    "dead_lettered": sums.get("dead_lettered", 0),
                    "in_doubt": dead.get(name, {}).get(str(FailureReason.IN_DOUBT), 0),
                    "skipped": sums.get("skipped", {}),
                    "queued": None,  # SQS counts per queue (vendor), not per destination: see queues
                    "retrying": None,
                    "dead_letters": dead.get(name, {}),
                }
            )
        sources = [
            {"source": provider, "requests": requests.get(provider, 0), **by_source.get(provider, {})}
            for provider in dict.fromkeys(ingest_functions().values())
        ]
        for row in sources:
            for field in ("refused", "ignored", "parked"):
                row.setdefault(field, {})
        return {
            "where": f"stack {self.stack_name}",
            "window": f"the last {window} (since {since.isoformat(timespec='minutes')})",
            "destinations": destinations,
            "queues": self._queues(now),
            "sources": sources,
            "errors": self._last_errors(resources, since, now),
        }

    # ------------------------------------------------------------------ CloudFormation

    def _resources(self) -> dict[str, str]:
        """Logical id → physical id of every resource of the stack."""
        found: dict[str, str] = {}
        try:
            for page in self.cloudformation.get_paginator("list_stack_resources").paginate(
                StackName=self.stack_name
            ):
                for summary in page["StackResourceSummaries"]:
                    found[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
        except (BotoCoreError, ClientError) as exc:
            raise RelayError(
                f"cannot list the resources of stack {self.stack_name}: {aws_error(exc)}"
            ) from exc
        return found

    # ------------------------------------------------------------------ CloudWatch metrics

    def _metric_sums(self, since: datetime, now: datetime) -> tuple[dict[str, dict], dict[str, dict]]:
        wanted = {**_DESTINATION_METRICS, **_SOURCE_METRICS}
        metrics = [
            metric
            for page in self.cloudwatch.get_paginator("list_metrics").paginate(Namespace=NAMESPACE)
            for metric in page["Metrics"]
            if metric["MetricName"] in wanted
        ]
        sums = self._sums([(NAMESPACE, m["MetricName"], m["Dimensions"], "Sum") for m in metrics], since, now)
        by_destination: dict[str, dict[str, Any]] = defaultdict(dict)
        by_source: dict[str, dict[str, Any]] = defaultdict(dict)
        for metric, total in zip(metrics, sums, strict=True):
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            name = metric["MetricName"]
            if name in _DESTINATION_METRICS and "destination" in dims:
                field, split = _DESTINATION_METRICS[name]
                row = by_destination[dims["destination"]]
                _add(row, field, dims.get(split) if split else None, total)
            elif name in _SOURCE_METRICS and "source" in dims:
                field, split = _SOURCE_METRICS[name]
                _add(by_source[dims["source"]], field, dims.get(split, "?"), total)
        return by_destination, by_source

    def _invocations(self, resources: Mapping[str, str], since: datetime, now: datetime) -> dict[str, int]:
        functions = [(lid, p) for lid, p in ingest_functions().items() if resources.get(lid)]
        queries = [
            ("AWS/Lambda", "Invocations", [{"Name": "FunctionName", "Value": resources[lid]}], "Sum")
            for lid, _ in functions
        ]
        totals: Counter[str] = Counter()
        for (_, provider), total in zip(functions, self._sums(queries, since, now), strict=True):
            totals[provider] += int(total)
        return dict(totals)

    def _sums(
        self, queries: list[tuple[str, str, list[dict[str, str]], str]], since: datetime, now: datetime
    ) -> list[float]:
        """Each query's statistic over [since, now] (Sum: summed; Maximum: the latest point)."""
        period = max(60, int((now - since).total_seconds()) // 60 * 60)
        results: list[float] = []
        for start in range(0, len(queries), MAX_QUERIES):
            chunk = queries[start : start + MAX_QUERIES]
            request = [
                {
                    "Id": f"q{index}",
                    "MetricStat": {
                        "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
                        "Period": period,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
                for index, (namespace, name, dimensions, stat) in enumerate(chunk)
            ]
            values: dict[str, list[float]] = defaultdict(list)
            token = None
            while True:
                kwargs = {"MetricDataQueries": request, "StartTime": since, "EndTime": now}
                if token:
                    kwargs["NextToken"] = token
                try:
                    answer = self.cloudwatch.get_metric_data(**kwargs)
                except (BotoCoreError, ClientError) as exc:
                    raise RelayError(f"cannot read the metrics: {aws_error(exc)}") from exc
                for result in answer["MetricDataResults"]:
                    values[result["Id"]] += result.get("Values", [])
                token = answer.get("NextToken")
                if not token:
                    break
            for index, (_, _, _, stat) in enumerate(chunk):
                found = values.get(f"q{index}", [])
                results.append((found[0] if found else 0.0) if stat == "Maximum" else sum(found))
        return results

    # ------------------------------------------------------------------ SQS and the DLQs

    def _queues(self, now: datetime) -> list[dict[str, Any]]:
        pairs = list(self.queues.values())
        ages = self._sums(
            [
                (
                    "AWS/SQS",
                    "ApproximateAgeOfOldestMessage",
                    [{"Name": "QueueName", "Value": _name(p.queue_url)}],
                    "Maximum",
                )
                for p in pairs
            ],
            now - timedelta(minutes=10),
            now,
        )
        rows = []
        for pair, age in zip(pairs, ages, strict=True):
            attributes = self._attributes(pair.queue_url)
            dlq = self._attributes(pair.dlq_url)
            rows.append(
                {
                    "vendor": pair.vendor,
                    "queue": _name(pair.queue_url),
                    "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
                    "not_visible": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
                    "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
                    "oldest_age_seconds": round(age) if age else None,
                    "dead_letter_queue": _name(pair.dlq_url),
                    "dead_letters": int(dlq.get("ApproximateNumberOfMessages", 0)),
                }
            )
        return rows

    def _attributes(self, url: str) -> dict[str, str]:
        try:
            return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        except (BotoCoreError, ClientError) as exc:
            raise RelayError(f"cannot read queue {url}: {aws_error(exc)}") from exc

    def _dead_letters(self) -> dict[str, dict[str, int]]:
        listing = self.replayer.list_parked(None, max_jobs=DLQ_READ_MAX)
        dead: dict[str, Counter[str]] = defaultdict(Counter)
        for job in listing.jobs:
            dead[job.destination or "unknown"][str(job.reason)] += 1
        return {name: dict(reasons) for name, reasons in dead.items()}

    # ------------------------------------------------------------------ Logs Insights

    def _last_errors(
        self, resources: Mapping[str, str], since: datetime, now: datetime
    ) -> list[dict[str, Any]]:
        groups = {
            physical: logical.removesuffix("LogGroup")
            for logical, physical in resources.items()
            if logical.endswith("FunctionLogGroup") and physical
        }
        if not groups:
            return []
        try:
            query = self.logs.start_query(
                logGroupNames=list(groups),
                startTime=int(since.timestamp()),
                endTime=int(now.timestamp()),
                queryString=ERRORS_QUERY,
                limit=LAST_ERRORS,
            )
            deadline = time.monotonic() + QUERY_SECONDS
            while True:
                answer = self.logs.get_query_results(queryId=query["queryId"])
                if answer["status"] not in ("Scheduled", "Running") or time.monotonic() > deadline:
                    break
                self.sleep(1)
        except (BotoCoreError, ClientError) as exc:
            return [{"level": "?", "message": f"cannot query the logs: {aws_error(exc)}"}]
        return [_error_row(row, groups) for row in answer.get("results", [])]


def _error_row(row: Iterable[Mapping[str, str]], groups: Mapping[str, str]) -> dict[str, Any]:
    fields = {cell["field"]: cell["value"] for cell in row}
    group = fields.pop("@log", "").split(":", 1)[-1]
    shown: dict[str, Any] = {
        "time": fields.pop("@timestamp", None),
        "function": groups.get(group, group),
        "level": fields.pop("level", None),
        "message": fields.pop("message", None),
    }
    shown.update({k: v for k, v in fields.items() if not k.startswith("@")})
    return shown


def _add(row: dict[str, Any], field: str, split: str | None, total: float) -> None:
    if split is None:
        row[field] = row.get(field, 0) + int(total)
    else:
        row.setdefault(field, {})
        row[field][split] = row[field].get(split, 0) + int(total)


def _name(queue_url: str) -> str:
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def stack_status(target: Any, stack_name: str, *, since: datetime, window: str) -> dict[str, Any]:
    """The status document of a deployed stack (target: relay_cli.targets.connect(args))."""
    from relay_cli.targets import replayer_of

    session = target.session
    return AwsStatus(
        cloudformation=session.client("cloudformation"),
        cloudwatch=session.client("cloudwatch"),
        logs=session.client("logs"),
        sqs=target.sqs,
        replayer=replayer_of(target),
        queues=target.queues,
        config=load_config(target.config_path) if target.config_path else None,
        stack_name=stack_name,
    ).collect(since, window)
