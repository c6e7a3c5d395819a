"""relay.models: the canonical Conversion and the DeliveryJob (the SQS contract)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError
from relay import pii
from relay.models import (
    CONVERSION_NAMESPACE,
    Attribution,
    Conversion,
    DeliveryJob,
    Identity,
    Item,
    Money,
    SourceRef,
    conversion_id,
)

RAW_EMAIL = "jenny.rosen@example.com"
SOURCE = SourceRef(provider="stripe", event_id="evt_1", event_type="checkout.session.completed")


def make_conversion(**overrides) -> Conversion:
    fields = {
        "conversion_id": conversion_id("stripe", "pi_1", "purchase"),
        "name": "purchase",
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
        "order_id": "pi_1",
        "value": Money(amount_minor=4999, currency="usd"),
        "identity": Identity(email=pii.hash_email(RAW_EMAIL)),
        "attribution": Attribution(scan_session_id="7ad26d4f-3181-4ef8-b6ca-b8f59499dd43"),
        "source": SOURCE,
        **overrides,
    }
    return Conversion(**fields)


# --- conversion ids -------------------------------------------------------------------------------


def test_conversion_id_is_a_deterministic_uuid5():
    # Given the same provider, order and conversion name, Then every webhook yields the same id.
    first = conversion_id("stripe", "pi_3MtwBwLkdIwHu7ix28a3tqPa", "purchase")
    assert first == conversion_id("stripe", "pi_3MtwBwLkdIwHu7ix28a3tqPa", "purchase")
    assert first.version == 5
    assert first == uuid.uuid5(CONVERSION_NAMESPACE, "stripe:pi_3MtwBwLkdIwHu7ix28a3tqPa:purchase")


def test_conversion_ids_are_pinned():
    # Changing the namespace or the key format would re-key every conversion (and so re-deliver
    # everything the ledger already holds): this value must never change.
    assert str(conversion_id("stripe", "pi_3MtwBwLkdIwHu7ix28a3tqPa", "purchase")) == (
        "2d6c2964-c279-544c-8a90-c31f7b052edf"
    )


@pytest.mark.parametrize(
    "other",
    [("paddle", "pi_1", "purchase"), ("stripe", "pi_2", "purchase"), ("stripe", "pi_1", "renewal")],
)
def test_any_part_of_the_key_changes_the_id(other):
    assert conversion_id(*other) != conversion_id("stripe", "pi_1", "purchase")


# --- identity: hashed values only ------------------------------------------------------------------


@pytest.mark.parametrize("field", ["email", "phone", "first_name", "last_name", "city", "zip", "external_id"])
@pytest.mark.parametrize("raw", [RAW_EMAIL, "+16169547888", "Jenny", "abc123"])
def test_identity_refuses_raw_pii(field, raw):
    with pytest.raises(ValidationError) as error:
        Identity(**{field: raw})
    # The refusal's text never repeats the raw value (a traceback may end up in a log line).
    assert raw not in str(error.value)
    assert raw not in repr(error.value)


def test_identity_accepts_digests_and_stores_them_lower_case():
    digest = pii.hash_email(RAW_EMAIL)
    identity = Identity(email=f" {digest.upper()} ", phone=None)
    assert identity.email == digest
    assert identity.phone is None
    assert not identity.is_empty()
    assert Identity().is_empty()


# --- the conversion ------------------------------------------------------------------------------


def test_properties_are_scrubbed_of_contact_data():
    conversion = make_conversion(
        properties={"plan": "pro", "customer_email": RAW_EMAIL, "note": f"for {RAW_EMAIL}", "ph": "+1 616"}
    )
    assert conversion.properties == {"plan": "pro", "note": "for [email removed]"}


def test_occurred_at_must_be_aware_and_is_stored_in_utc():
    with pytest.raises(ValidationError, match="time zone"):
        make_conversion(occurred_at=datetime(2026, 1, 1))
    paris = timezone(timedelta(hours=1))
    conversion = make_conversion(occurred_at=datetime(2026, 1, 1, 1, 0, tzinfo=paris))
    assert conversion.occurred_at == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert conversion.occurred_at.utcoffset() == timedelta(0)


def test_money_is_integer_minor_units_with_an_iso_currency():
    value = Money(amount_minor=1999, currency="usd")
    assert value.currency == "USD"
    assert value.major() == Decimal("19.99")
    with pytest.raises(ValidationError):
        Money(amount_minor=1999, currency="XYZ")
    with pytest.raises(ValidationError):
        Money(amount_minor=19.99, currency="USD")  # a float with a fraction is not minor units


def test_models_are_frozen_and_strict():
    conversion = make_conversion()
    with pytest.raises(ValidationError):
        conversion.name = "lead"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        make_conversion(email=RAW_EMAIL)
    with pytest.raises(ValidationError):
        make_conversion(name="")
    with pytest.raises(ValidationError):
        Item(product_id="p", quantity=-1)


# --- the delivery job ------------------------------------------------------------------------------


def test_job_round_trips_through_its_sqs_body():
    # Given a job with every kind of field, When serialized as the SQS body and read back, Then equal.
    job = DeliveryJob(
        destination="scanova",
        conversion=make_conversion(
            items=(Item(product_id="prod_1", quantity=2, unit_amount_minor=1000, name="Tee"),),
            properties={"plan": "pro"},
        ),
    )
    body = job.model_dump_json()
    assert DeliveryJob.model_validate_json(body) == job
    assert json.loads(body)["schema_version"] == 1
    assert RAW_EMAIL not in body


def test_job_message_attributes_let_replay_filter_without_parsing_bodies():
    job = DeliveryJob(destination="scalev_meta", conversion=make_conversion())
    attributes = job.message_attributes()
    assert attributes == {
        "destination": {"DataType": "String", "StringValue": "scalev_meta"},
        "conversion_name": {"DataType": "String", "StringValue": "purchase"},
        "conversion_id": {"DataType": "String", "StringValue": str(job.conversion.conversion_id)},
        "event_time": {"DataType": "String", "StringValue": "2026-01-01T00:00:00+00:00"},
    }
    assert job.delivery_key == f"scalev_meta#{job.conversion.conversion_id}"


def test_unknown_schema_versions_are_refused():
    body = json.loads(DeliveryJob(destination="scanova", conversion=make_conversion()).model_dump_json())
    body["schema_version"] = 2
    with pytest.raises(ValidationError):
        DeliveryJob.model_validate(body)


def test_property_numbers_reach_vendors_as_json_numbers():
    # Given properties read from a provider's JSON, where ingest keeps fractions exact (Decimal)
    properties = {
        "tax": Decimal("1.50"),
        "count": Decimal("2"),
        "nested": {"rate": Decimal("0.075")},
        "list": [Decimal("3.25")],
        "huge": Decimal("1E+999999"),
    }

    # When a conversion carrying them is written as a delivery job's JSON
    job = json.loads(make_conversion(properties=properties).model_dump_json())

    # Then they are numbers, as the source sent them; a value no JSON number carries stays text
    assert job["properties"] == {
        "tax": 1.5,
        "count": 2,
        "nested": {"rate": 0.075},
        "list": [3.25],
        "huge": "1E+999999",
    }
