"""What a vendor is, in one place: its destination config and its spec.

Each vendor module (`relay.vendors.<kind>`) declares
- a `Destination` subclass: the vendor's config fields (validated by the relay config), its
  default event names, what a conversion must carry to be sent (`missing` → the skip reason)
  and whether the vendor dedupes on the relay's event id (the in-doubt default);
- a `VendorSpec`: the kind, the template's logical-id prefix, the destination class, the client
  that builds and posts a batch, and the local sandbox that stands in for the vendor.

The rest of the relay asks these (via relay.vendors.registry) and never branches on a kind.
This module stays light (no HTTP library): ingest functions import it at cold start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator
from relay.errors import MissingRequirementError
from relay.models import Consent, Conversion

if TYPE_CHECKING:
    from relay.vendors.client import VendorClient

InDoubtPolicy = Literal["resend", "park"]


@dataclass(frozen=True)
class ProviderRead:
    """A provider API a destination reads while it delivers (QuickLizard: Stripe's line items)."""

    provider: str  # "stripe"
    base_url: str
    secret_name: str  # the Secrets Manager name of the key it reads with


class Destination(BaseModel):
    """A vendor endpoint that receives conversions (the key under `destinations` is its name)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(description="vendor: scanova, pagent, scalev or quicklizard")
    base_url: HttpUrl = Field(description="the vendor API's base URL (a sandbox URL locally)")
    api_key_secret: str = Field(
        description="Secrets Manager name of the vendor credential (API key, storefront key, client key), "
        "in its vendor's namespace (SecretsPrefix + kind + /: conversion-relay/scanova/api-key)"
    )
    event_names: dict[str, str | None] = Field(
        default_factory=dict,
        description="conversion name → vendor event name; null skips that conversion for this destination",
    )
    event_id_template: str = Field(
        default="{conversion_id}",
        description="vendor event id, for pixel dedup: {conversion_id} {order_id} {event_name} {name}",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=60, description="HTTP timeout of one vendor call")
    concurrency: int | None = Field(
        default=None,
        ge=1,
        le=32,
        description="vendor requests in flight at once in one invocation; default by vendor (Scalev 8, "
        "others 4); a 429 stops the rest of the batch for this destination",
    )
    max_in_doubt: int = Field(
        default=25,
        ge=1,
        le=100,
        description="where an unanswered request is parked as in_doubt (vendors that do not dedupe): "
        "at most this many conversions per request",
    )
    in_doubt: InDoubtPolicy | None = Field(
        default=None,
        description="after a crash between the vendor's answer and the ledger write: resend (vendor "
        "dedupes on the event id) or park in the DLQ as in_doubt; default by vendor",
    )
    requires_consent: bool = Field(
        default=False, description="skip conversions whose consent is denied or pending"
    )
    enabled: bool = Field(default=True, description="false: no jobs are queued for this destination")

    # ---- what each vendor declares (overridden by its subclass)

    # Fields optional in the schema but required by this vendor ("a scanova destination needs site_id").
    required_fields: ClassVar[tuple[str, ...]] = ()
    # Fields that name Secrets Manager secrets the deliver function reads.
    secret_fields: ClassVar[tuple[str, ...]] = ("api_key_secret",)
    # True where the vendor knows only the event names it documents: unmapped names are skipped.
    closed_vocabulary: ClassVar[bool] = False
    # Vendor requests in flight at once when the config does not say (`concurrency`).
    default_concurrency: ClassVar[int] = 4

    def default_event_names(self) -> Mapping[str, str | None]:
        """Conversion name → the vendor's event name, unless `event_names` says otherwise."""
        return {}

    def dedupes(self) -> bool:
        """True when the vendor drops a second event with the same event id (resend is safe)."""
        return False

    def missing(self, conversion: Conversion) -> str | None:
        """Why this vendor cannot take the conversion (a metric dimension), or None."""
        return None

    def provider_apis(self) -> list[ProviderRead]:
        """The provider APIs this destination reads (the local stack stubs them on loopback)."""
        return []

    # ---- derived, the same for every vendor

    @field_validator("event_id_template")
    @classmethod
    def _template_fields(cls, value: str) -> str:
        try:
            value.format(conversion_id="x", order_id="x", event_name="x", name="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"unknown field {exc} (use {{conversion_id}} {{order_id}} {{event_name}} {{name}})"
            ) from exc
        return value

    @model_validator(mode="after")
    def _vendor_fields(self) -> Destination:
        absent = [name for name in self.required_fields if getattr(self, name) is None]
        if absent:
            raise ValueError(f"a {self.kind} destination needs {', '.join(absent)}")
        return self

    @property
    def in_doubt_policy(self) -> InDoubtPolicy:
        """Resend only where the vendor dedupes on our event id, unless the config says otherwise."""
        if self.in_doubt:
            return self.in_doubt
        return "resend" if self.dedupes() else "park"

    @property
    def request_concurrency(self) -> int:
        """Vendor requests this destination may have in flight at once in one invocation."""
        return self.concurrency or self.default_concurrency

    @property
    def claims_deliveries(self) -> bool:
        """Whether each delivery is claimed in the ledger before the vendor call (one write
        before, one after). A vendor that dedupes on our event id, resent after a crash, counts
        a second send once: its deliveries are only looked up (already delivered?) before and
        recorded after, one write instead of two."""
        return not (self.dedupes() and self.in_doubt_policy == "resend")

    def secret_names(self) -> dict[str, str]:
        """Config field → secret name, for every secret this destination reads."""
        return {field: name for field in self.secret_fields if (name := getattr(self, field))}

    def event_name(self, conversion_name: str) -> str | None:
        """The vendor's event name for a conversion, or None when this destination skips it."""
        if conversion_name in self.event_names:
            return self.event_names[conversion_name]
        defaults = self.default_event_names()
        if conversion_name in defaults:
            return defaults[conversion_name]
        return None if self.closed_vocabulary else conversion_name

    def event_id(self, conversion: Conversion) -> str:
        """The vendor event id, from the destination's template (for browser-pixel dedup)."""
        return self.event_id_template.format(
            conversion_id=conversion.conversion_id,
            order_id=conversion.order_id or conversion.conversion_id,
            event_name=self.event_name(conversion.name) or conversion.name,
            name=conversion.name,
        )

    def skip_reason(self, conversion: Conversion) -> str | None:
        """Why this destination cannot take this conversion (a metric dimension), or None.

        Asked at ingest (no job is queued, the skip is counted) and again when the job is
        delivered (the config may have changed since).
        """
        if self.event_name(conversion.name) is None:
            return "event_not_mapped"
        if self.requires_consent and conversion.consent in (Consent.DENIED, Consent.PENDING):
            return "consent_not_granted"
        return self.missing(conversion)

    def require(self, conversion: Conversion) -> None:
        """Raise MissingRequirementError unless this destination can take the conversion."""
        if reason := self.skip_reason(conversion):
            raise MissingRequirementError(reason)


@dataclass(frozen=True)
class VendorSpec:
    """A vendor kind: everything the rest of the relay may ask about it."""

    kind: str  # the config's `kind`, the deliver function's folder (functions/deliver_<kind>)
    title: (
        str  # the template's logical-id prefix: <title>Queue, <title>DeadLetterQueue, <title>DeliverFunction
    )
    destination: type[Destination]
    client: type[VendorClient]  # builds the vendor events of a job and posts a batch
    sandbox: str  # "module:Class" of the local stand-in (outside the layer, for the local stack)

    @property
    def env_prefix(self) -> str:
        """Environment variables of this vendor's queues: <PREFIX>_QUEUE_URL, <PREFIX>_DLQ_URL."""
        return self.kind.upper()

    @property
    def queue_url_variable(self) -> str:
        return f"{self.env_prefix}_QUEUE_URL"

    @property
    def dlq_url_variable(self) -> str:
        return f"{self.env_prefix}_DLQ_URL"
