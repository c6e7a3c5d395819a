"""relay.pii: Meta-style normalization + SHA-256, checked against Meta's documented examples.

Vectors: Meta Conversions API, "Customer Information Parameters"
(developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters),
the hashing examples for em / ph / fn / st / country; rules cross-checked with the official
facebook-python-business-sdk `facebook_business/adobjects/serverside/normalize.py`.
"""

from __future__ import annotations

import hashlib
import unicodedata

import pytest
from relay import pii


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- Meta's documented examples ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("hash_fn", "raw", "digest"),
    [
        (
            pii.hash_email,
            "John_Smith@gmail.com",
            "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
        ),
        (pii.hash_country, "US", "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"),
        (pii.hash_name, "Mary", "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"),
        (pii.hash_state, "CA", "6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126"),
        (pii.hash_name, "Valéry", "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"),
        (pii.hash_name, "정", "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"),
        (pii.hash_phone, "+16505551212", "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
    ],
)
def test_meta_documented_vectors(hash_fn, raw, digest):
    assert hash_fn(raw) == digest


def test_phone_with_country_code_normalizes_as_meta_says():
    # Given Meta's example formatting "+1 (616) 954-78 88", Then digits only, country code kept.
    assert pii.normalize_phone("+1 (616) 954-78 88") == "16169547888"
    assert pii.hash_phone("+1 (616) 954-78 88") == sha256("16169547888")


def test_names_keep_accents_utf8_encoded():
    assert pii.normalize_name("Valéry") == "valéry"
    # The decomposed spelling (e + combining acute) is the same person: NFC makes it the same hash.
    decomposed = unicodedata.normalize("NFD", "Valéry")
    assert decomposed != "Valéry"
    assert pii.hash_name(decomposed) == pii.hash_name("Valéry")


# --- normalization rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  John_Smith@Gmail.COM ", "john_smith@gmail.com"),
        ("jenny.rosen+shop@example.co.uk", "jenny.rosen+shop@example.co.uk"),
        ("not-an-email", None),
        ("two@@example.com", None),
    ],
)
def test_email_is_trimmed_and_lower_cased(raw, normalized):
    assert pii.normalize_email(raw) == normalized


@pytest.mark.parametrize(
    ("raw", "region", "normalized"),
    [
        ("+1 (616) 954-7888", None, "16169547888"),
        ("+44 20 7946 0958", None, "442079460958"),
        ("0044 20 7946 0958", None, "442079460958"),  # international 00 prefix
        ("(616) 954-7888", "US", "16169547888"),  # national number + the billing country
        ("06 12 34 56 78", "fr", "33612345678"),  # trunk 0 dropped, country code added
        ("16169547888", None, "16169547888"),  # already digits with country code
    ],
)
def test_phone_numbers_get_their_country_code(raw, region, normalized):
    assert pii.normalize_phone(raw, region) == normalized


@pytest.mark.parametrize(
    ("fn", "raw", "normalized"),
    [
        (pii.normalize_name, "  Mary-Jane O'Brien ", "maryjane obrien"),
        (pii.normalize_name, "JOHN3", "john"),
        (pii.normalize_city, "Menlo Park", "menlopark"),
        (pii.normalize_city, "St. Louis", "stlouis"),
        (pii.normalize_state, "CA", "ca"),
        (pii.normalize_zip, "94025-1234", "94025-1234"),
        (pii.normalize_country, "US", "us"),
        (pii.normalize_country, " u.s ", "us"),
        (pii.normalize_country, "United States", None),
    ],
)
def test_location_and_name_rules(fn, raw, normalized):
    assert fn(raw) == normalized


def test_us_zip_codes_keep_five_digits_others_keep_everything():
    assert pii.normalize_zip("94025-1234", "US") == "94025"
    assert pii.normalize_zip("SW1A 1AA", "GB") == "sw1a1aa"


@pytest.mark.parametrize(
    "hash_fn",
    [
        pii.hash_email,
        pii.hash_phone,
        pii.hash_name,
        pii.hash_city,
        pii.hash_state,
        pii.hash_zip,
        pii.hash_country,
        pii.hash_external_id,
    ],
)
def test_already_hashed_values_pass_through_lower_cased(hash_fn):
    # Given a backend that sends SHA-256 digests already, Then they are not hashed twice.
    digest = sha256("john_smith@gmail.com")
    assert hash_fn(digest) == digest
    assert hash_fn(f"  {digest.upper()} ") == digest


@pytest.mark.parametrize("hash_fn", [pii.hash_email, pii.hash_phone, pii.hash_name, pii.hash_country])
@pytest.mark.parametrize("empty", [None, "", "   "])
def test_absent_values_hash_to_none(hash_fn, empty):
    assert hash_fn(empty) is None


def test_values_that_cannot_be_normalized_hash_to_none():
    # A hash of garbage would only add noise to the vendor's match: nothing is sent instead.
    assert pii.hash_email("not-an-email") is None
    assert pii.hash_country("United States") is None
    assert pii.hash_name("1234") is None


def test_external_ids_are_hashed_as_given():
    assert pii.hash_external_id(" cus_NffrFeUfNV2Hib ") == sha256("cus_NffrFeUfNV2Hib")


def test_is_hashed():
    assert pii.is_hashed("a" * 64)
    assert pii.is_hashed("A" * 64)
    assert not pii.is_hashed("a" * 63)
    assert not pii.is_hashed("g" * 64)


@pytest.mark.parametrize(
    ("full", "parts"),
    [
        ("Jenny Rosen", ("Jenny", "Rosen")),
        ("Mary Ann Smith", ("Mary", "Ann Smith")),
        ("Cher", ("Cher", None)),
        ("  ", (None, None)),
        (None, (None, None)),
    ],
)
def test_full_names_split_into_first_and_last(full, parts):
    assert pii.split_full_name(full) == parts


# --- scrubbing free-form properties ----------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "email",
        "e-mail",
        "customer_email",
        "customerEmail",
        "phone",
        "phone_number",
        "billing-phone",
        "mobile",
        "em",
        "ph",
    ],
)
def test_pii_property_names_are_recognized(key):
    assert pii.is_pii_key(key)


@pytest.mark.parametrize(
    "key", ["item", "template", "hotel", "graph", "order_id", "mailing_list", "plan", "emblem"]
)
def test_ordinary_property_names_are_not(key):
    assert not pii.is_pii_key(key)


def test_scrub_drops_contact_data_and_keeps_the_rest():
    # Given properties mixing business data with contact data under many spellings
    properties = {
        "plan": "pro",
        "order_number": "100234",  # digits without '+' are kept: too often order numbers
        "customer_email": "jenny@example.com",
        "phone_number": "6169547888",
        "customerPhone": "616 954 7888",
        "contact": "+1 616 954 7888",
        "note": "gift for jenny@example.com, call +1 616-954-7888",
        "tags": ["vip", "jenny@example.com", "+44 20 7946 0958"],
        "nested": {"em": "x", "city": "Menlo Park"},
        "quantity": 3,
    }
    # When scrubbed
    scrubbed = pii.scrub(properties)
    # Then no email address or phone number is left anywhere, and the rest is unchanged
    assert scrubbed == {
        "plan": "pro",
        "order_number": "100234",
        "note": "gift for [email removed], call [phone removed]",
        "tags": ["vip"],
        "nested": {"city": "Menlo Park"},
        "quantity": 3,
    }
    text = repr(scrubbed)
    assert "jenny@" not in text and "616" not in text and "7946" not in text
    assert properties["customer_email"] == "jenny@example.com"  # the input is not modified
