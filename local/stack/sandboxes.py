"""Which vendor sandboxes the local stack starts: one per loopback URL of the relay config."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from relay.config import RelayConfig
from relay.vendors.registry import VENDORS, vendor_spec

from sandboxes import Sandbox
from sandboxes.hubspot_api import HubSpotApiSandbox
from sandboxes.stripe_api import StripeApiSandbox

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# The vendor sandboxes, and the stubs of the provider APIs the relay reads: Stripe (QuickLizard
# fetches checkout line items from a destination's stripe_api_base) and HubSpot's CRM (the
# HubSpot source reads deals and contacts from its settings.api_base).
STRIPE_API_SANDBOX = StripeApiSandbox.name
HUBSPOT_API_SANDBOX = HubSpotApiSandbox.name


def vendor_sandbox(kind: str) -> type[Sandbox]:
    """The sandbox a vendor's spec names ("module:Class")."""
    module, _, name = vendor_spec(kind).sandbox.partition(":")
    return getattr(importlib.import_module(module), name)


AVAILABLE: dict[str, type[Sandbox]] = {
    **{kind: vendor_sandbox(kind) for kind in VENDORS},
    STRIPE_API_SANDBOX: StripeApiSandbox,
    HUBSPOT_API_SANDBOX: HubSpotApiSandbox,
}


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


@dataclass
class SandboxPlan:
    name: str  # key of AVAILABLE
    port: int
    serves: list[str] = field(default_factory=list)  # what the config points at it

    @property
    def available(self) -> bool:
        return self.name in AVAILABLE


def plan_sandboxes(config: RelayConfig) -> list[SandboxPlan]:
    """The sandboxes the config's loopback URLs need; a real vendor URL gets none."""
    plans: dict[tuple[str, int], SandboxPlan] = {}

    def want(name: str, url: str, serves: str) -> None:
        if not is_loopback(url):
            return
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        plans.setdefault((name, port), SandboxPlan(name, port)).serves.append(serves)

    hubspot = config.sources.get("hubspot")
    if hubspot is not None and hubspot.enabled and hubspot.settings.get("api_base"):
        want(HUBSPOT_API_SANDBOX, str(hubspot.settings["api_base"]), "hubspot (CRM API)")
    for destination_name, destination in config.destinations.items():
        if not destination.enabled:
            continue
        want(destination.kind, str(destination.base_url), destination_name)
        for api in destination.provider_apis():
            if api.provider == "stripe":
                want(STRIPE_API_SANDBOX, api.base_url, f"{destination_name} (Stripe API)")
    return list(plans.values())


def start_sandboxes(plans: list[SandboxPlan], host: str = "127.0.0.1") -> list[tuple[SandboxPlan, Sandbox]]:
    """Start every available planned sandbox; stop those already started if one cannot start."""
    started: list[tuple[SandboxPlan, Sandbox]] = []
    try:
        for plan in plans:
            if plan.available:
                started.append((plan, AVAILABLE[plan.name]().start(host, plan.port)))
    except BaseException:
        for _, sandbox in started:
            sandbox.stop()
        raise
    return started
