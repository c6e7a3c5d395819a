"""Each provider's amount conventions, in one place; docs/money.md is the same table with the
provider's own document behind every rule.

After ingest, money is ISO 4217 minor units (relay.money). A provider's amount is read once,
here, with that provider's rules: how its API writes an amount (minor units in its own
exponent, or a major-unit decimal), which currencies it documents, how large an amount can
be. Whatever is not a real amount of money raises an InvalidMoneyError subclass whose `code`
is the reason the event is parked under: negative_amount, amount_too_large,
fractional_minor_units, unsupported_currency, invalid_money.

The one provider whose API units differ from ISO 4217 is Stripe: its zero-decimal list holds
MGA (ISO: 2 digits), and ISK and UGX are two-decimal in its API although ISO 4217 gives them
none, so 1,000 krónur arrive as `100000`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from relay import money
from relay.errors import (
    AmountTooLargeError,
    FractionalMinorUnitsError,
    InvalidMoneyError,
    NegativeAmountError,
    UnsupportedCurrencyError,
)
from relay.models import Money

# The largest amount the relay passes on, in ISO minor units: Scanova and QuickLizard take
# major units as a JSON float, which holds 15 significant digits exactly.
MAX_AMOUNT_MINOR = 10**15 - 1

Units = Literal["minor", "major"]


@dataclass(frozen=True)
class Convention:
    """How one provider writes money. `digits` lists only the currencies whose API minor unit is
    not ISO 4217's; `max_minor` is the largest amount it documents, in its own minor units."""

    provider: str
    currencies: frozenset[str] | None = None  # None: any ISO 4217 code
    digits: Mapping[str, int] = field(default_factory=dict)
    max_minor: int | None = None

    def api_digits(self, code: str) -> int:
        """Digits of the provider's minor unit for this (ISO) currency code."""
        return self.digits.get(code, money.exponent(code))

    def currency(self, value: Any) -> str:
        code = money.currency_code(value)  # UnsupportedCurrencyError unless ISO 4217
        if self.currencies is not None and code not in self.currencies:
            raise UnsupportedCurrencyError(f"{self.provider} does not document currency {code}")
        return code

    def read(self, amount: Any, currency: Any, units: Units) -> Money:
        """An amount as the provider writes it (`minor` units of its API, or `major` units) and
        its currency, as exact ISO 4217 money; an InvalidMoneyError subclass otherwise."""
        code = self.currency(currency)
        value = _number(amount)
        if value < 0:
            raise NegativeAmountError(f"amount is negative ({code})")
        if units == "minor":
            if not _whole(value, 0):
                raise FractionalMinorUnitsError(f"a minor-unit amount has a fraction ({code})")
            if self.max_minor is not None and value > self.max_minor:
                raise AmountTooLargeError(f"beyond {self.provider}'s documented maximum ({code})")
            major = value.scaleb(-self.api_digits(code))
        else:
            major = value
        iso = money.exponent(code)
        if major > Decimal(MAX_AMOUNT_MINOR).scaleb(-iso):
            raise AmountTooLargeError(f"beyond any real amount ({code}): vendors take 15 digits at most")
        if not _whole(major, iso):
            written = f"; {self.provider} writes it with {self.api_digits(code)}" if units == "minor" else ""
            raise FractionalMinorUnitsError(f"amount has more decimals than {code} allows ({iso}{written})")
        return Money(amount_minor=int(major.scaleb(iso)), currency=code)


def _number(amount: Any) -> Decimal:
    """An amount as an exact Decimal: integers, decimal strings, Decimals (JSON floats are read
    as Decimal by relay.ingest.json_body); never bool, float, NaN or a structure."""
    if isinstance(amount, bool) or not isinstance(amount, int | str | Decimal):
        raise InvalidMoneyError(f"amount is a {type(amount).__name__}, not a number")
    try:
        value = Decimal(amount.strip() if isinstance(amount, str) else amount)
    except InvalidOperation as exc:
        raise InvalidMoneyError("amount is not a decimal number") from exc
    if not value.is_finite():
        raise InvalidMoneyError("amount is not a finite number")
    if value and value.adjusted() >= money.MAX_DIGITS:
        raise AmountTooLargeError("amount is beyond any real amount")
    return value


def _whole(value: Decimal, shift: int) -> bool:
    """Whether value * 10**shift is an integer, decided exactly (no context rounding)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: checked by _number
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return not any(digits) or exponent + trailing_zeros + shift >= 0


# --- the providers (docs/money.md: the table, with the provider's document for each rule) ---

# docs.stripe.com/currencies, "Zero-decimal currencies" (UGX is on that list too, but its
# "Special cases" entry, which governs, makes it two-decimal like ISK).
STRIPE_ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "VND", "VUV", "XAF", "XOF", "XPF"}
)
# "Special cases": zero-decimal currencies Stripe's API writes with two decimals, always 00.
STRIPE_TWO_DECIMAL_WHOLE = frozenset({"ISK", "UGX"})
# "Three-decimal currencies": as ISO 4217. Stripe wants the last digit 0 in requests; an amount
# it sends is exact money either way, so that rule is not checked here.
STRIPE_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

STRIPE = Convention(
    provider="stripe",
    digits={
        **{code: 0 for code in STRIPE_ZERO_DECIMAL},
        **{code: 2 for code in STRIPE_TWO_DECIMAL_WHOLE},
        **{code: 3 for code in STRIPE_THREE_DECIMAL},
    },
    # "Minimum and maximum charge amounts": the largest amount the page names (LBP by card).
    max_minor=99_999_999_999_999,
)

# developer.paddle.com: currency_code enum (API reference; CLP and PEN since 2026-03-04).
# Amounts are strings "in the lowest denomination", i.e. ISO 4217 minor units (USD 2, JPY 0).
PADDLE = Convention(
    provider="paddle",
    currencies=frozenset(
        {
            *("USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "HKD", "SGD", "SEK", "ARS", "BRL"),
            *("CLP", "CNY", "COP", "CZK", "DKK", "HUF", "ILS", "INR", "KRW", "MXN", "NOK", "NZD"),
            *("PEN", "PLN", "RUB", "THB", "TRY", "TWD", "UAH", "VND", "ZAR"),
        }
    ),
)

# Shopify: decimal strings in the shop currency (ISO 4217 codes; Shopify's non-standard codes
# have no exponent to convert with). HubSpot: the deal's `amount` (a number property, as text)
# in `deal_currency_code`, one of the portal's currencies. Pipedrive: the deal's `value` (a JSON
# number) in `currency`; custom currencies are not ISO codes. The backend (`events`): the
# canonical value, major or minor ISO 4217 units.
SHOPIFY = Convention(provider="shopify")
HUBSPOT = Convention(provider="hubspot")
PIPEDRIVE = Convention(provider="pipedrive")
EVENTS = Convention(provider="events")
ISO_4217 = Convention(provider="iso4217")

CONVENTIONS: dict[str, Convention] = {
    c.provider: c for c in (STRIPE, PADDLE, SHOPIFY, HUBSPOT, PIPEDRIVE, EVENTS, ISO_4217)
}


def convention(name: str) -> Convention:
    """A provider's convention (the source of the webhook), or `iso4217` for plain ISO units."""
    return CONVENTIONS.get(name, ISO_4217)
