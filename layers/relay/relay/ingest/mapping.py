"""Apply a source's rules to a provider payload: 0..n canonical conversions.

Raw PII is read from the payload, normalized and hashed here (relay.pii), and never
leaves this module unhashed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import jmespath
from relay import money, pii
from relay.config import ItemsSpec, RelayConfig, Rule, Source, ValueSpec
from relay.errors import InvalidMoneyError, MappingError
from relay.models import (
    Attribution,
    Consent,
    Conversion,
    Identity,
    Item,
    Money,
    PagentSession,
    SourceRef,
    conversion_id,
)


@lru_cache(maxsize=1024)
def _compiled(expression: str) -> jmespath.parser.ParsedResult:
    return jmespath.compile(expression)


def search(expression: str | None, data: Any) -> Any:
    return None if expression is None else _compiled(expression).search(data)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


@dataclass(frozen=True)
class ProviderEvent:
    """What every source extracts from its envelope before the rules run."""

    provider: str
    event_id: str
    event_type: str
    payload: Any
    livemode: bool = True
    occurred_at: datetime | None = None
    object_type: str | None = None
    object_id: str | None = None


@dataclass(frozen=True)
class DefaultPaths:
    """A provider's built-in paths; the config's source-level paths and a rule's own win."""

    identity: dict[str, str]
    attribution: dict[str, str]
    properties: dict[str, str]


def parse_time(value: Any) -> datetime | None:
    """Epoch seconds or milliseconds, or ISO 8601 text, as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        seconds = float(value)
        try:
            return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, tz=UTC)
        except (ValueError, OverflowError, OSError) as exc:  # NaN, or beyond year 9999
            raise MappingError(f"time {value!r} is out of range") from exc
    text = str(value).strip()
    if text.isdigit():
        return parse_time(int(text))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MappingError(f"time {text!r} is neither epoch nor ISO 8601") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _minor(amount: Any, currency: str, *, major: bool) -> int:
    if major:
        return money.to_minor(amount if not isinstance(amount, float) else repr(amount), currency)
    if isinstance(amount, bool) or amount is None:
        raise InvalidMoneyError(f"minor-unit amount {amount!r} is not an integer")
    if isinstance(amount, str) and amount.strip().lstrip("-").isdigit():
        return int(amount.strip())
    if isinstance(amount, int):
        return amount
    raise InvalidMoneyError(f"minor-unit amount {amount!r} is not an integer")


def _value(spec: ValueSpec | None, payload: Any) -> Money | None:
    if spec is None:
        return None
    currency = search(spec.currency, payload)
    major = spec.amount_major is not None
    amount = search(spec.amount_major if major else spec.amount_minor, payload)
    if amount is None or currency is None:
        return None
    code = money.currency_code(str(currency))
    return Money(amount_minor=_minor(amount, code, major=major), currency=code)


def _unit_price(spec: ItemsSpec, line: Any, currency: str | None) -> int | None:
    """A line's unit price in minor units, or None when it has none or none that is exact.

    A line's unit price is detail (metered prices have fractional minor units); the
    conversion's value stays exact, so such an item goes without one.
    """
    try:
        if (raw := search(spec.unit_amount_minor, line)) is not None:
            return _minor(raw, currency or "USD", major=False)
        if (raw := search(spec.unit_amount_major, line)) is not None:
            if currency is None:
                raise MappingError("item prices in major units need the conversion's currency")
            return _minor(raw, currency, major=True)
    except InvalidMoneyError:
        return None
    return None


def _items(spec: ItemsSpec | None, payload: Any, currency: str | None) -> tuple[Item, ...]:
    if spec is None:
        return ()
    lines = search(spec.path, payload) or []
    items = []
    for line in lines if isinstance(lines, list) else []:
        product_id = _text(search(spec.product_id, line))
        if product_id is None:
            continue
        unit = _unit_price(spec, line, currency)
        quantity = search(spec.quantity, line)
        items.append(
            Item(
                product_id=product_id,
                quantity=int(quantity) if quantity is not None else 1,
                unit_amount_minor=unit,
                name=_text(search(spec.name, line)),
                category=_text(search(spec.category, line)),
                variant_id=_text(search(spec.variant_id, line)),
                bundle_price_option_id=_text(search(spec.bundle_price_option_id, line)),
                url=_text(search(spec.url, line)),
            )
        )
    return tuple(items)


def _identity(paths: dict[str, str], payload: Any, phone_region: str | None) -> Identity:
    raw = {key: _text(search(path, payload)) for key, path in paths.items()}
    first, last = raw.get("first_name"), raw.get("last_name")
    if not (first or last):
        first, last = pii.split_full_name(raw.get("full_name"))
    country = raw.get("country")
    return Identity(
        email=pii.hash_email(raw.get("email")),
        phone=pii.hash_phone(raw.get("phone"), phone_region or country),
        first_name=pii.hash_name(first),
        last_name=pii.hash_name(last),
        city=pii.hash_city(raw.get("city")),
        state=pii.hash_state(raw.get("state")),
        zip=pii.hash_zip(raw.get("zip"), country),
        country=pii.hash_country(country),
        external_id=pii.hash_external_id(raw.get("external_id")),
    )


def _pagent(paths: dict[str, str], payload: Any) -> PagentSession:
    """`pagent` may point at the whole `_pgnt.variables()` object, or at its JSON text
    (Stripe metadata values are strings); the single-field paths win over it."""
    session: dict[str, Any] = {}
    whole = search(paths.get("pagent"), payload)
    if isinstance(whole, str):
        try:
            whole = json.loads(whole)
        except ValueError:
            whole = None
    if isinstance(whole, dict):
        session.update({k: _text(whole.get(k)) for k in PagentSession.model_fields})
    for field in PagentSession.model_fields:
        if (value := _text(search(paths.get(f"pagent_{field}"), payload))) is not None:
            session[field] = value
    return PagentSession(**session)


def _attribution(paths: dict[str, str], payload: Any) -> Attribution:
    plain = {key: _text(search(path, payload)) for key, path in paths.items() if not key.startswith("pagent")}
    scan = plain.get("scan_session_id")
    if scan is not None:
        # Scanova rejects non-UUID sessions with 422: treat them as absent, so the
        # destination is skipped (and counted) at ingest instead.
        try:
            plain["scan_session_id"] = str(uuid.UUID(scan))
        except ValueError:
            plain["scan_session_id"] = None
    return Attribution(pagent=_pagent(paths, payload), **plain)


def _consent(expression: str | None, payload: Any) -> Consent | None:
    value = search(expression, payload)
    if value is None:
        return None
    if isinstance(value, bool):
        return Consent.GRANTED if value else Consent.DENIED
    text = str(value).strip().lower()
    aliases = {
        "true": "granted",
        "yes": "granted",
        "opt_in": "granted",
        "false": "denied",
        "no": "denied",
        "opt_out": "denied",
    }
    try:
        return Consent(aliases.get(text, text))
    except ValueError:
        return None


def apply_rule(
    rule: Rule, source: Source, event: ProviderEvent, defaults: DefaultPaths | None = None
) -> Conversion | None:
    payload = event.payload
    base = defaults or DefaultPaths({}, {}, {})
    if rule.when is not None and not search(rule.when, payload):
        return None
    order_key = _text(search(rule.order_key, payload))
    if order_key is None:
        raise MappingError(f"rule for {rule.event} found no order key at {rule.order_key!r}")
    value = _value(rule.value, payload)
    occurred_at = parse_time(search(rule.occurred_at, payload)) or event.occurred_at or datetime.now(UTC)
    consent = _consent(rule.consent or source.consent, payload)
    identity = _identity({**base.identity, **source.identity, **rule.identity}, payload, source.phone_region)
    if consent is Consent.DENIED:
        identity = Identity()  # consent forbids matching on personal data
    found = {
        key: search(path, payload)
        for key, path in {**base.properties, **source.properties, **rule.properties}.items()
    }
    properties = {key: found_value for key, found_value in found.items() if found_value is not None}
    return Conversion(
        conversion_id=conversion_id(event.provider, order_key, rule.name),
        name=rule.name,
        occurred_at=occurred_at,
        order_id=order_key,
        value=value,
        items=_items(rule.items, payload, value.currency if value else None),
        identity=identity,
        attribution=_attribution({**base.attribution, **source.attribution, **rule.attribution}, payload),
        consent=consent,
        properties=properties,
        source=SourceRef(
            provider=event.provider,
            event_id=event.event_id,
            event_type=event.event_type,
            object_type=event.object_type,
            object_id=event.object_id,
            livemode=event.livemode,
        ),
    )


def rules_for(event_type: str, source: Source, builtin: Iterable[Rule]) -> list[Rule]:
    own = [r for r in source.rules if r.event == event_type]
    replaced = set(source.replace_builtin_events)
    builtins = (
        [r for r in builtin if r.event == event_type and r.event not in replaced]
        if source.builtin_rules
        else []
    )
    return builtins + own


def handled_event_types(source: Source, builtin: Iterable[Rule]) -> set[str]:
    own = {r.event for r in source.rules}
    replaced = set(source.replace_builtin_events)
    return own | ({r.event for r in builtin if r.event not in replaced} if source.builtin_rules else set())


@dataclass(frozen=True)
class Mapped:
    conversion: Conversion
    destinations: list[str] | None  # the rule's own choice; None: the source's


def destinations_of(config: RelayConfig, source: Source, rule_destinations: list[str] | None) -> list[str]:
    """The rule's own list, else the source's, else every destination ([] means none)."""
    if rule_destinations is not None:
        return rule_destinations
    if source.destinations is not None:
        return source.destinations
    return list(config.enabled_destinations)


def map_event(
    event: ProviderEvent, source: Source, builtin: Iterable[Rule], defaults: DefaultPaths | None = None
) -> list[Mapped]:
    """Every rule for the event type that applies yields a conversion; same id → the first."""
    mapped: dict[uuid.UUID, Mapped] = {}
    for rule in rules_for(event.event_type, source, builtin):
        conversion = apply_rule(rule, source, event, defaults)
        if conversion is not None:
            mapped.setdefault(conversion.conversion_id, Mapped(conversion, rule.destinations))
    return list(mapped.values())
