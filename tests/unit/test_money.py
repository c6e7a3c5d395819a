"""relay.money: integer minor units in, vendor units out, exponents from ISO 4217 (the `iso4217` package)."""

from __future__ import annotations

from decimal import Decimal

import iso4217
import pytest
from relay import money
from relay.errors import InvalidMoneyError, MappingError


@pytest.mark.parametrize(("code", "digits"), [("USD", 2), ("JPY", 0), ("KWD", 3), ("IDR", 2), ("EUR", 2)])
def test_exponents_are_iso_4217(code, digits):
    assert money.exponent(code) == digits


def test_exponents_come_from_the_library_not_a_table():
    # Given every currency the maintained iso4217 package knows, Then relay.money agrees with it
    # (a funds/metal code without minor units, e.g. XAU, counts as 0 digits).
    for currency in iso4217.Currency:
        assert money.exponent(currency.code) == (currency.exponent or 0)


@pytest.mark.parametrize(
    ("amount", "code", "minor"),
    [
        ("19.99", "USD", 1999),
        ("19.990", "USD", 1999),  # trailing zeros are not extra precision
        (" 19.99 ", "usd", 1999),
        ("0.10", "EUR", 10),
        ("-5.00", "USD", -500),  # refunds and adjustments
        (19, "USD", 1900),
        (Decimal("19.99"), "USD", 1999),
        ("1000", "JPY", 1000),
        ("1.234", "KWD", 1234),
        ("15000", "IDR", 1_500_000),
        ("15000.50", "IDR", 1_500_050),
        ("1e2", "USD", 10000),
    ],
)
def test_major_amounts_become_exact_minor_units(amount, code, minor):
    result = money.to_minor(amount, code)
    assert result == minor
    assert type(result) is int


def test_19_99_is_exactly_1999_where_float_arithmetic_is_not():
    # Given the classic float trap (19.99 * 100 == 1998.9999999999998), Then Decimal parsing is exact.
    assert int(19.99 * 100) == 1998
    assert money.to_minor("19.99", "USD") == 1999


@pytest.mark.parametrize(
    ("amount", "code"), [("19.999", "USD"), ("1.5", "JPY"), ("1.2345", "KWD"), ("0.001", "IDR")]
)
def test_more_decimals_than_the_currency_has_are_refused(amount, code):
    with pytest.raises(InvalidMoneyError, match="more decimals than"):
        money.to_minor(amount, code)


@pytest.mark.parametrize("amount", [19.99, 0.1, 20.0, True, False])
def test_floats_and_booleans_are_refused(amount):
    with pytest.raises(InvalidMoneyError, match="not floats"):
        money.to_minor(amount, "USD")


@pytest.mark.parametrize("amount", ["abc", "", "NaN", "Infinity", "-inf", "1,99"])
def test_non_numbers_are_refused(amount):
    with pytest.raises(InvalidMoneyError):
        money.to_minor(amount, "USD")


@pytest.mark.parametrize(("given", "code"), [("usd", "USD"), (" eur ", "EUR"), ("Jpy", "JPY")])
def test_currency_codes_are_normalized(given, code):
    assert money.currency_code(given) == code


@pytest.mark.parametrize("code", ["ZZZ", "US", "DOLLAR", "", None, 840])
def test_unknown_currencies_are_refused(code):
    with pytest.raises(InvalidMoneyError):
        money.currency_code(code)


def test_invalid_money_is_a_mapping_error_and_a_value_error():
    # So callers catch it by type: a payload problem, never matched by message text.
    with pytest.raises(MappingError):
        money.to_minor("1.5", "JPY")
    with pytest.raises(ValueError):
        money.to_minor("1.5", "JPY")


@pytest.mark.parametrize(
    ("minor", "code", "major"),
    [
        (1999, "USD", Decimal("19.99")),
        (1000, "JPY", Decimal("1000")),
        (1234, "KWD", Decimal("1.234")),
        (0, "USD", 0),
    ],
)
def test_minor_units_become_exact_major_decimals(minor, code, major):
    assert money.to_major(minor, code) == major


def test_vendor_unit_conversions():
    # Scanova/QuickLizard want a float, some vendors whole major units, pagent hundredths.
    assert money.to_major_float(1999, "USD") == 19.99
    assert money.to_major_float(1000, "JPY") == 1000.0
    assert money.to_major_integer(1_500_000, "IDR") == 15000
    assert money.to_major_integer(1_500_050, "IDR") == 15000  # 15000.50 → banker's rounding
    assert money.to_major_integer(1_500_150, "IDR") == 15002
    assert money.to_cents(999, "USD") == 999
    assert money.to_cents(999, "JPY") == 99900
    assert money.to_cents(1235, "KWD") == 124  # 123.5 → half-even


@pytest.mark.parametrize("code", ["USD", "JPY", "KWD", "IDR"])
def test_round_trip_is_lossless(code):
    # Given any minor amount, When it goes to major units and back, Then nothing is lost.
    for minor in (0, 1, 7, 99, 100, 1999, 123456789, -250):
        assert money.to_minor(str(money.to_major(minor, code)), code) == minor
