"""relay.pii on hostile text: every pattern is linear and what it matches is capped (issue 14,
item 7); page URLs lose the parameters that carry an email or a phone number (item 10).

Timings are not asserted here: the length caps and the shape of the patterns are. The timed
worst cases live behind the `fuzz` marker (`pytest -m fuzz`), outside `make test`.

Tests read Given / When / Then in their comments or names.
"""

from __future__ import annotations

import re
import re._parser as sre_parse  # the parser behind re.compile (Python 3.11+)
import time
from datetime import UTC, datetime

import pytest
from relay import pii
from relay.models import Attribution, Conversion, DeliveryJob, Item, SourceRef, conversion_id

# Every compiled pattern of relay.pii runs on payload text.
PATTERNS = {name: value for name, value in vars(pii).items() if isinstance(value, re.Pattern)}
REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT}
LONGEST_REPEAT = 253  # an email's domain


def repeats(parsed, depth: int = 0):
    """(max count, nesting depth) of every repetition in a parsed pattern."""
    for op, argument in parsed:
        if op in REPEATS:
            _low, high, sub = argument
            yield high, depth
            yield from repeats(sub, depth + 1)
        elif op in (sre_parse.SUBPATTERN, sre_parse.ATOMIC_GROUP):
            yield from repeats(argument[-1], depth)
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            yield from repeats(argument[1], depth)
        elif op == sre_parse.BRANCH:
            for branch in argument[1]:
                yield from repeats(branch, depth)


def test_there_are_patterns_to_check():
    assert {"_EMBEDDED_EMAIL", "_EMBEDDED_PHONE", "_LOOKS_LIKE_PHONE", "_KEY_WORD"} <= set(PATTERNS)


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_every_repetition_is_bounded_and_none_is_nested(name: str):
    # Then a match attempt costs a bounded number of steps at each position: linear in the text
    found = list(repeats(sre_parse.parse(PATTERNS[name].pattern)))
    assert all(high != sre_parse.MAXREPEAT and high <= LONGEST_REPEAT for high, _ in found), name
    assert all(depth == 0 for _, depth in found), name


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("a" * 64 + "@example.com", True),
        ("a" * 65 + "@example.com", False),  # RFC 5321: 64 characters before the @
        ("a@" + "b" * 248 + ".com", True),  # 254 in all
        ("a@" + "b" * 249 + ".com", False),
        ("jane@example.com", True),
        ("jane@example", False),
        ("jane@@example.com", False),
        ("jane doe@example.com", False),
    ],
)
def test_an_email_is_capped_at_the_lengths_an_address_can_have(text: str, email: bool):
    assert (pii.normalize_email(text) is not None) is email
    assert pii.looks_like_pii(text) is email


def test_a_long_custom_data_email_is_no_email_at_all():
    # Given a signed body's email field of 200 KB (a Paddle custom_data.email, say)
    long_email = "a" * 200_000 + "@example.com"
    # Then it is not hashed as an email, and it is no phone either
    assert pii.hash_email(long_email) is None
    assert pii.hash_phone("+" + "1" * 200_000) is None
    assert not pii.looks_like_pii("+1 " + "2" * 38)  # 41 characters: longer than any number


def test_a_property_name_too_long_to_read_is_dropped():
    assert pii.scrub({"x" * 257: "value", "plan": "pro"}) == {"plan": "pro"}


def test_an_embedded_address_still_loses_its_last_64_characters_and_its_domain():
    text = "see " + "x" * 100 + "@example.com today"
    assert pii.scrub(text) == "see " + "x" * 36 + "[email removed] today"


# --- page URLs (item 10) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scrubbed"),
    [
        ("/?email=jane@example.com", "/"),
        (
            "https://shop.example.com/p?fbclid=IwAR2xyz&email=jane%40example.com&utm_source=fb",
            "https://shop.example.com/p?fbclid=IwAR2xyz&utm_source=fb",
        ),
        ("https://x.com/?gclid=Cj0&phone=5551234567&ttclid=E.C.P", "https://x.com/?gclid=Cj0&ttclid=E.C.P"),
        ("https://x.com/?ref=%2B15551234567&utm_medium=cpc", "https://x.com/?utm_medium=cpc"),
        ("https://x.com/?utm_content=jane%40example.com&utm_term=shoes", "https://x.com/?utm_term=shoes"),
        ("https://x.com/?em=abc&ph=def&click_id=k1", "https://x.com/?click_id=k1"),
        ("https://x.com/thanks#email=jane@example.com&step=2", "https://x.com/thanks#step=2"),
        ("https://x.com/thanks#jane@example.com", "https://x.com/thanks"),
        ("https://x.com/users/jane@example.com/orders", "https://x.com/users/redacted/orders"),
        ("https://user:secret@x.com/p?fbclid=a", "https://x.com/p?fbclid=a"),
        ("jane@example.com", "redacted"),
        ("http://[::1/p", None),
        ("https://x.com/" + "a" * pii.MAX_URL_CHARS, None),
    ],
)
def test_urls_lose_what_identifies_a_person_and_keep_click_ids(url: str, scrubbed: str | None):
    assert pii.scrub_url(url) == scrubbed


@pytest.mark.parametrize(
    "url",
    [
        "https://www.facebook.com/",
        "/products/pro-plan?fbclid=IwAR2xyz&ttclid=E.C.P.landing&utm_source=fb",
        "https://shop.example.com/p?a=1&&b=%20x+y;c#frag",
        "https://x.com/p?q=",
    ],
)
def test_a_clean_url_is_kept_exactly_as_sent(url: str):
    assert pii.scrub_url(url) is url


def test_every_url_of_a_conversion_is_scrubbed_where_the_conversion_is_built():
    # Given a conversion built with raw contact data in its page and product URLs
    conversion = Conversion(
        conversion_id=conversion_id("events", "ord_1", "purchase"),
        name="purchase",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        items=(Item(product_id="sku", url="https://x.com/p/sku?email=jane%40example.com&v=2"),),
        attribution=Attribution(
            event_source_url="https://x.com/checkout?fbclid=IwAR&phone=%2B15551234567",
            referrer_url="https://mail.example.com/?to=jane@example.com",
        ),
        source=SourceRef(provider="events", event_id="msg_1", event_type="purchase"),
    )
    # When it is queued (the SQS body, which the DLQ and the vendors get too)
    body = DeliveryJob(destination="scalev_meta", conversion=conversion).model_dump_json()
    # Then no URL carries the email or the phone, and the click id stays
    assert "jane" not in body and "5551234567" not in body
    assert conversion.attribution.event_source_url == "https://x.com/checkout?fbclid=IwAR"
    assert conversion.attribution.referrer_url == "https://mail.example.com/"
    assert conversion.items[0].url == "https://x.com/p/sku?v=2"


# --- the timed worst cases (pytest -m fuzz) ---------------------------------------------------------

BODY_LIMIT = 256 * 1024  # the largest body a source accepts by default
WORST_CASES = {
    "dots after an @": "x@" + "." * BODY_LIMIT + "@",
    "a@ then a. repeated": "a@" + "a." * (BODY_LIMIT // 2),
    "local parts of 64 before each @": ("a" * 64 + "@" + "b" * 253) * (BODY_LIMIT // 318),
    "no @ at all": "a" * BODY_LIMIT,
    "a plus and spaces": "+1" + " " * BODY_LIMIT,
    "pluses and digits": "+1 " * (BODY_LIMIT // 3),
    "upper-case key": "A" * BODY_LIMIT + "a",
    "a long query": "https://x.com/?" + "a=b&" * (BODY_LIMIT // 4),
}


@pytest.mark.fuzz
@pytest.mark.parametrize("name", sorted(WORST_CASES))
def test_the_worst_case_of_a_whole_body_takes_well_under_a_second(name: str):
    text = WORST_CASES[name]
    started = time.perf_counter()
    pii.hash_email(text)
    pii.hash_phone(text)
    pii.looks_like_pii(text)
    pii.is_pii_key(text)
    pii.scrub({"note": text, "items": [text]})
    pii.scrub_url(text)
    assert time.perf_counter() - started < 1.0, name
