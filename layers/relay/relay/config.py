"""The relay config: one YAML file, validated at cold start and by `relay check-config`.

It names the destinations (vendor kind, base URL, credentials by Secrets Manager
name, event-name map, event-id template) and, per source, the rules that turn a
provider event into conversions. A rule's fields are JMESPath expressions over the
provider payload, compiled once here. Each source has built-in rules
(`relay.sources.<provider>.BUILTIN`), so a config only says what differs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import jmespath
import jmespath.exceptions
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from relay.errors import ConfigError, validation_problems
from relay.vendors.registry import VENDORS
from relay.vendors.spec import Destination

# template.yaml's SecretsPrefix default. A vendor's credentials live under
# <prefix><kind>/ (conversion-relay/scanova/api-key): its deliver function may read nothing else.
DEFAULT_SECRETS_PREFIX = "conversion-relay/"


def secret_namespace(prefix: str, kind: str) -> str:
    """The Secrets Manager names a `kind` deliver function may read (template.yaml grants it these)."""
    return f"{prefix}{kind}/"


# One module each in relay.sources, one ingest function each in template.yaml.
SourceName = Literal["stripe", "hubspot", "pipedrive", "paddle", "shopify", "events"]


def _compile(expression: str) -> str:
    try:
        jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"invalid JMESPath expression {expression!r}: {exc}") from exc
    return expression


JMESPath = Annotated[str, AfterValidator(_compile)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- destinations ----------------------------------------------------------------------

# Each vendor module declares its destination's fields (relay.vendors.<kind>); a destination
# is validated by the model of its `kind`. An unknown kind is reported at `<name>.kind`.
VendorKind = Literal[tuple(VENDORS)]  # type: ignore[valid-type]
_UNKNOWN_KIND = "unknown kind"


class _UnknownKindDestination(Destination):
    """Any destination whose kind is not a vendor's: says so at `kind`, and checks the common keys."""

    model_config = ConfigDict(extra="ignore")

    kind: VendorKind  # type: ignore[valid-type]


def _kind_of(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, Mapping) else getattr(value, "kind", None)
    return kind if kind in VENDORS else _UNKNOWN_KIND


# One model per vendor kind, chosen by `kind` (a Union built from the registry).
AnyDestination = Annotated[
    Union[
        (
            *(Annotated[spec.destination, Tag(spec.kind)] for spec in VENDORS.values()),
            Annotated[_UnknownKindDestination, Tag(_UNKNOWN_KIND)],
        )
    ],
    Discriminator(_kind_of),
]


@functools.cache
def _destination_adapter() -> TypeAdapter[Destination]:
    # Built on first use (tests, tools): functions validate destinations through RelayConfig.
    return TypeAdapter(AnyDestination)


def parse_destination(data: Mapping[str, Any]) -> Destination:
    """One destination, validated by its vendor's model (tests, tools)."""
    return _destination_adapter().validate_python(data)


# --- source rules ------------------------------------------------------------------------


class ValueSpec(_Strict):
    """Where a conversion's value is (exactly one of amount_minor, amount_major)."""

    amount_minor: JMESPath | None = Field(default=None, description="integer minor units (or its string)")
    amount_major: JMESPath | None = Field(default=None, description="major-unit decimal (string or int)")
    currency: JMESPath = Field(description="ISO 4217 code (any case)")
    convention: Literal["provider", "iso4217"] = Field(
        default="provider",
        description="whose amount rules read the value and item prices: the provider's (docs/money.md) "
        "or plain ISO 4217",
    )

    @model_validator(mode="after")
    def _one_amount(self) -> ValueSpec:
        if (self.amount_minor is None) == (self.amount_major is None):
            raise ValueError("give exactly one of amount_minor, amount_major")
        return self


class ItemsSpec(_Strict):
    """Where the line items are; the other paths are relative to one line item."""

    path: JMESPath = Field(description="the list of line items")
    product_id: JMESPath = Field(description="product id (lines without one are left out)")
    quantity: JMESPath | None = Field(default=None, description="quantity (default 1)")
    unit_amount_minor: JMESPath | None = Field(default=None, description="unit price in minor units")
    unit_amount_major: JMESPath | None = Field(
        default=None, description="unit price in major units (needs the conversion's currency)"
    )
    unit_discount_minor: JMESPath | None = Field(
        default=None, description="discount on one unit in minor units, taken off the unit price"
    )
    name: JMESPath | None = Field(default=None, description="product name")
    category: JMESPath | None = Field(default=None, description="product category")
    variant_id: JMESPath | None = Field(default=None, description="Scalev variant unique id")
    bundle_price_option_id: JMESPath | None = Field(default=None, description="Scalev bundle price option")
    url: JMESPath | None = Field(default=None, description="product page (QuickLizard permalink)")


IdentityKey = Literal[
    "email",
    "phone",
    "first_name",
    "last_name",
    "full_name",
    "city",
    "state",
    "zip",
    "country",
    "external_id",
]
AttributionKey = Literal[
    "scan_session_id",
    "pagent",
    "pagent_session_id",
    "pagent_user_id",
    "pagent_visit_id",
    "pagent_conversion_id",
    "fbc",
    "fbp",
    "ttclid",
    "ttp",
    "snackvideo_click_id",
    "quicklizard_vid",
    "event_source_url",
    "referrer_url",
    "client_user_agent",
]


class Rule(_Strict):
    """Which provider event becomes which conversion, and where its data is."""

    event: str = Field(description="provider event type, e.g. checkout.session.completed")
    name: str = Field(min_length=1, description="conversion name: purchase, signup, lead, …")
    when: JMESPath | None = Field(default=None, description="only when this expression is truthy")
    order_key: JMESPath = Field(description="the order the conversion is about (the id derives from it)")
    occurred_at: JMESPath | None = Field(default=None, description="epoch seconds/ms or ISO 8601")
    value: ValueSpec | None = Field(default=None, description="where the value is; none: no value")
    items: ItemsSpec | None = Field(default=None, description="where the line items are")
    identity: dict[IdentityKey, JMESPath] = Field(
        default_factory=dict, description="identity key → path of the raw value (hashed at ingest)"
    )
    attribution: dict[AttributionKey, JMESPath] = Field(
        default_factory=dict, description="attribution key → path (click ids, sessions, page URLs)"
    )
    consent: JMESPath | None = Field(
        default=None, description="consent: true/false, granted/denied/pending, yes/no, opt_in/opt_out"
    )
    properties: dict[str, JMESPath] = Field(
        default_factory=dict, description="extra properties (email addresses and phone numbers are removed)"
    )
    destinations: list[str] | None = Field(default=None, description="default: the source's")


class Source(_Strict):
    """A webhook provider (the key under `sources`: stripe, hubspot, paddle, shopify, pipedrive, events)."""

    enabled: bool = Field(default=True, description="false: the endpoint answers 404")
    allow_test_mode: bool = Field(default=False, description="relay events with livemode false")
    builtin_rules: bool = Field(default=True, description="use the provider's built-in rules")
    destinations: list[str] | None = Field(default=None, description="default: every destination")
    rules: list[Rule] = Field(default_factory=list, description="added to (or replacing) the built-ins")
    replace_builtin_events: list[str] = Field(
        default_factory=list, description="event types whose built-in rules your rules replace"
    )
    identity: dict[IdentityKey, JMESPath] = Field(
        default_factory=dict, description="paths for every rule of this source (a rule's own win)"
    )
    attribution: dict[AttributionKey, JMESPath] = Field(
        default_factory=dict, description="paths for every rule of this source (a rule's own win)"
    )
    properties: dict[str, JMESPath] = Field(
        default_factory=dict, description="paths for every rule of this source (a rule's own win)"
    )
    consent: JMESPath | None = Field(default=None, description="consent path for every rule of this source")
    phone_region: str | None = Field(
        default=None, description="ISO 3166 region for phone numbers without a country code"
    )
    renewal_name: str = Field(default="renewal", description="stripe: conversion name of renewal invoices")
    signing_tolerance_seconds: int | None = Field(
        default=None, ge=0, description="timestamp tolerance of signatures (0 disables); default per provider"
    )
    max_body_bytes: int = Field(
        default=256 * 1024, gt=0, le=6 * 1024 * 1024, description="larger bodies are refused with 413"
    )
    settings: dict[str, Any] = Field(default_factory=dict, description="provider-specific settings")

    def signing_tolerance(self, provider_default: int) -> int:
        """Seconds a signature's timestamp may be off: the config's, else the provider's default."""
        configured = self.signing_tolerance_seconds
        return provider_default if configured is None else configured


class RelayConfig(_Strict):
    """The whole file."""

    version: Literal[1] = Field(default=1, description="config format version")
    destinations: dict[str, AnyDestination] = Field(
        default_factory=dict, description="destination name → destination"
    )
    sources: dict[SourceName, Source] = Field(
        default_factory=dict, description="provider → source settings (absent: built-in defaults)"
    )

    @model_validator(mode="wrap")
    @classmethod
    def _destinations_exist(cls, data: Any, handler: ModelWrapValidatorHandler[RelayConfig]) -> RelayConfig:
        # A wrap validator, so each unknown name is reported at its own dotted path
        # (sources.stripe.rules.0.destinations.1) rather than at the top level.
        config = handler(data)
        known = set(config.destinations)
        configured = ", ".join(sorted(known)) or "none"
        errors = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "unknown_destination", f"unknown destination {name!r} (configured: {configured})"
                ),
                loc=loc,
                input=name,
            )
            for loc, name in config._destination_references()
            if name not in known
        ]
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return config

    def _destination_references(self) -> list[tuple[tuple[str | int, ...], str]]:
        found: list[tuple[tuple[str | int, ...], str]] = []
        for source_name, source in self.sources.items():
            base = ("sources", source_name)
            found += [((*base, "destinations", i), n) for i, n in enumerate(source.destinations or [])]
            for r, rule in enumerate(source.rules):
                found += [
                    ((*base, "rules", r, "destinations", i), n) for i, n in enumerate(rule.destinations or [])
                ]
        return found

    def source(self, provider: str) -> Source:
        return self.sources.get(provider) or Source()

    def misplaced_secrets(self, prefix: str, kind: str | None = None) -> list[tuple[str, str]]:
        """(dotted path, why) of each secret of an enabled destination (of `kind`, or of any)
        named outside its vendor's namespace, which its deliver function cannot read."""
        return [
            (
                f"destinations.{name}.{field}",
                f"{secret!r} is not named {secret_namespace(prefix, d.kind)}…, "
                f"the only secrets the {d.kind} deliver function may read",
            )
            for name, d in self.destinations.items()
            if d.enabled and kind in (None, d.kind)
            for field, secret in d.secret_names().items()
            if not secret.startswith(secret_namespace(prefix, d.kind))
        ]

    @cached_property
    def enabled_destinations(self) -> dict[str, Destination]:
        return {name: d for name, d in self.destinations.items() if d.enabled}


def _without_vendor_tag(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """pydantic puts the union's tag after the destination name: drop it, an operator never wrote it."""
    if len(loc) >= 3 and loc[0] == "destinations" and loc[2] in (*VENDORS, _UNKNOWN_KIND):
        return (*loc[:2], *loc[3:])
    return loc


def parse_config(data: Mapping[str, Any] | None, origin: str = "config") -> RelayConfig:
    """Validate a loaded config; ConfigError lists each bad key by dotted path and why."""
    try:
        return RelayConfig.model_validate(data or {})
    except ValidationError as exc:
        problems = validation_problems(exc, loc=_without_vendor_tag)
        raise ConfigError(f"invalid relay config {origin}", problems) from exc


# libyaml's safe loader where PyYAML was built with it (its wheels are): parsing at cold start.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_config(path: str | os.PathLike[str]) -> RelayConfig:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read relay config {file}: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise ConfigError(f"relay config {file} is not valid YAML: {exc}") from exc
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"relay config {file} must be a mapping at the top level")
    return parse_config(data, str(file))
