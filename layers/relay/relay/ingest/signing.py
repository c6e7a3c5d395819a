"""What the signature schemes share: constant-time HMAC checks, timestamps, header parsing.

Bodies are the raw bytes as received. Every comparison is constant-time (`hmac.compare_digest`,
on bytes so that a non-ASCII header cannot raise). Reasons name the header and the problem;
they never contain a secret, the body or an attacker-supplied header value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence

from relay.errors import MissingSignatureError, SignatureError, StaleTimestampError

# Unix time in seconds or milliseconds; the length cap keeps absurd values from overflowing float().
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


def utf8(text: str) -> bytes:
    # surrogatepass: a header value can never make encoding (and so the request) crash.
    return text.encode("utf-8", "surrogatepass")


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def b64(digest: bytes) -> bytes:
    return base64.b64encode(digest)


def hex_digest(digest: bytes) -> bytes:
    return digest.hex().encode("ascii")


def usable_secrets(secrets: Sequence[str], provider: str) -> list[str]:
    """The configured secrets that may be used; raises if there is none.

    Empty secrets are dropped: an HMAC keyed with "" is one anybody can compute.
    """
    if isinstance(secrets, str | bytes):
        # A bare string would be iterated character by character, i.e. one-letter secrets.
        raise TypeError("secrets must be a sequence of strings, not a single string")
    usable = [secret for secret in secrets if secret]
    if not usable:
        raise SignatureError(f"no {provider} signing secret configured")
    return usable


def check_signed(expected: Sequence[bytes], received: Sequence[str], what: str) -> None:
    """Raise unless one expected signature (one per configured secret) equals one received signature.

    Every comparison is constant-time. `any` stops at the first match, which only tells a sender
    who already holds a valid signature that it is valid.
    """
    received_bytes = [utf8(signature) for signature in received]
    if not any(hmac.compare_digest(e, r) for e in expected for r in received_bytes):
        raise SignatureError(f"{what} does not match any of the {len(expected)} configured secret(s)")


def check_timestamp(timestamp: float, tolerance: float | None, now: float | None) -> None:
    """Reject a timestamp (Unix seconds) more than `tolerance` s in the past or in the future.

    A falsy tolerance disables the check. The future side matters as much as the past side: a
    far-future timestamp would otherwise make a captured request replayable for that long.
    """
    if not tolerance:
        return
    age = (time.time() if now is None else now) - timestamp
    if age > tolerance:
        raise StaleTimestampError(f"timestamp {age:.0f} s old, tolerance {tolerance} s")
    if -age > tolerance:
        raise StaleTimestampError(f"timestamp {-age:.0f} s in the future, tolerance {tolerance} s")


def parse_timestamp(value: str | int, what: str) -> str:
    """The timestamp exactly as sent (it is part of the signed content), checked to be an integer."""
    text = str(value).strip()
    if not _TIMESTAMP.fullmatch(text):
        raise SignatureError(f"timestamp in {what} is not a Unix time integer")
    return text


def split_params(header: str, item_sep: str, kv_sep: str) -> list[tuple[str, str]]:
    """`k=v,k=v` (Stripe), `k=v;k=v` (Paddle), `v1,sig v1,sig` (Standard Webhooks) as pairs.

    Keys may repeat (several signatures during a rotation); items without `kv_sep` are dropped.
    """
    pairs = []
    for item in header.split(item_sep):
        key, sep, value = item.strip().partition(kv_sep)
        if sep:
            pairs.append((key.strip(), value.strip()))
    return pairs


def values_of(pairs: list[tuple[str, str]], key: str) -> list[str]:
    return [value for k, value in pairs if k == key and value]


def one_timestamp(pairs: list[tuple[str, str]], key: str, what: str) -> str:
    values = [value for k, value in pairs if k == key]
    if not values:
        raise SignatureError(f"no {key}= timestamp in {what}")
    if len(values) > 1:
        raise SignatureError(f"more than one {key}= timestamp in {what}")
    return parse_timestamp(values[0], what)


def require_header(value: str | int | None, name: str) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        raise MissingSignatureError(f"missing {name} header")
    return text


class TimestampedHmac:
    """One shape shared by Stripe, Paddle, Standard Webhooks and HubSpot v3: HMAC-SHA256 of a
    message that includes a timestamp, sent encoded (hex or base64), with a tolerance on the
    timestamp's age. The signature is checked first, so a stale error means "authentic but old"."""

    def __init__(
        self,
        what: str,
        *,
        encode: Callable[[bytes], bytes],
        key: Callable[[str], bytes] = utf8,
        units_per_second: int = 1,
    ):
        self.what = what  # the header and signature version, for reasons
        self._encode = encode
        self._key = key  # secret → HMAC key (Standard Webhooks decodes its whsec_ secrets)
        self._units_per_second = units_per_second  # HubSpot's timestamps are milliseconds

    def verify(
        self,
        message: bytes,
        timestamp: str,
        received: Sequence[str],
        secrets: Sequence[str],
        *,
        tolerance: float | None,
        now: float | None,
    ) -> int:
        expected = [self._encode(hmac_sha256(self._key(secret), message)) for secret in secrets]
        check_signed(expected, received, self.what)
        check_timestamp(int(timestamp) / self._units_per_second, tolerance, now)
        return int(timestamp)
