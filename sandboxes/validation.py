"""A small declarative JSON validator whose `Problem`s each vendor sandbox renders in its own error body.

A vendor module declares `Schema(required(...), optional(...))` and checks such as
`currency_code` or `no_raw_pii`. Where the vendor documents are silent:
- JSON `null` in an optional field means "absent" (pagent's own Python example sends
  `"label": None`); `null` in a required field is an error.
- Unknown fields are ignored unless a schema is `closed` (used where a dropped key
  would silently lose attribution data, e.g. identity objects).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from iso4217 import Currency


@dataclass(frozen=True)
class Problem:
    """One validation failure: where (path inside the body), what, and a machine code."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def describe(self, root: str = "body") -> str:
        """ "events[1].revenue: must be an integer"; `root` names the value when loc is empty."""
        return f"{format_loc(self.loc) or root}: {self.msg}"


def format_loc(loc: Iterable[str | int]) -> str:
    """("events", 2, "revenue") -> "events[2].revenue"."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(frozen=True)
class Failure:
    """What a check returns when a value is unacceptable."""

    msg: str
    type: str = "value_error"


Check = Callable[[Any], Failure | None]


@dataclass(frozen=True)
class JsonType:
    label: str
    code: str
    accepts: Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    # bool is an int subclass in Python but `true` is not a number in JSON.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    # 2499.0 parses as a float but is integral; JavaScript backends cannot tell it
    # from 2499, so only fractional values (9.99) are rejected.
    return _is_number(value) and float(value).is_integer()


STRING = JsonType("a string", "type_error.str", lambda v: isinstance(v, str))
NUMBER = JsonType("a number", "type_error.float", _is_number)
INTEGER = JsonType("an integer", "type_error.integer", _is_integer)
OBJECT = JsonType("an object", "type_error.dict", lambda v: isinstance(v, dict))
ARRAY = JsonType("an array", "type_error.list", lambda v: isinstance(v, list))


@dataclass(frozen=True)
class Field:
    """One key of a JSON object: accepted types, checks, and a nested schema if any."""

    name: str
    kinds: tuple[JsonType, ...]
    required: bool = False
    checks: tuple[Check, ...] = ()
    fields: Schema | None = None  # for an object value
    items: Schema | None = None  # for each element of an array value

    def validate(self, obj: Mapping[str, Any], loc: tuple[str | int, ...]) -> list[Problem]:
        where = (*loc, self.name)
        value = obj.get(self.name)
        if value is None:
            if not self.required:
                return []
            if self.name in obj:
                return [Problem(where, "none is not an allowed value", "type_error.none.not_allowed")]
            return [Problem(where, "field required", "value_error.missing")]
        if not any(kind.accepts(value) for kind in self.kinds):
            expected = " or ".join(kind.label for kind in self.kinds)
            return [Problem(where, f"must be {expected}", self.kinds[0].code)]
        for check in self.checks:
            failure = check(value)
            if failure:
                return [Problem(where, failure.msg, failure.type)]
        if isinstance(value, dict) and self.fields:
            return self.fields.validate(value, where)
        if isinstance(value, list) and self.items:
            return [p for i, item in enumerate(value) for p in self.items.validate(item, (*where, i))]
        return []


def required(name: str, kinds: JsonType | tuple[JsonType, ...], *checks: Check, **nested: Schema) -> Field:
    return Field(name, kinds if isinstance(kinds, tuple) else (kinds,), True, checks, **nested)


def optional(name: str, kinds: JsonType | tuple[JsonType, ...], *checks: Check, **nested: Schema) -> Field:
    return Field(name, kinds if isinstance(kinds, tuple) else (kinds,), False, checks, **nested)


class Schema:
    """A JSON object's fields; `closed` rejects keys it does not declare."""

    def __init__(self, *fields: Field, closed: bool = False) -> None:
        self.fields = fields
        self.closed = closed

    def extend(self, *fields: Field) -> Schema:
        return Schema(*self.fields, *fields, closed=self.closed)

    def validate(self, value: Any, loc: tuple[str | int, ...] = ()) -> list[Problem]:
        if not isinstance(value, dict):
            return [Problem(loc, f"must be {OBJECT.label}", OBJECT.code)]
        problems = [problem for f in self.fields for problem in f.validate(value, loc)]
        if self.closed:
            known = {f.name for f in self.fields}
            message = f"extra fields not permitted (accepted: {', '.join(sorted(known))})"
            problems += [
                Problem((*loc, key), message, "value_error.extra") for key in value if key not in known
            ]
        return problems


# ---- checks (each returns a Failure or None) ----

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_CURRENCY_CODES = frozenset(currency.code for currency in Currency)
_EMAIL_IN_TEXT = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
# Only numbers written with their international '+' prefix count as phones: bare digit
# runs are too often order numbers, timestamps or SKUs to reject them.
_PHONE = re.compile(r"\+\d[\d\s().\-]{6,}")


def non_empty(value: str) -> Failure | None:
    if value.strip():
        return None
    return Failure("must not be empty", "value_error.any_str.min_length")


def uuid_string(value: str) -> Failure | None:
    try:
        uuid.UUID(value)
    except ValueError:
        return Failure("value is not a valid uuid", "type_error.uuid")
    return None


def sha256_hex(value: str) -> Failure | None:
    if _SHA256_HEX.fullmatch(value):
        return None
    return Failure("must be a SHA-256 hex digest; never send the raw value", "value_error.hash")


def iso8601(value: str) -> Failure | None:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return Failure("invalid datetime format (expected ISO 8601)", "value_error.datetime")
    return None


def currency_code(value: str) -> Failure | None:
    if value in _CURRENCY_CODES:
        return None
    return Failure("must be a 3-letter ISO 4217 currency code, e.g. USD", "value_error.currency")


def http_url(value: str) -> Failure | None:
    parts = urlsplit(value)
    if parts.scheme in {"http", "https"} and parts.netloc:
        return None
    return Failure("must be an absolute http(s) URL", "value_error.url")


def one_of(*choices: str) -> Check:
    permitted = ", ".join(f"'{choice}'" for choice in choices)

    def check(value: Any) -> Failure | None:
        if value in choices:
            return None
        return Failure(f"value is not a valid enumeration member; permitted: {permitted}", "type_error.enum")

    return check


def at_least(minimum: float) -> Check:
    def check(value: float) -> Failure | None:
        if value >= minimum:
            return None
        message = f"ensure this value is greater than or equal to {minimum}"
        return Failure(message, "value_error.number.not_ge")

    return check


def length(min_items: int = 0, max_items: int | None = None) -> Check:
    def check(value: list) -> Failure | None:
        if len(value) < min_items:
            return Failure(f"ensure this value has at least {min_items} items", "value_error.list.min_items")
        if max_items is not None and len(value) > max_items:
            return Failure(f"ensure this value has at most {max_items} items", "value_error.list.max_items")
        return None

    return check


def json_size_at_most(max_bytes: int) -> Check:
    def check(value: Any) -> Failure | None:
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
        if size <= max_bytes:
            return None
        return Failure(f"serialized size {size} bytes exceeds {max_bytes} bytes", "value_error.too_large")

    return check


def no_raw_pii(value: Any) -> Failure | None:
    """Reject a raw email address or phone number anywhere inside value."""
    found = _find_raw_pii(value, ())
    if found is None:
        return None
    path, what = found
    where = f" at '{format_loc(path)}'" if path else ""
    return Failure(f"raw {what}{where}: send only hashed identifiers", "value_error.pii")


def _find_raw_pii(value: Any, path: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], str] | None:
    if isinstance(value, str):
        if _EMAIL_IN_TEXT.search(value):
            return path, "email address"
        if _PHONE.fullmatch(value.strip()) and 7 <= sum(c.isdigit() for c in value) <= 15:
            return path, "phone number"
        return None
    if isinstance(value, dict):
        children: Iterable[tuple[str | int, Any]] = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return None
    for key, child in children:
        found = _find_raw_pii(child, (*path, key))
        if found:
            return found
    return None
