"""PII normalization and SHA-256 hashing, Meta/TikTok style.

Raw email, phone, names and address parts are normalized as Meta's Conversions API
documents ("customer information parameters") and hashed here, in the ingest
function; only the hex digests travel further. A value that already is a SHA-256
hex digest passes through (lower-cased), so a backend may send pre-hashed data.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Meta: names are lower-case with no punctuation; letters of any script stay (UTF-8).
_NOT_NAME = re.compile(r"[^\w\s]|[\d_]", re.UNICODE)
# Meta: city and state drop digits, spaces and punctuation.
_NOT_LOCATION = re.compile(r"[^\w]|[\d_]", re.UNICODE)
_NOT_DIGIT = re.compile(r"\D")
# An international number written with its '+' prefix; bare digit runs are too
# often order numbers or dates to treat as phones.
_LOOKS_LIKE_PHONE = re.compile(r"^\+\d[\d\s().\-]{6,}$")
# Property keys naming contact data, matched word by word so that phone_number,
# customerEmail and billing-phone count as well as email and phone.
_PII_KEY_WORDS = frozenset({"email", "mail", "phone", "mobile", "tel", "telephone", "msisdn", "em", "ph"})
_KEY_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def is_hashed(value: str) -> bool:
    return bool(_SHA256_HEX.match(value.strip().lower()))


def _hash(normalized: str | None) -> str | None:
    return sha256_hex(normalized) if normalized else None


def _passthrough(value: str | None) -> tuple[bool, str | None]:
    """(True, digest) when value is empty or already hashed, else (False, stripped value)."""
    if value is None:
        return True, None
    stripped = str(value).strip()
    if not stripped:
        return True, None
    if is_hashed(stripped):
        return True, stripped.lower()
    return False, stripped


def normalize_email(email: str) -> str | None:
    normalized = email.strip().lower()
    return normalized if _EMAIL.match(normalized) else None


def normalize_phone(phone: str, default_region: str | None = None) -> str | None:
    """Digits with the country code, no '+' or leading zeros (Meta's `ph`).

    `phonenumbers` resolves national numbers with the region (e.g. the billing
    country); without a region a number must carry its country code.
    """
    # Imported here, not at cold start: ~35 ms that only conversions with a phone number need.
    import phonenumbers

    try:
        parsed = phonenumbers.parse(phone, (default_region or "").upper() or None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
    # Meta's fallback: strip symbols and the international '00' prefix.
    digits = _NOT_DIGIT.sub("", phone)
    if phone.strip().startswith("00"):
        digits = digits[2:]
    return digits.lstrip("0") or None


def normalize_name(name: str) -> str | None:
    cleaned = _NOT_NAME.sub("", unicodedata.normalize("NFC", name).strip().lower())
    normalized = " ".join(cleaned.split())
    return normalized or None


def normalize_city(city: str) -> str | None:
    normalized = _NOT_LOCATION.sub("", unicodedata.normalize("NFC", city).strip().lower())
    return normalized or None


def normalize_state(state: str) -> str | None:
    return normalize_city(state)


def normalize_zip(zip_code: str, country: str | None = None) -> str | None:
    normalized = re.sub(r"\s", "", zip_code.strip().lower())
    if (country or "").lower() == "us":
        normalized = normalized.split("-")[0][:5]
    return normalized or None


def normalize_country(country: str) -> str | None:
    normalized = re.sub(r"[^a-z]", "", country.strip().lower())
    return normalized if len(normalized) == 2 else None


def hash_email(email: str | None) -> str | None:
    done, value = _passthrough(email)
    return value if done else _hash(normalize_email(value))


def hash_phone(phone: str | None, default_region: str | None = None) -> str | None:
    done, value = _passthrough(phone)
    return value if done else _hash(normalize_phone(value, default_region))


def hash_name(name: str | None) -> str | None:
    done, value = _passthrough(name)
    return value if done else _hash(normalize_name(value))


def hash_city(city: str | None) -> str | None:
    done, value = _passthrough(city)
    return value if done else _hash(normalize_city(value))


def hash_state(state: str | None) -> str | None:
    done, value = _passthrough(state)
    return value if done else _hash(normalize_state(value))


def hash_zip(zip_code: str | None, country: str | None = None) -> str | None:
    done, value = _passthrough(zip_code)
    return value if done else _hash(normalize_zip(value, country))


def hash_country(country: str | None) -> str | None:
    done, value = _passthrough(country)
    return value if done else _hash(normalize_country(value))


def hash_external_id(external_id: str | None) -> str | None:
    """External ids are hashed as given (trimmed): Meta recommends hashing them."""
    done, value = _passthrough(external_id)
    return value if done else _hash(value)


def split_full_name(full_name: str | None) -> tuple[str | None, str | None]:
    """'Jenny Rosen' → ('Jenny', 'Rosen'); providers often give one name field."""
    if not full_name or not full_name.strip():
        return None, None
    first, _, last = full_name.strip().partition(" ")
    return first, (last.strip() or None)


def is_pii_key(key: object) -> bool:
    """True for a property name such as email, phone_number, customerEmail or e-mail."""
    return any(word.lower() in _PII_KEY_WORDS for word in _KEY_WORD.findall(str(key)))


def looks_like_pii(value: object) -> bool:
    """True for a string that is an email address or a phone number."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return bool(_EMAIL.match(text) or _LOOKS_LIKE_PHONE.match(text))


_EMBEDDED_EMAIL = re.compile(r"[^@\s\"'<>]+@[^@\s\"'<>]+\.[a-zA-Z]{2,}")
# An international number inside text ("call +33 6 12 34 56 78"), as _LOOKS_LIKE_PHONE.
_EMBEDDED_PHONE = re.compile(r"\+\d[\d\s().\-]{6,}\d")


def scrub(value: object) -> object:
    """A copy of a JSON-like value with email addresses and phone numbers removed.

    Properties travel to vendors that forbid raw PII (Scanova rejects it with 422), so
    string values that are, or contain, an email or a phone number are dropped or masked.
    """
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not (is_pii_key(k) or looks_like_pii(v))}
    if isinstance(value, list):
        return [scrub(v) for v in value if not looks_like_pii(v)]
    if isinstance(value, str):
        return _EMBEDDED_PHONE.sub("[phone removed]", _EMBEDDED_EMAIL.sub("[email removed]", value))
    return value
