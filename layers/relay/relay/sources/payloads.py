"""What the source modules share: safe JSON, reasons for what cannot be used, settings, derived data.

A PayloadError raised by a source's parse parks the (signed) event with its reason
(relay.ingest.pipeline); nothing a body holds may raise anything else.
- `load_json` reads untrusted JSON (relay.ingest.json_body): bounded depth, exact numbers (a
  provider's 19.99 becomes 1999 minor units, never 1998), no NaN, duplicate keys or lone
  surrogates.
- `validated` turns a pydantic error into a PayloadError that says where and why, without
  echoing the value (it may be PII); an amount refused by relay.money_rules keeps its code
  (negative_amount, …). `event_time` and `identifier` do the same for times and ids.
- `source_settings` validates a source's `settings:` block at cold start (ConfigError).
- `with_relay` adds what a source derived or fetched under the payload's `relay` key, so
  rules (built-in or the config's) read it like any other field: `relay.contact.…`.
- `content_key` is the digest behind dedup keys of providers without a unique event id.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, StringConstraints, ValidationError
from relay.config import AttributionKey, Source
from relay.errors import ConfigError, InvalidMoneyError, MappingError, PayloadError, validation_problems
from relay.ingest import json_body
from relay.ingest.mapping import parse_time

RELAY_KEY = "relay"
ATTRIBUTION_KEYS: tuple[str, ...] = get_args(AttributionKey)

# Ids and types become DynamoDB keys, metric dimensions and log fields: a provider's are short.
MAX_ID_CHARS = 255
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]

Model = TypeVar("Model", bound=BaseModel)


def load_json(body: bytes) -> Any:
    """The body as JSON (relay.ingest.json_body); PayloadError if it is not JSON the relay reads."""
    try:
        return json_body.loads(body)
    except ValueError as exc:  # not JSON, not UTF-8, too deep, NaN, a duplicate key, a lone surrogate
        raise PayloadError(f"body is not valid JSON: {exc}") from exc


def validated(model: type[Model], document: Any, what: str) -> Model:
    """`document` as `model`, or a PayloadError naming the first bad field (never its value)."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        ((where, why),) = validation_problems(exc, limit=1, top_level="body")
        cause = (exc.errors(include_url=False, include_input=False)[0].get("ctx") or {}).get("error")
        code = cause.code if isinstance(cause, InvalidMoneyError) else None
        raise PayloadError(f"not {what}: {where}: {why}", code=code) from exc


def identifier(value: Any, what: str) -> str:
    """An event id or type: a non-empty string of at most MAX_ID_CHARS; PayloadError otherwise."""
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_ID_CHARS:
        raise PayloadError(f"no {what} (a non-empty string of at most {MAX_ID_CHARS} characters)")
    return text


def event_time(value: Any, what: str) -> datetime | None:
    """A provider's event time (epoch s/ms or ISO 8601); PayloadError if it is neither."""
    try:
        return parse_time(value)
    except (MappingError, OverflowError, ValueError, OSError) as exc:  # OSError: out-of-range epoch
        raise PayloadError(f"not {what}: its time is neither epoch nor ISO 8601") from exc


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
    earlier = payload.get(RELAY_KEY)  # what parse derived, if enrich adds more; never a body's own
    return {**payload, RELAY_KEY: {**(earlier if isinstance(earlier, dict) else {}), **derived}}


def content_key(value: Any, length: int = 24) -> str:
    """A stable hex digest of a JSON value (key order and number spelling do not matter)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:length]


def quoted(identifier: str) -> str:
    """A JMESPath quoted identifier, for keys that are not plain names (custom field hashes)."""
    return json.dumps(identifier)
