"""relay.money_rules: each provider's amount conventions, and docs/money.md, their table.

The expected values are the providers' own examples (docs/money.md cites each): Stripe's
"to charge 5 ISK, provide an amount value of 500", "5.124 KWD must be rounded to 5120", and so on.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import iso4217
import pytest
from hypothesis import given
from hypothesis import strategies as st
from relay import money
from relay.errors import (
    AmountTooLargeError,
    FractionalMinorUnitsError,
    InvalidMoneyError,
    NegativeAmountError,
    UnsupportedCurrencyError,
)
from relay.money_rules import (
    CONVENTIONS,
    MAX_AMOUNT_MINOR,
    PADDLE,
    STRIPE,
    STRIPE_THREE_DECIMAL,
    STRIPE_TWO_DECIMAL_WHOLE,
    STRIPE_ZERO_DECIMAL,
    convention,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "money.md"


@pytest.mark.parametrize(
    ("api_amount", "currency", "iso_minor"),
    [
        (500, "isk", 5),  # "to charge 5 ISK, provide an amount value of 500"
        (100000, "ISK", 1000),
        (500, "UGX", 5),  # the same sentence for UGX
        (500, "JPY", 500),  # "to charge 500 JPY, provide an amount value of 500"
        (1000, "MGA", 100000),  # zero-decimal in Stripe's API, two decimals in ISO 4217
        (1045, "HUF", 1045),  # HUF 10.45: two-decimal for charges
        (80045, "TWD", 80045),
        (5120, "KWD", 5120),  # "5.124 KWD must be rounded to 5120 or 5130"
        (1099, "USD", 1099),  # "enter 1099 to charge 10.99 USD"
        (99_999_999_999_999, "LBP", 99_999_999_999_999),  # the largest amount the page names
    ],
)
def test_stripe_amounts_become_iso_4217_minor_units(api_amount: int, currency: str, iso_minor: int):
    value = STRIPE.read(api_amount, currency, "minor")
    assert (value.amount_minor, value.currency) == (iso_minor, currency.upper())


def test_stripe_differs_from_iso_4217_in_exactly_three_currencies():
    # Given every currency Stripe writes in its own way, Then only these three differ from ISO 4217
    special = STRIPE_ZERO_DECIMAL | STRIPE_TWO_DECIMAL_WHOLE | STRIPE_THREE_DECIMAL
    differing = {code for code in special if STRIPE.api_digits(code) != money.exponent(code)}
    assert differing == {"ISK", "UGX", "MGA"}
    # And a currency Stripe does not name is two-decimal in its API, as ISO 4217 says for most
    assert STRIPE.api_digits("EUR") == 2 and STRIPE.api_digits("IDR") == 2


@pytest.mark.parametrize(
    ("convention_", "amount", "currency", "units", "error"),
    [
        (STRIPE, 4010, "ISK", "minor", FractionalMinorUnitsError),  # 40.10 krónur: no fractions of ISK
        (STRIPE, 150, "UGX", "minor", FractionalMinorUnitsError),
        (STRIPE, -500, "USD", "minor", NegativeAmountError),
        (STRIPE, 100_000_000_000_000, "USD", "minor", AmountTooLargeError),
        (STRIPE, "12.5", "USD", "minor", FractionalMinorUnitsError),  # unit_amount_decimal with a fraction
        (STRIPE, 500, "ZZZ", "minor", UnsupportedCurrencyError),
        (PADDLE, "1000", "ISK", "minor", UnsupportedCurrencyError),  # not among Paddle's currencies
        (PADDLE, "abc", "USD", "minor", InvalidMoneyError),
        (CONVENTIONS["shopify"], "19.999", "USD", "major", FractionalMinorUnitsError),
        (CONVENTIONS["shopify"], "1." + "0" * 30 + "1", "USD", "major", FractionalMinorUnitsError),  # exact
        (CONVENTIONS["hubspot"], "1E+16", "USD", "major", AmountTooLargeError),
        (CONVENTIONS["hubspot"], "1e999999999", "USD", "major", AmountTooLargeError),
        (CONVENTIONS["pipedrive"], Decimal("NaN"), "EUR", "major", InvalidMoneyError),
        (CONVENTIONS["pipedrive"], 19.99, "EUR", "major", InvalidMoneyError),  # a float is not exact
        (CONVENTIONS["pipedrive"], True, "EUR", "major", InvalidMoneyError),
        (CONVENTIONS["pipedrive"], "1", "BTC", "major", UnsupportedCurrencyError),  # a custom currency
        (CONVENTIONS["events"], {"amount": 1}, "USD", "major", InvalidMoneyError),
        (CONVENTIONS["events"], "1", None, "major", UnsupportedCurrencyError),
    ],
)
def test_what_is_not_money_raises_the_error_that_names_why(convention_, amount, currency, units, error):
    with pytest.raises(error) as raised:
        convention_.read(amount, currency, units)
    assert raised.value.code in {
        "invalid_money",
        "negative_amount",
        "amount_too_large",
        "fractional_minor_units",
        "unsupported_currency",
    }


def test_the_ceiling_is_what_every_vendor_payload_carries_exactly():
    # Given the largest amount the relay passes on, Then its major-unit float is exact
    top = CONVENTIONS["events"].read(MAX_AMOUNT_MINOR, "USD", "minor")
    assert Decimal(repr(float(top.major()))) == top.major()
    with pytest.raises(AmountTooLargeError):
        CONVENTIONS["events"].read(MAX_AMOUNT_MINOR + 1, "USD", "minor")


@given(minor=st.integers(0, MAX_AMOUNT_MINOR), currency=st.sampled_from(sorted(PADDLE.currencies or ())))
def test_major_and_minor_units_read_the_same_money(minor: int, currency: str):
    # Given an amount in ISO minor units and the same amount written in major units
    major = str(Decimal(minor).scaleb(-money.exponent(currency)))
    # Then both read as the same money, for every provider whose currencies allow it
    assert PADDLE.read(str(minor), currency, "minor") == CONVENTIONS["shopify"].read(major, currency, "major")


def test_an_unknown_provider_reads_plain_iso_4217():
    assert convention("salesforce") is CONVENTIONS["iso4217"]
    assert convention("salesforce").read("1000", "ISK", "major").amount_minor == 1000


def test_docs_money_md_lists_every_special_currency_the_code_knows():
    # Given the one table in docs/ (its rows cite the provider's own page for every rule)
    text = DOC.read_text(encoding="utf-8")
    codes = set(re.findall(r"\b[A-Z]{3}\b", text))
    # Then every currency the conventions single out is in it
    assert codes >= STRIPE_ZERO_DECIMAL | STRIPE_TWO_DECIMAL_WHOLE | STRIPE_THREE_DECIMAL
    assert set(PADDLE.currencies or ()) <= codes
    assert {"HUF", "TWD"} <= codes
    assert all(code in text for code in ("negative_amount", "amount_too_large", "fractional_minor_units"))


def test_every_iso_currency_reads_in_major_units_for_a_provider_with_no_list():
    for currency in iso4217.Currency:
        if currency.exponent is None:
            continue  # funds and metals (XAU…) have no minor unit
        value = CONVENTIONS["hubspot"].read("12", currency.code, "major")
        assert value.amount_minor == 12 * 10**currency.exponent
