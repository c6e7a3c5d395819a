"""Each function's environment as one pydantic model, read once at cold start.

Library code never reads os.environ at import time: handlers build these from the
environment they were given (the template's, or the local stack's).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from relay import sqs
from relay.backfill.readers import READERS
from relay.errors import ConfigError, validation_problems
from relay.vendors.registry import VENDORS


class _Settings(BaseModel):
    # defer_build: a function builds only its own settings' schema, at its cold start.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None):
        env = dict(os.environ if environ is None else environ)
        try:
            return cls.model_validate(env)
        except ValidationError as exc:
            problems = validation_problems(exc)
            raise ConfigError(f"invalid environment for {cls.__name__}", problems) from exc


class CommonSettings(_Settings):
    relay_config: str = Field(alias="RELAY_CONFIG", description="path of the relay config YAML")
    table_name: str = Field(alias="TABLE_NAME", description="idempotency records and delivery ledger")
    secrets_max_age: int = Field(default=300, alias="SECRETS_MAX_AGE_SECONDS", ge=0)


class IngestSettings(CommonSettings):
    webhook_secret_name: str | None = Field(default=None, alias="WEBHOOK_SECRET_NAME")
    webhook_secret: str | None = Field(
        default=None, alias="WEBHOOK_SECRET", description="local runs and tests only: the secret itself"
    )
    idempotency_ttl_seconds: int = Field(
        default=4 * 24 * 3600,
        alias="IDEMPOTENCY_TTL_SECONDS",
        ge=3 * 24 * 3600,
        description="kept at least 3 days: Stripe retries for 3 days",
    )
    queue_urls: dict[str, str] = Field(
        default_factory=dict, description="vendor kind → its queue (<KIND>_QUEUE_URL, where set)"
    )

    @model_validator(mode="before")
    @classmethod
    def _vendor_queues(cls, env: Any) -> Any:
        if isinstance(env, Mapping) and "queue_urls" not in env:
            urls = {kind: env.get(spec.queue_url_variable) for kind, spec in VENDORS.items()}
            env = {**env, "queue_urls": {kind: url for kind, url in urls.items() if url}}
        return env


class DeliverSettings(CommonSettings):
    """A deliver function's environment (template.yaml; the local stack adds RETRY_DELAY_SCALE)."""

    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL")
    max_receive_count: int = Field(
        default=5, alias="MAX_RECEIVE_COUNT", ge=1, description="the queue's redrive maxReceiveCount"
    )
    secrets_prefix: str = Field(
        default="", alias="SECRETS_PREFIX", description="the function may only read secrets so named"
    )
    retry_base_seconds: float = Field(default=30.0, alias="RETRY_BASE_SECONDS", gt=0)
    retry_max_seconds: float = Field(
        default=900.0,
        alias="RETRY_MAX_SECONDS",
        gt=0,
        le=sqs.MAX_VISIBILITY_SECONDS,
        description="SQS allows 12 h at most",
    )
    retry_delay_scale: float = Field(
        default=1.0, alias="RETRY_DELAY_SCALE", ge=0, description="local runs: 0.01 makes minutes seconds"
    )


class VendorQueues(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    queue_url: str
    dlq_url: str


class ReplaySettings(CommonSettings):
    """ReplayFunction's environment (template.yaml): every vendor's queue and DLQ."""

    vendor_queues: dict[str, VendorQueues] = Field(
        description="vendor kind → <KIND>_QUEUE_URL and <KIND>_DLQ_URL (all required)"
    )

    @model_validator(mode="before")
    @classmethod
    def _vendor_queues(cls, env: Any) -> Any:
        if isinstance(env, Mapping) and "vendor_queues" not in env:
            queues = {
                kind: {
                    "queue_url": env.get(spec.queue_url_variable),
                    "dlq_url": env.get(spec.dlq_url_variable),
                }
                for kind, spec in VENDORS.items()
            }
            env = {**env, "vendor_queues": queues}
        return env


class ReadKey(BaseModel):
    """Where a provider's read key is: a Secrets Manager name, or (local runs, tests) the key."""

    model_config = ConfigDict(frozen=True)

    secret_name: str | None = None
    value: str | None = None


class ReconcileSettings(IngestSettings):
    """ReconcileFunction's environment: the ingest one (table, queues, the HubSpot token for its
    CRM reads) plus the window and each provider's read key; a provider without one is off."""

    window_hours: float = Field(
        default=26, alias="RECONCILE_WINDOW_HOURS", gt=0, le=24 * 90, description="each run reads so far back"
    )
    read_keys: dict[str, ReadKey] = Field(
        default_factory=dict,
        description="provider → <PROVIDER>_READ_KEY_SECRET_NAME (or <PROVIDER>_READ_KEY), where set",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_keys(cls, env: Any) -> Any:
        if isinstance(env, Mapping) and "read_keys" not in env:
            keys = {
                provider: {
                    "secret_name": env.get(spec.secret_name_variable),
                    "value": env.get(spec.inline_variable),
                }
                for provider, spec in READERS.items()
            }
            env = {**env, "read_keys": {p: k for p, k in keys.items() if k["secret_name"] or k["value"]}}
        return env
