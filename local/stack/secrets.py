"""The secrets the local stack puts in its Secrets Manager: webhook signing secrets, vendor keys.

Webhook secrets are named by the template's parameters (their defaults) and hold the
documented local values, each overridable by an environment variable (with
`stripe listen`, STRIPE_WEBHOOK_SECRET must be the `whsec_…` it prints). Vendor
credentials are named by the relay config and hold the sandboxes' default credentials;
`--secret NAME=VALUE` overrides any of them (for a destination that is not a sandbox).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from relay.config import Destination, RelayConfig

from local import events
from local.sandboxes import pagent, quicklizard, scalev, scanova


@dataclass(frozen=True)
class WebhookSecret:
    provider: str  # the signing scheme `relay-local send` uses (functions/ingest_<provider>)
    parameter: str  # the template parameter that names the secret
    env: str  # the environment variable that overrides the local value
    local_value: str

    def value(self, environ: Mapping[str, str]) -> str:
        return environ.get(self.env) or self.local_value


def _local(name: str, fallback: str) -> str:
    # The sources engineer documents each provider's local secret in local.events.
    return str(getattr(events, name, fallback))


WEBHOOK_SECRETS: dict[str, WebhookSecret] = {
    secret.provider: secret
    for secret in (
        WebhookSecret(
            "stripe", "StripeWebhookSecretName", "STRIPE_WEBHOOK_SECRET", events.LOCAL_STRIPE_SECRET
        ),
        WebhookSecret(
            "hubspot",
            "HubSpotClientSecretName",
            "HUBSPOT_CLIENT_SECRET",
            _local("LOCAL_HUBSPOT_SECRET", "local-hubspot-client-secret"),
        ),
        WebhookSecret(
            "pipedrive",
            "PipedriveBasicAuthSecretName",
            "PIPEDRIVE_BASIC_AUTH",
            _local("LOCAL_PIPEDRIVE_BASIC_AUTH", "relay:local-pipedrive-password"),
        ),
        WebhookSecret(
            "paddle",
            "PaddleWebhookSecretName",
            "PADDLE_WEBHOOK_SECRET",
            _local("LOCAL_PADDLE_SECRET", "pdl_ntfset_local_conversion_relay"),
        ),
        WebhookSecret(
            "shopify",
            "ShopifyWebhookSecretName",
            "SHOPIFY_WEBHOOK_SECRET",
            _local("LOCAL_SHOPIFY_SECRET", "shpss_local_conversion_relay"),
        ),
        WebhookSecret(
            "events",
            "EventsWebhookSecretName",
            "EVENTS_WEBHOOK_SECRET",
            # Standard Webhooks secrets are base64 after the whsec_ prefix.
            _local("LOCAL_EVENTS_SECRET", "whsec_bG9jYWwtY29udmVyc2lvbi1yZWxheS1ldmVudHM="),
        ),
    )
}
# Not a webhook secret: the token the HubSpot function reads deals with (the HubSpot API stub's).
HUBSPOT_TOKEN = WebhookSecret(
    "hubspot-api",
    "HubSpotTokenSecretName",
    "HUBSPOT_PRIVATE_APP_TOKEN",
    _local("LOCAL_HUBSPOT_TOKEN", "pat-local"),
)
# The Stripe API stub's key (QuickLizard reads checkout line items with it).
STRIPE_API_KEY = _local("LOCAL_STRIPE_API_KEY", "sk_test_local_conversion_relay")


def sandbox_credential(destination: Destination) -> str:
    """The credential the sandbox of this destination's vendor accepts by default."""
    if destination.kind == "scanova":
        return next(key for key, site in scanova.DEFAULT_API_KEYS.items() if site == destination.site_id)
    if destination.kind == "scalev":
        return scalev.DEFAULT_STORES[destination.store_id or ""]
    if destination.kind == "pagent":
        return min(pagent.DEFAULT_API_KEYS)
    return min(quicklizard.DEFAULT_CLIENT_KEYS)


def local_secrets(
    template: dict[str, Any],
    config: RelayConfig,
    *,
    environ: Mapping[str, str],
    overrides: Mapping[str, str] | None = None,
    sandboxed: Callable[[str], bool],
) -> dict[str, str]:
    """Secret name → value for every secret the template's functions and the config name."""
    defaults = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    values: dict[str, str] = {}
    for secret in (*WEBHOOK_SECRETS.values(), HUBSPOT_TOKEN):
        if defaults.get(secret.parameter):
            values[defaults[secret.parameter]] = secret.value(environ)
    # A real vendor's (or Stripe's) credential can only come from the overrides.
    for destination in config.destinations.values():
        if sandboxed(str(destination.base_url)):
            values[destination.api_key_secret] = sandbox_credential(destination)
        if destination.stripe_api_key_secret and sandboxed(str(destination.stripe_api_base)):
            values[destination.stripe_api_key_secret] = STRIPE_API_KEY
    values.update(overrides or {})
    return values
