"""Secrets from Secrets Manager (Powertools parameters, cached), or the environment locally.

A secret may hold several values for a rotation: a JSON list, a JSON object with a
`secrets` (or `secret`) member, or lines / commas of plain text.
"""

from __future__ import annotations

import json

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from relay.errors import SecretNotFoundError


def split_values(raw: str) -> list[str]:
    text = raw.strip()
    if text.startswith(("[", "{")):
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            decoded = decoded.get("secrets", decoded.get("secret", decoded.get("api_key")))
        if isinstance(decoded, str):
            return [decoded.strip()]
        if isinstance(decoded, list):
            return [str(v).strip() for v in decoded if str(v).strip()]
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


def get_secret_values(name: str, *, max_age: int = 300) -> list[str]:
    """Every value of a secret (several during a rotation)."""
    if "secrets" not in DEFAULT_PROVIDERS:
        # Powertools' default provider opens a boto3 session of its own, which re-reads
        # botocore's models (~40 ms of a first request); share the default session instead.
        DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))
    try:
        raw = parameters.get_secret(name, max_age=max_age)
    except GetParameterError as exc:
        raise SecretNotFoundError(f"cannot read secret {name!r}") from exc
    values = split_values(raw if isinstance(raw, str) else raw.decode("utf-8"))
    if not values:
        raise SecretNotFoundError(f"secret {name!r} is empty")
    return values


def get_secret_value(name: str, *, max_age: int = 300) -> str:
    """The current value of a single-valued secret (an API key)."""
    return get_secret_values(name, max_age=max_age)[0]


def resolve(*, name: str | None, inline: str | None, max_age: int = 300) -> list[str]:
    """Inline values (local runs) win; otherwise the named secret."""
    if inline:
        return split_values(inline)
    if not name:
        raise SecretNotFoundError("no secret configured (set the secret name parameter)")
    return get_secret_values(name, max_age=max_age)
