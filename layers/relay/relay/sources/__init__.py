"""Webhook sources: how each provider signs, frames and describes its events.

A source module exposes a `SOURCE: SourceSpec`. The ingest pipeline (relay.ingest)
is the same for every provider; only these few provider facts differ.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from relay.config import Rule, Source
from relay.mapping import DefaultPaths, ProviderEvent


@dataclass(frozen=True)
class WebhookRequest:
    """An inbound HTTP request, as API Gateway delivered it (body as raw bytes)."""

    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    public_url: str = ""  # scheme://host/path?query as the provider called it (HubSpot v3 signs it)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class SourceSpec:
    name: str
    # verify(request, secrets, source_config) raises relay.exceptions.SignatureError
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


def load_source(name: str) -> SourceSpec:
    """The SourceSpec of relay.sources.<name> (imported on demand: each function needs one)."""
    return importlib.import_module(f"relay.sources.{name}").SOURCE
