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

from relay.backfill.readers import READERS
from relay.config import RelayConfig
from relay.vendors.spec import Destination

from local.stack.sandboxes import vendor_sandbox
from local.world import load_template
from sandboxes import stripe_api
from testkit.secrets import LOCAL_HUBSPOT_TOKEN, LOCAL_READ_KEYS, LOCAL_WEBHOOK_SECRETS


@dataclass(frozen=True)
class WebhookSecret:
    provider: str  # the signing scheme `relay-local send` uses (functions/ingest_<provider>)
    parameter: str  # the template parameter that names the secret
    env: str  # the environment variable that overrides the local value
    local_value: str

    def value(self, environ: Mapping[str, str]) -> str:
        return environ.get(self.env) or self.local_value


_OVERRIDES = {  # provider → (template parameter, environment variable)
    "stripe": ("StripeWebhookSecretName", "STRIPE_WEBHOOK_SECRET"),
    "hubspot": ("HubSpotClientSecretName", "HUBSPOT_CLIENT_SECRET"),
    "pipedrive": ("PipedriveBasicAuthSecretName", "PIPEDRIVE_BASIC_AUTH"),
    "paddle": ("PaddleWebhookSecretName", "PADDLE_WEBHOOK_SECRET"),
    "shopify": ("ShopifyWebhookSecretName", "SHOPIFY_WEBHOOK_SECRET"),
    "events": ("EventsWebhookSecretName", "EVENTS_WEBHOOK_SECRET"),
}
WEBHOOK_SECRETS: dict[str, WebhookSecret] = {
    provider: WebhookSecret(provider, parameter, env, LOCAL_WEBHOOK_SECRETS[provider])
    for provider, (parameter, env) in _OVERRIDES.items()
}
# Not a webhook secret: the private-app token the HubSpot function reads deals with.
HUBSPOT_TOKEN = WebhookSecret(
    "hubspot-api", "HubSpotTokenSecretName", "HUBSPOT_PRIVATE_APP_TOKEN", LOCAL_HUBSPOT_TOKEN
)


def local_read_key_secret(provider: str) -> str:
    """Where the local stack keeps a provider's read key (relay backfill --local reads it there)."""
    return f"conversion-relay/{provider}-read-key"


def read_keys(config: RelayConfig, *, sandboxed: Callable[[str], bool]) -> dict[str, str]:
    """Secret name → the read key of each provider whose API is a sandbox (relay backfill --local)."""
    keys = {}
    for provider in READERS:
        source = config.sources.get(provider)
        base = source.settings.get("api_base") if source is not None and source.enabled else None
        if base and sandboxed(str(base)):
            keys[local_read_key_secret(provider)] = LOCAL_READ_KEYS[provider]
    return keys


def read_key_parameters(config: RelayConfig, *, sandboxed: Callable[[str], bool]) -> dict[str, str]:
    """The template parameters naming those secrets: ReconcileFunction reads each sandbox."""
    named = read_keys(config, sandboxed=sandboxed)
    return {
        spec.template_parameter: local_read_key_secret(provider)
        for provider, spec in READERS.items()
        if local_read_key_secret(provider) in named
    }


def template_default(parameter: str) -> str:
    return str(load_template().get("Parameters", {}).get(parameter, {}).get("Default", ""))


def sandbox_credential(destination: Destination) -> str:
    """The credential the sandbox of this destination's vendor accepts by default."""
    return vendor_sandbox(destination.kind).default_credential(destination)


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
    values.update(read_keys(config, sandboxed=sandboxed))
    # A real vendor's (or Stripe's) credential can only come from the overrides.
    for destination in config.destinations.values():
        if sandboxed(str(destination.base_url)):
            values[destination.api_key_secret] = sandbox_credential(destination)
        for api in destination.provider_apis():
            if api.provider == "stripe" and sandboxed(api.base_url):
                values[api.secret_name] = min(stripe_api.DEFAULT_API_KEYS)
    values.update(overrides or {})
    return values
