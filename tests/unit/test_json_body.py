"""relay.ingest.json_body: untrusted JSON with bounded depth, exact numbers, no NaN, duplicate keys
or lone surrogates; the depth scan agrees with the parsed document's real depth."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relay.ingest.json_body import MAX_DEPTH, loads, too_deep


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


# Strings full of brackets, quotes and backslashes: the scan must not count what is text.
tricky_text = st.text(alphabet='[]{}"\\,:ab', max_size=12)
documents = st.recursive(
    st.one_of(st.none(), st.integers(), tricky_text),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=300)
@given(document=documents, limit=st.integers(0, 12))
def test_the_depth_scan_agrees_with_the_document(document: Any, limit: int):
    assert too_deep(json.dumps(document).encode(), limit) == (depth(document) > limit)


@pytest.mark.parametrize("levels", [MAX_DEPTH, MAX_DEPTH + 1])
def test_large_bodies_take_the_running_sum_path_and_still_agree(levels: int):
    # Given a body over 64 KB whose brackets stay after two passes (many deep siblings)
    one = b"[0," * levels + b"0" + b"]" * levels
    body = b"[" + b",".join([one] * 400) + b"]"
    assert len(body) > 64 * 1024
    # Then the scan finds the same depth as the parsed document (the outer list adds one)
    assert too_deep(body) == (levels + 1 > MAX_DEPTH)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested deeper than 64"),
        (b'{"a":' * 100_000, "nested deeper than 64"),  # not even valid: refused before parsing
        (b'{"amount": NaN}', "NaN is not a JSON number"),
        (b'{"amount": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"id": 1, "id": 2}', "duplicate key"),
        (b'{"name": "\\ud800"}', "lone surrogate"),
        (b'{"name": "\\udc00\\ud83d"}', "lone surrogate"),
        (b'{"name": "\xff"}', "invalid start byte"),
        (b"", "Expecting value"),
    ],
)
def test_what_is_not_usable_json_is_a_value_error_with_a_reason(body: bytes, reason: str):
    with pytest.raises(ValueError, match=reason):
        loads(body)


def test_numbers_are_exact_and_strings_may_hold_anything_escaped():
    document = loads(b'{"total": 19.99, "n": 10, "text": "[[[ \\" ]]] \\\\", "emoji": "\\ud83d\\ude00"}')
    assert document == {"total": Decimal("19.99"), "n": 10, "text": '[[[ " ]]] \\', "emoji": "\U0001f600"}
    assert loads(b'"\\\\ud800"') == "\\ud800"  # an escaped backslash, not a surrogate
    assert loads("[1]") == [1]


def test_brackets_inside_strings_do_not_count():
    assert not too_deep(json.dumps(["[" * 10_000, "{" * 10_000]).encode())
