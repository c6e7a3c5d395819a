"""Money: integer minor units in, vendor units out, exponents from ISO 4217.

Amounts travel through the relay as integer minor units plus an ISO 4217 code. The
number of minor digits comes from the `iso4217` package (JPY 0, USD 2, KWD 3), never
from a hard-coded 100. Major-unit strings such as Shopify's "19.99" are parsed with
`Decimal`, so no float rounding creeps in.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from iso4217 import Currency
from relay.errors import (
    AmountTooLargeError,
    FractionalMinorUnitsError,
    InvalidMoneyError,
    UnsupportedCurrencyError,
)

# No amount of money has more digits than this; the check keeps Decimal arithmetic (and int())
# from ever working on a hostile 10**999999. Providers' own limits: relay.money_rules.
MAX_DIGITS = 30


def currency_code(code: str) -> str:
    """The upper-case ISO 4217 code, or InvalidMoneyError."""
    if not isinstance(code, str) or len(code.strip()) != 3:
        raise UnsupportedCurrencyError(f"currency {str(code)[:20]!r} is not a 3-letter ISO 4217 code")
    try:
        return Currency(code.strip().upper()).code
    except ValueError as exc:
        raise UnsupportedCurrencyError(f"currency {code!r} is not an ISO 4217 code") from exc


def exponent(code: str) -> int:
    """Minor-unit digits of a currency; funds codes without one (XAU…) count as 0."""
    return Currency(currency_code(code)).exponent or 0


def to_minor(amount: str | int | Decimal, code: str) -> int:
    """A major-unit amount ("19.99", 19, Decimal) as exact integer minor units.

    Refuses floats (use a string) and amounts with more digits than the currency has.
    """
    if isinstance(amount, float | bool):
        raise InvalidMoneyError("major-unit amounts must be decimal strings or integers, not floats")
    try:
        major = Decimal(str(amount).strip())
    except InvalidOperation as exc:
        raise InvalidMoneyError(f"amount {amount!r} is not a decimal number") from exc
    if not major.is_finite():
        raise InvalidMoneyError(f"amount {amount!r} is not a finite number")
    if major and major.adjusted() >= MAX_DIGITS:
        raise AmountTooLargeError(f"amount of {major.adjusted() + 1} digits is beyond any real amount")
    minor = major.scaleb(exponent(code))
    if minor != minor.to_integral_value():
        raise FractionalMinorUnitsError(
            f"amount {amount!r} has more decimals than {currency_code(code)} allows"
        )
    return int(minor)


def to_major(amount_minor: int, code: str) -> Decimal:
    """Exact major units as a Decimal (e.g. 1999 USD → Decimal('19.99'))."""
    return Decimal(amount_minor).scaleb(-exponent(code))


def to_major_float(amount_minor: int, code: str) -> float:
    """Major units as a float, for vendors that want a JSON number (Scanova, QuickLizard)."""
    return float(to_major(amount_minor, code))


def to_major_integer(amount_minor: int, code: str) -> int:
    """Whole major units, for vendors that show currencies such as IDR without decimals."""
    return int(to_major(amount_minor, code).to_integral_value(rounding=ROUND_HALF_EVEN))


def to_cents(amount_minor: int, code: str) -> int:
    """Hundredths of the major unit (pagent's `revenue`: 999 = 9.99), whatever the exponent."""
    return int(to_major(amount_minor, code).scaleb(2).to_integral_value(rounding=ROUND_HALF_EVEN))
