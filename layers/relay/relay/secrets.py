"""Secrets from Secrets Manager (Powertools parameters, cached), or the environment locally.

A stored value is parsed strictly, in one of these forms (several values during a rotation):
- plain text: one value, or one value per line (blank lines are ignored). Commas are part of
  a value, never a separator: a Pipedrive `user:password` may contain one;
- a JSON list of non-empty strings: `["whsec_new", "whsec_old"]`;
- a JSON object with exactly one member: `secrets` (a list as above), or `secret` or
  `api_key` (a non-empty string).
Text that starts with `[` or `{` is JSON and must be one of these forms. Anything else (an
empty value, `null` in a list, a number, an object with other members) is refused with
MalformedSecretError, which names the secret and the problem but never the value: a key is
never made from a malformed value, and every request that needs the secret fails closed.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from relay.errors import MalformedSecretError, SecretNotFoundError

OBJECT_MEMBERS = ("secrets", "secret", "api_key")


def _strings(values: Any, name: str, what: str) -> list[str]:
    if not isinstance(values, list) or not values:
        raise MalformedSecretError(name, f"{what} must be a non-empty JSON list of strings")
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise MalformedSecretError(name, f"{what}[{index}] is not a non-empty string")
    return [value.strip() for value in values]


def _from_json(text: str, name: str) -> list[str]:
    try:
        decoded = json.loads(text)
    except ValueError:
        # The decoder's message (a position) is dropped too: nothing of the value is kept.
        raise MalformedSecretError(name, "starts like JSON ([ or {) but is not valid JSON") from None
    if isinstance(decoded, list):
        return _strings(decoded, name, "the list")
    if not isinstance(decoded, dict) or len(decoded) != 1 or next(iter(decoded)) not in OBJECT_MEMBERS:
        members = " or ".join(OBJECT_MEMBERS)
        raise MalformedSecretError(name, f"a JSON object must have exactly one member: {members}")
    ((member, value),) = decoded.items()
    if member == "secrets":
        return _strings(value, name, "secrets")
    if not isinstance(value, str) or not value.strip():
        raise MalformedSecretError(name, f"{member} is not a non-empty string")
    return [value.strip()]


def split_values(raw: str, *, name: str = "secret") -> list[str]:
    """Every value a stored secret holds, parsed strictly (the module docstring's forms)."""
    text = raw.strip()
    if text.startswith(("[", "{")):
        return _from_json(text, name)
    values = [line.strip() for line in text.splitlines() if line.strip()]
    if not values:
        raise MalformedSecretError(name, "is empty")
    return values


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
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedSecretError(name, "a binary secret that is not UTF-8 text") from None
    return split_values(text, name=name)


def get_secret_value(name: str, *, max_age: int = 300) -> str:
    """The current value of a single-valued secret (an API key)."""
    return get_secret_values(name, max_age=max_age)[0]


def resolve(*, name: str | None, inline: str | None, max_age: int = 300) -> list[str]:
    """Inline values (local runs) win; otherwise the named secret."""
    if inline:
        return split_values(inline, name="(inline value)")
    if not name:
        raise SecretNotFoundError("no secret configured (set the secret name parameter)")
    return get_secret_values(name, max_age=max_age)
