"""The providers whose history the relay can read, and the read key each one needs.

One entry per provider: its reader module (`relay.backfill.<provider>`, with a `build`), the
environment variables of its read key (`<PREFIX>_READ_KEY_SECRET_NAME`, or `<PREFIX>_READ_KEY`
itself for local runs and tests), the template parameter that names the secret, and what the
key is. The `/events` source has no provider log to read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # relay.settings reads this registry: keep its imports light
    from relay.backfill.history import HistoryReader
    from relay.config import Source


@dataclass(frozen=True)
class ReaderSpec:
    provider: str
    title: str  # the template's spelling: <title>ReadKeySecretName
    key: str  # what to store in the secret
    retention: str  # how far back the provider keeps what the reader lists

    @property
    def env_prefix(self) -> str:
        return self.provider.upper()

    @property
    def secret_name_variable(self) -> str:
        return f"{self.env_prefix}_READ_KEY_SECRET_NAME"

    @property
    def inline_variable(self) -> str:
        return f"{self.env_prefix}_READ_KEY"

    @property
    def template_parameter(self) -> str:
        return f"{self.title}ReadKeySecretName"

    def build(
        self, source: Source, key: Callable[[], str], event_types: frozenset[str], **api: Any
    ) -> HistoryReader:
        """The provider's reader (relay.backfill.<provider>.build), its read key resolved lazily."""
        module = importlib.import_module(f"relay.backfill.{self.provider}")
        return module.build(source, key, event_types, **api)


READERS: dict[str, ReaderSpec] = {
    spec.provider: spec
    for spec in (
        ReaderSpec("stripe", "Stripe", "a restricted key (rk_…) with Events: Read", "30 days of events"),
        ReaderSpec(
            "paddle",
            "Paddle",
            "an API key with event.read and notification.read",
            "90 days of events and notifications",
        ),
        ReaderSpec(
            "shopify",
            "Shopify",
            "an Admin API access token with read_orders",
            "orders: 60 days with read_orders (all with read_all_orders)",
        ),
        ReaderSpec(
            "hubspot",
            "HubSpot",
            "a private app token with crm.objects.deals.read",
            "deals (no limit; 10,000 a search)",
        ),
        ReaderSpec("pipedrive", "Pipedrive", "an API token", "deals (no limit)"),
    )
}
