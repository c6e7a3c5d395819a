"""The canonical conversion and the delivery job: the contract between every part.

Sources map provider payloads to `Conversion`s; the ingest function wraps each in a
`DeliveryJob` per destination and queues it; deliver functions and replay read jobs
back. Nothing in here holds raw PII: `Identity` only accepts SHA-256 hex digests.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)
from relay import money, pii

# Fixed namespace for conversion ids: changing it would re-key every conversion.
CONVERSION_NAMESPACE = uuid.UUID("5b1c3f3e-7a0b-4f9e-9d55-2f6a0c8e4d21")
JOB_SCHEMA_VERSION = 1
# The SQS message attributes of a delivery job (replay filters on them without parsing bodies).
JOB_ATTRIBUTES = ("destination", "conversion_name", "conversion_id", "event_time")


def conversion_id(provider: str, order_key: str, name: str) -> uuid.UUID:
    """Deterministic id: every webhook about the same order and conversion gets the same one."""
    return uuid.uuid5(CONVERSION_NAMESPACE, f"{provider}:{order_key}:{name}")


def _sha256_hex(value: str | None) -> str | None:
    if value is None:
        return None
    if not pii.is_hashed(value):
        raise ValueError("must be a SHA-256 hex digest (raw PII never enters a conversion)")
    # is_hashed() accepts surrounding whitespace: store the bare digest vendors expect.
    return value.strip().lower()


HashedValue = Annotated[str | None, AfterValidator(_sha256_hex)]
# A page URL as it may travel: query and fragment parameters holding an email or a phone
# number are removed here, where every conversion is built, so no source or path skips it.
ScrubbedUrl = Annotated[str | None, AfterValidator(pii.scrub_url)]


class _Model(BaseModel):
    # hide_input_in_errors: a validation error's text (logged with its traceback) must not
    # carry the rejected value, which may be a raw email or phone number.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Money(_Model):
    amount_minor: int = Field(description="Integer minor units (cents for USD, yen for JPY)")
    currency: str = Field(description="ISO 4217 code, upper case")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return money.currency_code(value)

    def major(self):
        return money.to_major(self.amount_minor, self.currency)


class Item(_Model):
    product_id: str
    quantity: int = Field(default=1, ge=0)
    unit_amount_minor: int | None = None
    name: str | None = None
    category: str | None = None
    variant_id: str | None = Field(default=None, description="Scalev variant unique id")
    bundle_price_option_id: str | None = Field(default=None, description="Scalev bundle price option")
    url: ScrubbedUrl = Field(default=None, description="Product page (QuickLizard permalink)")


class Identity(_Model):
    """Hashed identifiers only (SHA-256 hex of the Meta-normalized value)."""

    email: HashedValue = None
    phone: HashedValue = None
    first_name: HashedValue = None
    last_name: HashedValue = None
    city: HashedValue = None
    state: HashedValue = None
    zip: HashedValue = None
    country: HashedValue = None
    external_id: HashedValue = None

    def is_empty(self) -> bool:
        return not any(self.model_dump().values())


class PagentSession(_Model):
    """The output of `window._pgnt.variables(label)`, passed through the provider metadata."""

    session_id: str | None = None
    user_id: str | None = None
    visit_id: str | None = None
    conversion_id: str | None = Field(default=None, description="The pagent goal UUID")


class Attribution(_Model):
    scan_session_id: str | None = Field(default=None, description="Scanova scan session (UUID)")
    pagent: PagentSession = PagentSession()
    fbc: str | None = None
    fbp: str | None = None
    ttclid: str | None = None
    ttp: str | None = None
    snackvideo_click_id: str | None = None
    quicklizard_vid: str | None = None
    event_source_url: ScrubbedUrl = None
    referrer_url: ScrubbedUrl = None
    client_user_agent: str | None = None


class Consent(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    PENDING = "pending"


class SourceRef(_Model):
    provider: str
    event_id: str
    event_type: str
    object_type: str | None = None
    object_id: str | None = None
    livemode: bool = True


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone")
    return value.astimezone(UTC)


class Conversion(_Model):
    conversion_id: uuid.UUID
    name: str = Field(min_length=1, max_length=100, description="purchase, signup, lead, …")
    occurred_at: Annotated[datetime, AfterValidator(_utc)]
    order_id: str | None = Field(default=None, description="The order key the id derives from")
    value: Money | None = None
    items: tuple[Item, ...] = ()
    identity: Identity = Identity()
    attribution: Attribution = Attribution()
    consent: Consent | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    source: SourceRef

    @field_validator("properties")
    @classmethod
    def _no_pii_in_properties(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _json_numbers(pii.scrub(value))  # type: ignore[return-value]


MAX_PROPERTY_NUMBER_DIGITS = 15  # a double holds 15 significant digits exactly


def _json_numbers(value: object) -> object:
    """Numbers as JSON numbers: ingest reads fractions exactly (Decimal), which a job would carry
    as strings; a property sent as 1.50 reaches the vendor as the number 1.5, not "1.50"."""
    if isinstance(value, Decimal):
        if not value.is_finite() or abs(value.adjusted()) > MAX_PROPERTY_NUMBER_DIGITS:
            return str(value)  # beyond what a JSON number carries faithfully: text, as before
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _json_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_numbers(item) for item in value]
    return value


class DeliveryJob(_Model):
    """One SQS message: a conversion for one destination."""

    schema_version: Literal[1] = JOB_SCHEMA_VERSION
    destination: str
    conversion: Conversion

    @property
    def delivery_key(self) -> str:
        """One (destination, conversion): what the delivery ledger lets through once."""
        return f"{self.destination}#{self.conversion.conversion_id}"

    def message_attributes(self) -> dict[str, dict[str, str]]:
        """SQS attributes so that replay can filter without parsing bodies."""
        return {
            "destination": {"DataType": "String", "StringValue": self.destination},
            "conversion_name": {"DataType": "String", "StringValue": self.conversion.name},
            "conversion_id": {"DataType": "String", "StringValue": str(self.conversion.conversion_id)},
            "event_time": {"DataType": "String", "StringValue": self.conversion.occurred_at.isoformat()},
        }
