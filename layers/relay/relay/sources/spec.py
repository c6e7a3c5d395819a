"""What a webhook source is: how a provider signs, frames and describes its events.

A source module (`relay.sources.<provider>`) exposes a `SOURCE: SourceSpec`. The ingest
pipeline (relay.ingest.pipeline) is the same for every provider; only these facts differ.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from relay.config import Rule, Source
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import DefaultPaths, ProviderEvent


@dataclass(frozen=True)
class SourceSpec:
    name: str
    # verify(request, secrets, source_config) raises relay.errors.SignatureError
    verify: Callable[[WebhookRequest, Sequence[str], Source], None]
    # parse(request) -> provider events (one request may carry several: HubSpot batches)
    parse: Callable[[WebhookRequest], list[ProviderEvent]]
    # builtin_rules(source_config) -> the provider's built-in rules (some names are configurable)
    builtin_rules: Callable[[Source], tuple[Rule, ...]] = lambda _source: ()
    defaults: DefaultPaths = field(default_factory=lambda: DefaultPaths({}, {}, {}))
    # enrich(event) -> the event with what its rules also need merged into its payload (I/O
    # allowed: HubSpot reads the deal and contact from its CRM). It runs inside the idempotent
    # claim, so a failure releases the claim and the provider retries.
    enrich: Callable[[ProviderEvent], ProviderEvent] | None = None
    # configure(source_config, environ) -> this spec bound to the source's settings and the
    # function's environment (clients, settings-derived paths); called once at cold start.
    configure: Callable[[Source, Mapping[str, str] | None], SourceSpec] | None = None
    # How long the provider keeps what `relay backfill` reads (its event log, or its orders and
    # deals); a parked event is kept as long (relay.parking).
    event_log_days: int = 30


def load_source(name: str) -> SourceSpec:
    """The SourceSpec of relay.sources.<name> (imported on demand: each function needs one)."""
    return importlib.import_module(f"relay.sources.{name}").SOURCE
