"""The ingest pipeline, the same for every provider (and for events read back from the
providers' APIs by `relay backfill` and ReconcileFunction: `relay_event`, from the claim on).

verify the signature on the raw body → parse (an authentic body or event the relay cannot use
is parked: 2xx "parked" with its reason, relay.parking) → skip test-mode and unused event types
(200 "ignored") → claim the provider event id (Powertools idempotency, DynamoDB) →
enrich (sources that read more, e.g. HubSpot's CRM) → map to conversions (PII hashed
there) → one job per (conversion, destination) → claim each conversion's destinations
(relay.ingest.claims: a second webhook about the same order queues only what no webhook
queued) → SendMessageBatch → 2xx. A failure before the jobs are queued raises, Powertools
releases the claim, and the answer is 5xx so the provider retries.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS
from relay import keyspaces, secrets
from relay.config import RelayConfig, Source, load_config
from relay.errors import ClaimInProgressError, MappingError, PayloadError, RequestError
from relay.ingest.claims import ConversionClaims
from relay.ingest.edge import WebhookRequest, error_response, respond, webhook_request
from relay.ingest.mapping import ProviderEvent, handled_event_types, ignore_reason, map_event, routes
from relay.ingest.queueing import JobQueues
from relay.models import DeliveryJob
from relay.parking import FINGERPRINT_CHARS, ParkedEvent, ParkedEvents
from relay.settings import IngestSettings
from relay.sources.payloads import content_key
from relay.sources.spec import SourceSpec, load_source

logger = Logger(child=True)

Outcome = Literal["relayed", "duplicate", "ignored", "parked"]


class Relayed(NamedTuple):
    """What `relay_event` did with one event, and the answer its webhook would have had."""

    outcome: Outcome
    result: dict[str, Any]


class IngestPipeline:
    def __init__(
        self,
        *,
        spec: SourceSpec,
        config: RelayConfig,
        signing_secrets: Callable[[], list[str]],
        queues: JobQueues,
        claims: ConversionClaims,
        parked: ParkedEvents,
        persistence: DynamoDBPersistenceLayer,
        idempotency: IdempotencyConfig,
        metrics: Metrics,
    ):
        self.spec = spec
        self.config = config
        self.source: Source = config.source(spec.name)
        self._rules = spec.builtin_rules(self.source)
        self.handled = frozenset(handled_event_types(self.source, self._rules))
        self._signing_secrets = signing_secrets
        self._queues = queues
        self._claims = claims
        self._parked = parked
        self._persistence = persistence
        self._idempotency = idempotency
        self._metrics = metrics
        self._ran = False
        # Claims are keyed idempotency#<source>#<hash> in every function that relays this source's
        # events (its webhook function, ReconcileFunction, `relay backfill`), so an event that
        # arrives both ways counts once; the webhook function's IAM allows no other keys.
        self._claim_prefix = keyspaces.idempotency_prefix(spec.name)
        self._process_once = idempotent_function(
            data_keyword_argument="claim",
            persistence_store=persistence,
            config=idempotency,
            key_prefix=self._claim_prefix,
        )(self._process)

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """An API Gateway HTTP API event in, the HTTP answer out."""
        if context is not None:
            self._idempotency.register_lambda_context(context)
        try:
            request = webhook_request(event, max_body_bytes=self.source.max_body_bytes)
            if not self.source.enabled:
                return respond(404, {"error": "source_disabled", "reason": f"{self.spec.name} is disabled"})
            self.spec.verify(request, self._signing_secrets(), self.source)
            # Authentic from here on: what cannot be used is parked, never refused or retried.
            try:
                events = self.spec.parse(request)
            except PayloadError as exc:
                return respond(200, self._park_request(request, exc))
            results = [self._one(provider_event) for provider_event in events]
        except RequestError as exc:
            self._count("WebhookRefused", {"error": exc.code})
            return error_response(exc)
        except Exception as exc:  # every other error becomes a 5xx answer, in one place
            return error_response(exc)
        if len(results) == 1:
            return respond(200, results[0])
        return respond(200, {"status": "processed", "events": results})

    def _one(self, event: ProviderEvent) -> dict[str, Any]:
        self._metrics.add_metric(name="WebhookReceived", unit=MetricUnit.Count, value=1)
        outcome, result = self._relay(event)
        if outcome == "duplicate":
            self._metrics.add_metric(name="WebhookDuplicate", unit=MetricUnit.Count, value=1)
        return result

    # --- events read back from the provider (relay backfill, ReconcileFunction) -------------

    def relay_event(
        self, event: ProviderEvent, *, destinations: Collection[str] | None = None, context: Any = None
    ) -> Relayed:
        """An authentic event read from the provider's API, through the webhook's own steps.

        Without `destinations` it is claimed under the key its webhook claims (an event that
        arrives both ways counts once; a duplicate answers like the first). With them it goes
        to those destinations only and claims nothing: a destination added later gets events
        already relayed to the others, and its delivery ledger keeps each one exactly-once.
        `context` (a Lambda context, or anything with get_remaining_time_in_millis) bounds how
        long an interrupted claim blocks the event.
        """
        if context is not None:
            self._idempotency.register_lambda_context(context)
        return Relayed(*self._relay(event, destinations))

    def seen(self, event: ProviderEvent) -> bool:
        """Whether the event's claim exists: relayed already, or being relayed (a dry run asks)."""
        self._persistence.configure(self._idempotency, key_prefix=self._claim_prefix)
        try:
            record = self._persistence.get_record({"provider": event.provider, "event_id": event.event_id})
        except IdempotencyItemNotFoundError:
            return False
        return record is not None and record.status != STATUS_CONSTANTS["EXPIRED"]

    def _relay(
        self, event: ProviderEvent, destinations: Collection[str] | None = None
    ) -> tuple[Outcome, dict[str, Any]]:
        log = {"provider": event.provider, "event_id": event.event_id, "event_type": event.event_type}
        if reason := ignore_reason(event, self.source, self.handled):
            return "ignored", self._ignored(event, reason, log)
        self._ran = False
        claim = {"provider": event.provider, "event_id": event.event_id}
        try:
            if destinations is not None:  # no claim: each destination's ledger dedupes
                return "relayed", self._process(claim=claim, event=event, only=destinations)
            result = self._process_once(claim=claim, event=event)
        except IdempotencyAlreadyInProgressError as exc:
            raise ClaimInProgressError(f"event {event.event_id} is being processed; retry shortly") from exc
        except MappingError as exc:  # the idempotency claim is released: a backfill may try again
            fingerprint = content_key(event.payload, FINGERPRINT_CHARS)
            return "parked", self._park(event, exc.code, str(exc), fingerprint)
        if not self._ran:
            logger.info("duplicate event answered like the first", extra=log)
            # The first answer, marked: nothing was queued again (the sender may not know it sent twice).
            return "duplicate", {**result, "duplicate": True}
        return "relayed", result

    def _ignored(self, event: ProviderEvent, reason: str, log: dict[str, Any]) -> dict[str, Any]:
        self._count("WebhookIgnored", {"reason": reason})
        logger.info("event ignored", extra={**log, "reason": reason})
        return {"status": "ignored", "reason": reason, "event_id": event.event_id}

    def _park(self, event: ProviderEvent, reason: str, detail: str, fingerprint: str) -> dict[str, Any]:
        parked = ParkedEvent(
            provider=event.provider,
            event_id=event.event_id,
            event_type=event.event_type,
            reason=reason,
            detail=detail,
            fingerprint=fingerprint,
            parked_at=datetime.now(UTC),
            occurred_at=event.occurred_at,
        )
        self._parked.park(parked, retention_days=self.spec.event_log_days)
        self._count("WebhookParked", {"reason": reason})
        logger.warning(
            "event parked: authentic but unusable; fix, then relay backfill --parked",
            extra={k: v for k, v in parked.as_json().items() if k != "fingerprint"},
        )
        return {"status": "parked", "event_id": event.event_id, "reason": reason, "detail": parked.detail}

    def _park_request(self, request: WebhookRequest, exc: PayloadError) -> dict[str, Any]:
        """A signed body that is not an event the relay can read: parked by its fingerprint."""
        fingerprint = hashlib.sha256(request.body).hexdigest()[:FINGERPRINT_CHARS]
        event = ProviderEvent(
            provider=self.spec.name, event_id=f"body:{fingerprint}", event_type="unreadable", payload=None
        )
        return self._park(event, exc.code, exc.reason, fingerprint)

    def _process(
        self, *, claim: dict[str, str], event: ProviderEvent, only: Collection[str] | None = None
    ) -> dict[str, Any]:
        self._ran = True
        if self.spec.enrich is not None:
            event = self.spec.enrich(event)
        mapped = map_event(event, self.source, self._rules, self.spec.defaults)
        jobs: list[DeliveryJob] = []
        skipped: Counter[str] = Counter()
        for item in mapped:
            for name, _, reason in routes(self.config, self.source, item, only):
                if reason:
                    skipped[f"{name}:{reason}"] += 1
                    self._count("DestinationSkipped", {"destination": name, "reason": reason})
                    continue
                jobs.append(DeliveryJob(destination=name, conversion=item.conversion))
        queued, already = self._claims.send_once(jobs, event.event_id, self._queues.send)
        self._metrics.add_metric(name="ConversionsMapped", unit=MetricUnit.Count, value=len(mapped))
        self._metrics.add_metric(name="JobsQueued", unit=MetricUnit.Count, value=queued)
        result = {
            "status": "accepted",
            "event_id": claim["event_id"],
            "conversions": [str(m.conversion.conversion_id) for m in mapped],
            "jobs": queued,
            "skipped": dict(skipped),
            **({"already_queued": already} if already else {}),
        }
        logger.info(
            "event relayed",
            extra={
                "event_id": event.event_id,
                "event_type": event.event_type,
                "jobs": queued,
                "already_queued": already,
                "conversions": len(mapped),
                "skipped": dict(skipped),
            },
        )
        return result

    def _count(self, name: str, dimensions: dict[str, str]) -> None:
        # One metric per dimension set: Metrics' shared dimensions would mix reasons.
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=1,
            namespace=self._metrics.namespace,
            default_dimensions={**self._metrics.default_dimensions, "source": self.spec.name},
        ) as metric:
            for key, value in dimensions.items():
                metric.add_dimension(name=key, value=value)


def build_ingest(
    source_name: str,
    metrics: Metrics,
    environ: dict[str, str] | None = None,
    *,
    dynamodb: Any = None,
    sqs: Any = None,
) -> IngestPipeline:
    """Everything an ingest function needs, built once at cold start from its environment
    (`relay backfill` passes the clients of the stack it works on)."""
    settings = IngestSettings.from_env(environ)
    config = load_config(settings.relay_config)
    spec = load_source(source_name)
    if spec.configure is not None:
        spec = spec.configure(config.source(source_name), environ)
    kinds = {name: d.kind for name, d in config.destinations.items()}
    # One boto3 session for both clients: Powertools would otherwise open its own, which
    # re-reads botocore's models and endpoints (~40 ms of every cold start).
    dynamodb = dynamodb or boto3.client("dynamodb")
    persistence = DynamoDBPersistenceLayer(table_name=settings.table_name, boto3_client=dynamodb)
    idempotency = IdempotencyConfig(expires_after_seconds=settings.idempotency_ttl_seconds)

    def signing_secrets() -> list[str]:
        return secrets.resolve(
            name=settings.webhook_secret_name,
            inline=settings.webhook_secret,
            max_age=settings.secrets_max_age,
        )

    return IngestPipeline(
        spec=spec,
        config=config,
        signing_secrets=signing_secrets,
        queues=JobQueues(sqs or boto3.client("sqs"), settings.queue_urls, kinds),
        claims=ConversionClaims(
            dynamodb, settings.table_name, source=spec.name, ttl_seconds=settings.idempotency_ttl_seconds
        ),
        parked=ParkedEvents(dynamodb, settings.table_name),
        persistence=persistence,
        idempotency=idempotency,
        metrics=metrics,
    )
