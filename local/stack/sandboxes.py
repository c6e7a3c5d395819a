"""Which vendor sandboxes the local stack starts: one per loopback URL of the relay config."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from relay.config import RelayConfig
from relay.vendors.registry import VENDORS, vendor_spec

from local.stack.aws import LOOPBACK_ADDRESSES
from sandboxes import Sandbox
from sandboxes.hubspot_api import HubSpotApiSandbox
from sandboxes.paddle_api import PaddleApiSandbox
from sandboxes.pipedrive_api import PipedriveApiSandbox
from sandboxes.provider_api import ProviderApiSandbox
from sandboxes.shopify_api import ShopifyApiSandbox
from sandboxes.stripe_api import StripeApiSandbox

# The vendor sandboxes, and the stubs of the provider APIs the relay reads: each source's
# settings.api_base (relay backfill and ReconcileFunction read the providers' history there;
# the HubSpot source also reads deals and contacts), and Stripe for QuickLizard (it fetches
# checkout line items from a destination's stripe_api_base). A provider's API sandbox is also
# that provider's log: the stack tells it every webhook the provider sent.
PROVIDER_API_SANDBOXES: dict[str, type[ProviderApiSandbox]] = {
    sandbox.provider: sandbox
    for sandbox in (
        StripeApiSandbox,
        PaddleApiSandbox,
        ShopifyApiSandbox,
        HubSpotApiSandbox,
        PipedriveApiSandbox,
    )
}
STRIPE_API_SANDBOX = StripeApiSandbox.name
HUBSPOT_API_SANDBOX = HubSpotApiSandbox.name


def vendor_sandbox(kind: str) -> type[Sandbox]:
    """The sandbox a vendor's spec names ("module:Class")."""
    module, _, name = vendor_spec(kind).sandbox.partition(":")
    return getattr(importlib.import_module(module), name)


AVAILABLE: dict[str, type[Sandbox]] = {
    **{kind: vendor_sandbox(kind) for kind in VENDORS},
    **{sandbox.name: sandbox for sandbox in PROVIDER_API_SANDBOXES.values()},
}


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_ADDRESSES


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

    for provider, source in config.sources.items():
        sandbox = PROVIDER_API_SANDBOXES.get(provider)
        if sandbox is not None and source.enabled and source.settings.get("api_base"):
            want(sandbox.name, str(source.settings["api_base"]), f"{provider} (provider API)")
    for destination_name, destination in config.destinations.items():
        if not destination.enabled:
            continue
        want(destination.kind, str(destination.base_url), destination_name)
        for api in destination.provider_apis():
            if api.provider == "stripe":
                want(STRIPE_API_SANDBOX, api.base_url, f"{destination_name} (Stripe API)")
    return list(plans.values())


def provider_sandboxes(started: list[tuple[SandboxPlan, Sandbox]]) -> dict[str, ProviderApiSandbox]:
    """Provider → its API sandbox among those started (the provider's log of webhooks)."""
    return {sandbox.provider: sandbox for _, sandbox in started if isinstance(sandbox, ProviderApiSandbox)}


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
