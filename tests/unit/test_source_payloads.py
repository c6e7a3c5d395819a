"""relay.sources.payloads: exact JSON numbers, 400 reasons without values, settings errors by key,
the `relay` namespace, and content keys.

Tests read Given / When / Then in their comments or names.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import BaseModel, ConfigDict
from relay.config import Source
from relay.errors import ConfigError, PayloadError
from relay.sources.payloads import content_key, load_json, source_settings, validated, with_relay


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: int


def test_json_floats_are_exact_decimals():
    document = load_json(b'{"value": 19.99, "tiny": 0.1, "count": 3}')
    assert document == {"value": Decimal("19.99"), "tiny": Decimal("0.1"), "count": 3}
    assert isinstance(document["count"], int)


@pytest.mark.parametrize("body", [b"{", b'{"a": NaN}', b'{"a": Infinity}', b"\xff\xfe{}"])
def test_what_is_not_json_is_a_payload_error(body: bytes):
    with pytest.raises(PayloadError, match="not valid JSON"):
        load_json(body)


def test_a_validation_reason_names_the_field_but_not_the_value():
    # Given a raw email where a number belongs
    with pytest.raises(PayloadError) as caught:
        validated(Shape, {"email": "jenny@example.com"}, "a test body")
    assert str(caught.value).startswith("not a test body: email: ")
    assert "jenny" not in str(caught.value)


def test_a_body_of_the_wrong_type_is_named_in_json_terms():
    with pytest.raises(PayloadError, match="body: must be a JSON object"):
        validated(Shape, [1], "a test body")


def test_settings_errors_name_the_config_key():
    with pytest.raises(ConfigError) as caught:
        source_settings(Shape, Source(settings={"email": "x", "typo": 1}), "demo")
    assert [path for path, _ in caught.value.problems] == [
        "sources.demo.settings.email",
        "sources.demo.settings.typo",
    ]


def test_with_relay_merges_under_one_key_and_leaves_the_original_alone():
    payload = {"id": 1, "relay": {"a": 1}}
    merged = with_relay(payload, b=2)
    assert merged == {"id": 1, "relay": {"a": 1, "b": 2}}
    assert payload == {"id": 1, "relay": {"a": 1}}


@pytest.mark.parametrize("odd", [5, "text", [1], None])
def test_with_relay_replaces_a_relay_key_that_is_not_an_object(odd):
    # Given a body whose own `relay` key holds anything but an object, Then derived data still fits
    assert with_relay({"relay": odd}, b=2) == {"relay": {"b": 2}}


def test_content_keys_ignore_key_order_and_number_spelling():
    assert content_key({"a": 1, "b": Decimal("1.50")}) == content_key({"b": Decimal("1.50"), "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})
    assert len(content_key({}, 16)) == 16
