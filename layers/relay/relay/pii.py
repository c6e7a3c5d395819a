"""PII normalization and SHA-256 hashing, Meta/TikTok style.

Raw email, phone, names and address parts are normalized as Meta's Conversions API
documents ("customer information parameters") and hashed here, in the ingest
function; only the hex digests travel further. A value that already is a SHA-256
hex digest passes through (lower-cased), so a backend may send pre-hashed data.

Every pattern here runs on untrusted (if signed) payload text, so each is linear: every
repetition is bounded, and what is matched is capped at the lengths an address or a
number can have (RFC 5321: 64 characters before the @, 254 in all; E.164 and its
formatting: 40). A longer string is not an email or a phone number.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import unquote, unquote_plus, urlsplit

MAX_EMAIL_CHARS = 254
MAX_LOCAL_PART_CHARS = 64
MAX_PHONE_CHARS = 40
MAX_KEY_CHARS = 256  # a property name longer than this is dropped, unread
MAX_URL_CHARS = 8192  # a page URL longer than this is dropped, unread

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_WHITESPACE = re.compile(r"\s")
# Meta: names are lower-case with no punctuation; letters of any script stay (UTF-8).
_NOT_NAME = re.compile(r"[^\w\s]|[\d_]", re.UNICODE)
# Meta: city and state drop digits, spaces and punctuation.
_NOT_LOCATION = re.compile(r"[^\w]|[\d_]", re.UNICODE)
_NOT_DIGIT = re.compile(r"\D")
# An international number written with its '+' prefix; bare digit runs are too
# often order numbers or dates to treat as phones.
_LOOKS_LIKE_PHONE = re.compile(r"^\+\d[\d\s().\-]{6,38}$")
# Property keys naming contact data, matched word by word so that phone_number,
# customerEmail and billing-phone count as well as email and phone.
_PII_KEY_WORDS = frozenset({"email", "mail", "phone", "mobile", "tel", "telephone", "msisdn", "em", "ph"})
_KEY_WORD = re.compile(r"[A-Z]?[a-z]{1,64}|[A-Z]{1,64}(?![a-z])|\d{1,64}")


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


def _is_email(text: str) -> bool:
    """local@domain.tld within RFC 5321's lengths, no whitespace, one @ (no regex: linear)."""
    if len(text) > MAX_EMAIL_CHARS:
        return False
    local, at, domain = text.partition("@")
    return bool(
        at
        and 0 < len(local) <= MAX_LOCAL_PART_CHARS
        and "@" not in domain
        and "." in domain[1:-1]
        and not _WHITESPACE.search(text)
    )


def normalize_email(email: str) -> str | None:
    normalized = email.strip().lower()
    return normalized if _is_email(normalized) else None


def normalize_phone(phone: str, default_region: str | None = None) -> str | None:
    """Digits with the country code, no '+' or leading zeros (Meta's `ph`).

    `phonenumbers` resolves national numbers with the region (e.g. the billing
    country); without a region a number must carry its country code.
    """
    if len(phone) > MAX_PHONE_CHARS:
        return None
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
    """True for a property name such as email, phone_number, customerEmail or e-mail (and for
    one too long to read: dropped rather than kept unread)."""
    text = str(key)
    if len(text) > MAX_KEY_CHARS:
        return True
    return any(word.lower() in _PII_KEY_WORDS for word in _KEY_WORD.findall(text))


def looks_like_pii(value: object) -> bool:
    """True for a string that is an email address or a phone number."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return _is_email(text) or (len(text) <= MAX_PHONE_CHARS and bool(_LOOKS_LIKE_PHONE.match(text)))


# An address inside text: at most 64 characters before the @ are taken (a longer run still
# loses its last 64 and its domain), and the domain is at most 253.
_EMBEDDED_EMAIL = re.compile(r"[^@\s\"'<>]{1,64}@[^@\s\"'<>]{1,253}\.[a-zA-Z]{2,63}")
# An international number inside text ("call +33 6 12 34 56 78"), as _LOOKS_LIKE_PHONE.
_EMBEDDED_PHONE = re.compile(r"\+\d[\d\s().\-]{6,38}\d")


def _holds_pii(text: str) -> bool:
    return (
        looks_like_pii(text)
        or ("@" in text and _EMBEDDED_EMAIL.search(text) is not None)
        or ("+" in text and _EMBEDDED_PHONE.search(text) is not None)
    )


def _scrub_text(text: str) -> str:
    if "@" in text:  # str.__contains__ is a fast scan; the patterns cost more per character
        text = _EMBEDDED_EMAIL.sub("[email removed]", text)
    if "+" in text:
        text = _EMBEDDED_PHONE.sub("[phone removed]", text)
    return text


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
        return _scrub_text(value)
    return value


# --- URLs ----------------------------------------------------------------------------------

REDACTED_SEGMENT = "redacted"


def _decoded(text: str) -> tuple[str, ...]:
    # "+" is a space in a query, a literal plus elsewhere: a phone may be written either way.
    return (unquote_plus(text), unquote(text))


def _scrub_params(text: str) -> str:
    """`a=1&email=…&b=2` without the parameters whose name is contact data or whose name or
    value holds an email or a phone number; the others are kept exactly as sent."""
    kept = []
    for parameter in text.split("&"):
        name, _, value = parameter.partition("=")
        names, values = _decoded(name), _decoded(value)
        if any(is_pii_key(n) or _holds_pii(n) for n in names) or any(_holds_pii(v) for v in values):
            continue
        kept.append(parameter)
    return "&".join(kept)


def scrub_url(url: str | None) -> str | None:
    """The URL without what can identify a person: credentials (user:password@), query
    parameters and fragment parameters holding an email or a phone number (by name or by
    value), path segments holding one. Click ids and campaign tags (fbclid, gclid, ttclid,
    utm_*, …) stay as sent. A value that does not parse as a URL, or longer than any browser
    keeps (MAX_URL_CHARS), is dropped (None)."""
    if url is None or len(url) > MAX_URL_CHARS:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced [ in the host
        return None
    segments = [REDACTED_SEGMENT if any(map(_holds_pii, _decoded(s))) else s for s in parts.path.split("/")]
    fragment = parts.fragment
    if "=" in fragment:
        fragment = _scrub_params(fragment)
    elif any(map(_holds_pii, _decoded(fragment))):
        fragment = ""
    scrubbed = parts._replace(
        netloc=parts.netloc.rpartition("@")[2],
        path="/".join(segments),
        query=_scrub_params(parts.query),
        fragment=fragment,
    )
    return url if scrubbed == parts else scrubbed.geturl()
