"""The providers' read keys for `relay backfill`: from the environment, or the stack's secrets.

For each provider, in order: `<PROVIDER>_READ_KEY` in the environment (a key in hand); the
secret named by the stack's `<Provider>ReadKeySecretName` parameter (`--stack`, from the
description `connect` read), or the local stack's `conversion-relay/<provider>-read-key`
(`--local`). A provider without one cannot be read. Each secret is looked up and read at most
once a run. The HubSpot source's own CRM reads (the enrich step) use `HUBSPOT_TOKEN`, else the
secret of the stack's `HubSpotTokenSecretName`, else the HubSpot read key.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError
from relay.backfill.readers import READERS
from relay.errors import BackfillError
from relay.secrets import split_values

from relay_cli.targets import Target

HUBSPOT_TOKEN_PARAMETER = "HubSpotTokenSecretName"  # noqa: S105 - a parameter's name


class ReadKeys:
    def __init__(self, target: Target):
        self._target = target
        self._parameters = target.parameters
        endpoint = target.sqs.meta.endpoint_url if target.local else None
        self._secrets = target.session.client("secretsmanager", endpoint_url=endpoint)
        self._exists_memo: dict[str, bool] = {}
        self._values: dict[str, str] = {}

    def secret_name(self, provider: str) -> str | None:
        spec = READERS[provider]
        if self._target.local:
            from local.stack.secrets import local_read_key_secret  # the local stack's convention

            return local_read_key_secret(provider)
        return self._parameters.get(spec.template_parameter) or None

    def available(self, provider: str) -> bool:
        if os.environ.get(READERS[provider].inline_variable):
            return True
        name = self.secret_name(provider)
        return bool(name) and self._exists(name)

    def key(self, provider: str) -> Callable[[], str]:
        inline = os.environ.get(READERS[provider].inline_variable)
        if inline:
            return lambda: inline
        name = self.secret_name(provider)
        if not name:
            raise BackfillError(
                f"no read key for {provider}: set {READERS[provider].inline_variable}, or the stack's "
                f"{READERS[provider].template_parameter} ({READERS[provider].key})"
            )
        value = self._read(name)  # once: a backfill is short, and a bad key fails here, early
        return lambda: value

    def hubspot_token(self) -> str | None:
        if os.environ.get("HUBSPOT_TOKEN"):
            return os.environ["HUBSPOT_TOKEN"]
        name = self._parameters.get(HUBSPOT_TOKEN_PARAMETER)
        if self._target.local:
            from local.stack.secrets import HUBSPOT_TOKEN, template_default

            name = template_default(HUBSPOT_TOKEN.parameter)
        if name and self._exists(name):
            return self._read(name)
        return self.key("hubspot")() if self.available("hubspot") else None

    def _exists(self, name: str) -> bool:
        if name in self._values:
            return True
        if name not in self._exists_memo:
            try:
                self._secrets.describe_secret(SecretId=name)
            except (BotoCoreError, ClientError):
                self._exists_memo[name] = False
            else:
                self._exists_memo[name] = True
        return self._exists_memo[name]

    def _read(self, name: str) -> str:
        if name not in self._values:
            self._values[name] = self._fetch(name)
        return self._values[name]

    def _fetch(self, name: str) -> str:
        try:
            raw = self._secrets.get_secret_value(SecretId=name)["SecretString"]
        except (BotoCoreError, ClientError) as exc:
            raise BackfillError(f"cannot read secret {name!r} ({type(exc).__name__})") from exc
        values = split_values(raw)
        if not values:
            raise BackfillError(f"secret {name!r} is empty")
        return values[0]
