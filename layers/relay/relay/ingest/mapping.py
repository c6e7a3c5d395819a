"""Apply a source's rules to a provider payload: 0..n canonical conversions.

Raw PII is read from the payload, normalized and hashed here (relay.pii), and never
leaves this module unhashed. Amounts are read with the provider's own conventions
(relay.money_rules). Whatever the payload holds at the paths the rules read (a wrong type,
an expression that does not fit, a bad amount) ends as a MappingError, so an authentic event
is parked with its reason, never answered 5xx.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

import jmespath
import jmespath.exceptions
from pydantic import ValidationError
from relay import money_rules, pii
from relay.config import ItemsSpec, RelayConfig, Rule, Source, ValueSpec
from relay.errors import ConversionTooLargeError, InvalidMoneyError, MappingError, validation_problems
from relay.ingest import json_body
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

if TYPE_CHECKING:
    from relay.vendors.spec import Destination


@lru_cache(maxsize=1024)
def _compiled(expression: str) -> jmespath.parser.ParsedResult:
    return jmespath.compile(expression)


# A delivery job is one SQS message and SendMessageBatch takes 10 of them in 1 MiB: a
# conversion larger than this (a body stuffed into the fields the rules read) is parked.
MAX_CONVERSION_BYTES = 64 * 1024
MAX_QUANTITY = 999_999_999  # Paddle's documented ceiling; beyond it a quantity is not one


def search(expression: str | None, data: Any) -> Any:
    if expression is None:
        return None
    try:
        return _compiled(expression).search(data)
    except jmespath.exceptions.JMESPathError as exc:  # e.g. starts_with() given a number
        raise MappingError(f"{expression[:80]!r} does not fit this payload: {type(exc).__name__}") from exc


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
    if text.isascii() and text.isdigit():
        return parse_time(int(text))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MappingError(f"time {text!r} is neither epoch nor ISO 8601") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _money_rules(provider: str, spec: ValueSpec | None) -> money_rules.Convention:
    """The provider's amount conventions, or plain ISO 4217 where the rule's value says so."""
    if spec is not None and spec.convention == "iso4217":
        return money_rules.ISO_4217
    return money_rules.convention(provider)


def _value(spec: ValueSpec | None, payload: Any, rules: money_rules.Convention) -> Money | None:
    if spec is None:
        return None
    currency = search(spec.currency, payload)
    units: money_rules.Units = "major" if spec.amount_major is not None else "minor"
    amount = search(spec.amount_major if units == "major" else spec.amount_minor, payload)
    if amount is None or currency is None:
        return None
    return rules.read(amount, currency, units)


def _unit_price(
    spec: ItemsSpec, line: Any, currency: str | None, rules: money_rules.Convention
) -> int | None:
    """A line's unit price in ISO minor units, or None when it has none or none that is exact.

    A line's unit price is detail (metered prices have fractional minor units); the
    conversion's value stays exact, so such an item goes without one. A unit discount
    (`unit_discount_minor`) is taken off: the sale price, as the conversion's value counts it.
    """
    if currency is None:
        return None  # a price needs the conversion's currency (Stripe's units depend on it)
    try:
        if (raw := search(spec.unit_amount_minor, line)) is not None:
            price = rules.read(raw, currency, "minor").amount_minor
        elif (raw := search(spec.unit_amount_major, line)) is not None:
            price = rules.read(raw, currency, "major").amount_minor
        else:
            return None
        if (raw := search(spec.unit_discount_minor, line)) is not None:
            price -= rules.read(raw, currency, "minor").amount_minor
    except InvalidMoneyError:
        return None
    return price if price >= 0 else None


def _quantity(value: Any) -> int | None:
    """A whole quantity from 0 to MAX_QUANTITY (default 1), or None for anything else."""
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        return None
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        return None
    if not (number.is_finite() and 0 <= number <= MAX_QUANTITY) or number != number.to_integral_value():
        return None
    return int(number)


def _items(
    spec: ItemsSpec | None, payload: Any, currency: str | None, rules: money_rules.Convention
) -> tuple[Item, ...]:
    if spec is None:
        return ()
    lines = search(spec.path, payload) or []
    items = []
    for line in lines if isinstance(lines, list) else []:
        product_id = _text(search(spec.product_id, line))
        quantity = _quantity(search(spec.quantity, line))
        if product_id is None or quantity is None:
            continue  # a line is detail: one that is not a product line stays out, the rest goes
        unit = _unit_price(spec, line, currency, rules)
        items.append(
            Item(
                product_id=product_id,
                quantity=quantity,
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
            whole = json_body.loads(whole)
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
    rules = _money_rules(event.provider, rule.value)
    value = _value(rule.value, payload, rules)
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
    try:
        conversion = _conversion(
            conversion_id=conversion_id(event.provider, order_key, rule.name),
            name=rule.name,
            occurred_at=occurred_at,
            order_id=order_key,
            value=value,
            items=_items(rule.items, payload, value.currency if value else None, rules),
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
    except ValidationError as exc:  # a value of the payload the canonical model refuses
        ((where, why),) = validation_problems(exc, limit=1)
        raise MappingError(f"the conversion is not valid: {where}: {why}") from exc
    return conversion


def _conversion(**fields: Any) -> Conversion:
    conversion = Conversion(**fields)
    size = len(conversion.model_dump_json())
    if size > MAX_CONVERSION_BYTES:
        raise ConversionTooLargeError(f"the conversion is {size} bytes of JSON, over {MAX_CONVERSION_BYTES}")
    return conversion


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


def ignore_reason(event: ProviderEvent, source: Source, handled: Collection[str]) -> str | None:
    """Why an authentic event is answered "ignored" before any claim or mapping, if it is."""
    if not event.livemode and not source.allow_test_mode:
        return "test_mode_not_allowed"
    if event.event_type not in handled:
        return "unsupported_event_type"
    return None


class Route(NamedTuple):
    """Where one mapped conversion goes: an enabled destination, and why it is skipped (or None)."""

    name: str
    destination: Destination
    skip_reason: str | None


def routes(
    config: RelayConfig, source: Source, item: Mapped, only: Collection[str] | None = None
) -> list[Route]:
    """The conversion's enabled destinations (a destination-scoped backfill, `only`, keeps its
    own), each with the vendor's skip reason for this conversion."""
    enabled = config.enabled_destinations
    chosen = destinations_of(config, source, item.destinations)
    return [
        Route(name, enabled[name], enabled[name].skip_reason(item.conversion))
        for name in chosen
        if name in enabled and (only is None or name in only)  # not enabled: disabled in the config
    ]


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
