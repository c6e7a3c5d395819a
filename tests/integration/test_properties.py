"""Properties of every ingest handler, by Hypothesis, through the real handlers (edge_harness).

- Arbitrary bodies and headers, signed or not, never get a 5xx (nor an exception: the handler
  answers every exception 5xx).
- A valid event with any path replaced by any JSON value never gets a 5xx either.
- A signed purchase of any amount in any currency the provider takes reaches every job and every
  vendor payload as exactly that amount.
- Hashing is idempotent: a hashed value is never hashed again, in relay.pii and through a handler.

`make test` runs the quick profile; `make fuzz` the long one (HYPOTHESIS_PROFILE=fuzz), and prints
how many inputs each source was sent and how many got a 5xx.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from edge_harness import (
    PROVIDERS,
    Relays,
    assert_reaches_every_vendor,
    purchase,
    relays_fixture,  # noqa: F401 (the `relays` fixture)
    sign,
    valid_document,
)
from hypothesis import given
from hypothesis import strategies as st
from relay import money, pii
from relay.money_rules import (
    PADDLE,
    STRIPE,
    STRIPE_THREE_DECIMAL,
    STRIPE_TWO_DECIMAL_WHOLE,
    STRIPE_ZERO_DECIMAL,
)
from test_hostile_input import leaves, replaced, unsigned

import testkit

pytestmark = pytest.mark.integration

# --------------------------------------------------------------------------- strategies

# Numbers as text, a NUL, full-width digits (str.isdigit() says yes), a superscript two, a digraph
HOSTILE_TEXT = ["NaN", "Infinity", "1e400", "-0", "\x00", "\uff11\uff12\uff13", "\u00b2", "\u01c5" * 40]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(HOSTILE_TEXT),
)
# Keys the sources and rules read, besides any text
keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["relay", "data", "object", "id", "type", "event_id", "amount", "currency", "items"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=24,
)
bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.sampled_from([b"[" * 3000, b'{"a":' * 2000, b'"\\ud800"', b'{"a":1,"a":2}', b"\xef\xbb\xbf{}"]),
)
HEADER_NAMES = [
    "stripe-signature",
    "paddle-signature",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "x-shopify-topic",
    "x-shopify-webhook-id",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "authorization",
    "content-type",
]
headers = st.dictionaries(
    st.one_of(st.sampled_from(HEADER_NAMES), st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)),
    st.text(max_size=120),
    max_size=6,
)


def currencies(provider: str) -> list[str]:
    """The currencies a provider takes, its special ones first (docs/money.md)."""
    common = ["USD", "EUR", "GBP", "IDR", "INR", "BRL"]
    if provider == "stripe":
        special = STRIPE_ZERO_DECIMAL | STRIPE_TWO_DECIMAL_WHOLE | STRIPE_THREE_DECIMAL | {"HUF", "TWD"}
        return sorted(special) + common
    if provider == "paddle":
        assert PADDLE.currencies is not None
        return sorted(PADDLE.currencies)
    return ["JPY", "KWD", "BHD", "ISK", "CLP", "VND", "MGA", "UGX", "CLF", *common]


@st.composite
def amounts(draw: st.DrawFn, provider: str) -> tuple[Decimal, str]:
    """(major amount, currency): any amount the provider can write, up to 12 digits."""
    currency = draw(st.sampled_from(currencies(provider)))
    iso = money.exponent(currency)
    if provider == "stripe":
        # Stripe writes whole API units: ISK and UGX in hundredths of whole krónur/shillings,
        # MGA in whole ariary (its API has no decimals although ISO 4217 gives it two)
        api = STRIPE.api_digits(currency)
        step = 10 ** max(0, api - iso)
        major = Decimal(draw(st.integers(0, 10**12 // step)) * step).scaleb(-api)
    else:
        major = Decimal(draw(st.integers(0, 10**12))).scaleb(-iso)
    return major, currency


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("provider", PROVIDERS)
@given(body=bodies, extra=headers, signed=st.booleans())
def test_arbitrary_bodies_and_headers_never_get_a_5xx(
    relays: Relays, provider: str, body: bytes, extra: dict[str, str], signed: bool
):
    event = sign(provider, body, headers=extra) if signed else unsigned(provider, body)
    if not signed:
        event["headers"].update({k.lower(): v for k, v in extra.items()})
    status, answer = relays.post(provider, event)
    assert status < 500, answer
    assert answer.get("error") or answer.get("status"), answer
    if not signed:
        assert status in (401, 413, 400), answer
    relays.jobs()


@pytest.mark.parametrize("provider", PROVIDERS)
@given(data=st.data())
def test_a_valid_event_with_any_path_replaced_never_gets_a_5xx(relays: Relays, provider: str, data: Any):
    document = valid_document(provider)
    path = data.draw(st.sampled_from(list(leaves(document))))
    value = data.draw(json_values)
    status, answer = relays.post(
        provider, sign(provider, json.dumps(replaced(document, path, value)).encode())
    )
    assert status == 200, (path, answer)
    results = answer.get("events") or [answer]
    assert all(r["status"] in ("accepted", "ignored", "parked") for r in results), (path, answer)
    relays.jobs()


@pytest.mark.parametrize("provider", PROVIDERS)
@given(data=st.data())
def test_a_signed_purchase_reaches_every_vendor_as_exactly_its_amount(
    relays: Relays, provider: str, data: Any
):
    major, currency = data.draw(amounts(provider))
    status, answer = relays.post(provider, purchase(relays, provider, major, currency))
    if provider == "paddle" and major == 0:
        assert answer["conversions"] == []  # Paddle's rules skip a transaction of nothing
        return
    assert (status, answer["status"]) == (200, "accepted"), answer
    assert_reaches_every_vendor(relays, provider, major, currency)


HASHES = {
    "email": pii.hash_email,
    "phone": pii.hash_phone,
    "name": pii.hash_name,
    "city": pii.hash_city,
    "state": pii.hash_state,
    "zip": pii.hash_zip,
    "country": pii.hash_country,
    "external_id": pii.hash_external_id,
}


@pytest.mark.parametrize("kind", list(HASHES))
@given(raw=st.one_of(st.text(max_size=60), st.emails(), st.from_regex(r"\+?[0-9 ()-]{6,18}", fullmatch=True)))
def test_hashing_is_idempotent(kind: str, raw: str):
    hashed = HASHES[kind](raw)
    assert hashed is None or HASHES[kind](hashed) == hashed
    assert hashed is None or HASHES[kind](hashed.upper()) == hashed  # a digest in capitals is one too


@given(email=st.emails(), phone=st.from_regex(r"\+1 ?[2-9][0-9]{2} ?[2-9][0-9]{2} ?[0-9]{4}", fullmatch=True))
def test_a_hashed_identity_is_never_hashed_again_through_the_handler(relays: Relays, email: str, phone: str):
    # Given a backend that sends raw identity once, and the digests the relay made of it next time
    def identity_of(identity: dict[str, str]) -> tuple[str | None, str | None]:
        document = testkit.backend_purchase(order_id=f"ord_hash_{abs(hash((email, phone, str(identity))))}")
        document["data"]["identity"] = identity
        status, answer = relays.post("events", sign("events", json.dumps(document).encode()))
        assert status == 200, answer
        jobs = relays.jobs()
        assert jobs
        return jobs[0].conversion.identity.email, jobs[0].conversion.identity.phone

    hashed = identity_of({"email": email, "phone": phone})
    # Then the digests come back unchanged
    assert identity_of({"email": hashed[0] or "", "phone": hashed[1] or ""}) == hashed
