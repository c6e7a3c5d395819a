"""What the source modules share: exact JSON, 400-worthy reasons, settings, derived data.

- `load_json` parses numbers exactly (floats as Decimal), so a provider's 19.99 becomes
  1999 minor units, never 1998.
- `validated` turns a pydantic error into a PayloadError (400) that says where and why,
  without echoing the value (it may be PII); `checked_money` and `event_time` make a bad
  amount or time in a signed body a 400 too, never a mapping failure (5xx, retried forever).
- `source_settings` validates a source's `settings:` block at cold start (ConfigError).
- `with_relay` adds what a source derived or fetched under the payload's `relay` key, so
  rules (built-in or the config's) read it like any other field: `relay.contact.…`.
- `content_key` is the digest behind dedup keys of providers without a unique event id.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError
from relay import money
from relay.config import AttributionKey, Source
from relay.errors import ConfigError, MappingError, PayloadError, validation_problems
from relay.ingest.mapping import parse_time

RELAY_KEY = "relay"
ATTRIBUTION_KEYS: tuple[str, ...] = get_args(AttributionKey)

Model = TypeVar("Model", bound=BaseModel)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(body: bytes) -> Any:
    """The body as JSON with exact numbers (floats as Decimal); PayloadError if it is not JSON."""
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        raise PayloadError(f"body is not valid JSON: {exc}") from exc


def validated(model: type[Model], document: Any, what: str) -> Model:
    """`document` as `model`, or a PayloadError naming the first bad field (never its value)."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        ((where, why),) = validation_problems(exc, limit=1, top_level="body")
        raise PayloadError(f"not {what}: {where}: {why}") from exc


def event_time(value: Any, what: str) -> datetime | None:
    """A provider's event time (epoch s/ms or ISO 8601); PayloadError if it is neither."""
    try:
        return parse_time(value)
    except (MappingError, OverflowError, ValueError, OSError) as exc:  # OSError: out-of-range epoch
        raise PayloadError(f"not {what}: its time is neither epoch nor ISO 8601") from exc


def checked_money(amount: Any, currency: Any) -> None:
    """Raise ValueError (inside a pydantic validator: a 400) unless amount is exact money."""
    if amount is not None and currency is not None:
        money.to_minor(amount, money.currency_code(str(currency)))


def source_settings(model: type[Model], source: Source, provider: str) -> Model:
    """The source's `settings:` block as `model`; ConfigError lists each bad key."""
    try:
        return model.model_validate(source.settings)
    except ValidationError as exc:
        problems = validation_problems(exc, prefix=("sources", provider, "settings"))
        raise ConfigError(f"invalid {provider} settings", problems) from exc


def absolute_url(value: str | None) -> str | None:
    """A settings validator: an absolute http(s) URL (an API base, a public URL), or None."""
    if value is not None and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
        raise ValueError("must be an absolute http(s) URL")
    return value


def with_relay(payload: dict[str, Any], **derived: Any) -> dict[str, Any]:
    """A copy of the payload with `derived` merged under its `relay` key."""
    return {**payload, RELAY_KEY: {**(payload.get(RELAY_KEY) or {}), **derived}}


def content_key(value: Any, length: int = 24) -> str:
    """A stable hex digest of a JSON value (key order and number spelling do not matter)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:length]


def quoted(identifier: str) -> str:
    """A JMESPath quoted identifier, for keys that are not plain names (custom field hashes)."""
    return json.dumps(identifier)
