"""Webhook signature checks for every inbound provider, each exactly as the provider documents it.

Pure functions: no I/O, no clock unless `now` is omitted. Bodies are the raw bytes as received —
re-serialised JSON does not verify. Every comparison is constant-time (`hmac.compare_digest`, on
bytes so that a non-ASCII header cannot raise). Each function takes a *sequence* of secrets so a
secret can be rotated with no downtime: the old and the new one are both accepted meanwhile.

Failures raise `SignatureError` (header present but wrong), `MissingSignatureError` (nothing to
check) or `StaleTimestampError` (authentic but outside the tolerance). Reasons name the header and
the problem; they never contain a secret, the body or an attacker-supplied header value.

The signature is checked before the timestamp, so a `StaleTimestampError` always means "signed by
the provider, but too old/new" (a replay or a skewed clock), never "someone sent garbage".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence

from relay.exceptions import MissingSignatureError, SignatureError, StaleTimestampError

__all__ = [
    "verify_basic_auth",
    "verify_hubspot",
    "verify_hubspot_v1",
    "verify_hubspot_v2",
    "verify_hubspot_v3",
    "verify_paddle",
    "verify_shopify",
    "verify_standard_webhooks",
    "verify_stripe",
]

# Unix time in seconds or milliseconds; the length cap keeps absurd values from overflowing float().
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


# --- shared helpers --------------------------------------------------------------------------------


def _b(text: str) -> bytes:
    # surrogatepass: a header value can never make encoding (and so the request) crash.
    return text.encode("utf-8", "surrogatepass")


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _b64(digest: bytes) -> bytes:
    return base64.b64encode(digest)


def _hex(digest: bytes) -> bytes:
    return digest.hex().encode("ascii")


def _usable(secrets: Sequence[str], provider: str) -> list[str]:
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


def _check_signed(expected: Sequence[bytes], received: Sequence[str], what: str) -> None:
    """Raise unless one expected signature (one per configured secret) equals one received signature.

    Every comparison is constant-time. `any` stops at the first match, which only tells a sender
    who already holds a valid signature that it is valid.
    """
    received_bytes = [_b(signature) for signature in received]
    if not any(hmac.compare_digest(e, r) for e in expected for r in received_bytes):
        raise SignatureError(f"{what} does not match any of the {len(expected)} configured secret(s)")


def _check_timestamp(timestamp: float, tolerance: float | None, now: float | None) -> None:
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


def _parse_timestamp(value: str | int, what: str) -> str:
    """The timestamp exactly as sent (it is part of the signed content), checked to be an integer."""
    text = str(value).strip()
    if not _TIMESTAMP.fullmatch(text):
        raise SignatureError(f"timestamp in {what} is not a Unix time integer")
    return text


def _split_params(header: str, item_sep: str, kv_sep: str) -> list[tuple[str, str]]:
    """`k=v,k=v` (Stripe), `k=v;k=v` (Paddle), `v1,sig v1,sig` (Standard Webhooks) as pairs.

    Keys may repeat (several signatures during a rotation); items without `kv_sep` are dropped.
    """
    pairs = []
    for item in header.split(item_sep):
        key, sep, value = item.strip().partition(kv_sep)
        if sep:
            pairs.append((key.strip(), value.strip()))
    return pairs


def _values(pairs: list[tuple[str, str]], key: str) -> list[str]:
    return [value for k, value in pairs if k == key and value]


def _one_timestamp(pairs: list[tuple[str, str]], key: str, what: str) -> str:
    values = [value for k, value in pairs if k == key]
    if not values:
        raise SignatureError(f"no {key}= timestamp in {what}")
    if len(values) > 1:
        raise SignatureError(f"more than one {key}= timestamp in {what}")
    return _parse_timestamp(values[0], what)


def _require_header(value: str | int | None, name: str) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        raise MissingSignatureError(f"missing {name} header")
    return text


# --- Stripe ----------------------------------------------------------------------------------------


def verify_stripe(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int | None = 300,
    now: float | None = None,
) -> int:
    """Check a `Stripe-Signature: t=…,v1=…[,v1=…][,v0=…]` header; return its timestamp.

    Stripe signs `"{t}." + body` with HMAC-SHA256 keyed with the whole `whsec_…` string (UTF-8, not
    decoded) and sends it hex in `v1`. Only `v1` counts, as in Stripe's SDKs: `v0` is a test-mode
    signature made with a fake secret.
    """
    secrets = _usable(secrets, "Stripe")
    header = _require_header(header, "Stripe-Signature")
    pairs = _split_params(header, ",", "=")
    t = _one_timestamp(pairs, "t", "Stripe-Signature header")
    signatures = _values(pairs, "v1")
    if not signatures:
        raise SignatureError("no v1 signature in Stripe-Signature header")
    signed = _b(f"{t}.") + body
    expected = [_hex(_hmac_sha256(_b(secret), signed)) for secret in secrets]
    _check_signed(expected, signatures, "Stripe-Signature v1 signature")
    _check_timestamp(int(t), tolerance, now)
    return int(t)


# --- HubSpot ---------------------------------------------------------------------------------------

# HubSpot signs v3 over the URI with exactly these escapes decoded (its "Validate the v3 request
# signature" table); every other escape, e.g. %20 or %26, stays as sent. Hex digits are
# case-insensitive in percent-encoding (RFC 3986 §2.1), hence the IGNORECASE.
_HUBSPOT_DECODED = {f"%{ord(c):02X}": c for c in ":/?@!$'()*,;"}
_HUBSPOT_ESCAPE = re.compile("|".join(_HUBSPOT_DECODED), re.IGNORECASE)


def _hubspot_v3_uri(uri: str) -> str:
    # "%25" is not in the table, so an escaped escape such as "%253A" is left exactly as sent.
    return _HUBSPOT_ESCAPE.sub(lambda m: _HUBSPOT_DECODED[m.group().upper()], uri)


def verify_hubspot_v3(
    *,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp_ms: str | int | None,
    secrets: Sequence[str],
    tolerance: int | None = 300,
    now: float | None = None,
) -> int:
    """Check `X-HubSpot-Signature-v3` (+ `X-HubSpot-Request-Timestamp`, ms); return the timestamp (ms).

    base64(HMAC-SHA256(client secret, method + uri + body + timestamp)). `uri` is the full URL
    HubSpot called (scheme, host, path, query in the order sent); the listed escapes are decoded
    here. `tolerance` is in seconds (HubSpot: reject older than 5 minutes).
    """
    secrets = _usable(secrets, "HubSpot")
    signature = _require_header(signature, "X-HubSpot-Signature-v3")
    ts = _parse_timestamp(
        _require_header(timestamp_ms, "X-HubSpot-Request-Timestamp"), "X-HubSpot-Request-Timestamp header"
    )
    signed = _b(f"{method.upper()}{_hubspot_v3_uri(uri)}") + body + _b(ts)
    expected = [_b64(_hmac_sha256(_b(secret), signed)) for secret in secrets]
    _check_signed(expected, [signature], "X-HubSpot-Signature-v3")
    _check_timestamp(int(ts) / 1000, tolerance, now)
    return int(ts)


def verify_hubspot_v2(
    *, method: str, uri: str, body: bytes, signature: str | None, secrets: Sequence[str]
) -> None:
    """Check `X-HubSpot-Signature` version v2: hex SHA-256 of secret + method + uri + body.

    A plain hash, not an HMAC, and no timestamp: that is HubSpot's legacy scheme, not a choice here.
    """
    secrets = _usable(secrets, "HubSpot")
    signature = _require_header(signature, "X-HubSpot-Signature")
    rest = _b(f"{method.upper()}{uri}") + body
    expected = [_hex(hashlib.sha256(_b(secret) + rest).digest()) for secret in secrets]
    _check_signed(expected, [signature], "X-HubSpot-Signature v2")


def verify_hubspot_v1(*, body: bytes, signature: str | None, secrets: Sequence[str]) -> None:
    """Check `X-HubSpot-Signature` version v1: hex SHA-256 of secret + body (legacy, no timestamp)."""
    secrets = _usable(secrets, "HubSpot")
    signature = _require_header(signature, "X-HubSpot-Signature")
    expected = [_hex(hashlib.sha256(_b(secret) + body).digest()) for secret in secrets]
    _check_signed(expected, [signature], "X-HubSpot-Signature v1")


def verify_hubspot(
    headers: Mapping[str, str],
    *,
    method: str,
    uri: str,
    body: bytes,
    secrets: Sequence[str],
    tolerance: int | None = 300,
    now: float | None = None,
) -> int | None:
    """Check whichever HubSpot signature the request carries, v3 first. `headers` has lower-case keys.

    Returns the v3 timestamp (ms), or None for v1/v2, which carry none. When v3 is present it is the
    only one checked, so a bad v3 is not rescued by a replayable v1/v2.
    """
    if headers.get("x-hubspot-signature-v3"):
        return verify_hubspot_v3(
            method=method,
            uri=uri,
            body=body,
            signature=headers["x-hubspot-signature-v3"],
            timestamp_ms=headers.get("x-hubspot-request-timestamp"),
            secrets=secrets,
            tolerance=tolerance,
            now=now,
        )
    signature = headers.get("x-hubspot-signature")
    if not signature:
        raise MissingSignatureError("missing X-HubSpot-Signature-v3 and X-HubSpot-Signature headers")
    version = (headers.get("x-hubspot-signature-version") or "").strip().lower()
    if version == "v2":
        verify_hubspot_v2(method=method, uri=uri, body=body, signature=signature, secrets=secrets)
    elif version == "v1":
        verify_hubspot_v1(body=body, signature=signature, secrets=secrets)
    elif not version:
        raise SignatureError("X-HubSpot-Signature present but X-HubSpot-Signature-Version missing")
    else:
        raise SignatureError("unsupported X-HubSpot-Signature-Version (expected v1 or v2)")
    return None


# --- Paddle ----------------------------------------------------------------------------------------


def verify_paddle(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int | None = 5,
    now: float | None = None,
) -> int:
    """Check `Paddle-Signature: ts=…;h1=…[;h1=…]`; return its timestamp.

    hex(HMAC-SHA256(secret key, "{ts}:" + body)). Paddle's SDK defaults to 5 s of tolerance.
    """
    secrets = _usable(secrets, "Paddle")
    header = _require_header(header, "Paddle-Signature")
    pairs = _split_params(header, ";", "=")
    ts = _one_timestamp(pairs, "ts", "Paddle-Signature header")
    signatures = _values(pairs, "h1")
    if not signatures:
        raise SignatureError("no h1 signature in Paddle-Signature header")
    signed = _b(f"{ts}:") + body
    expected = [_hex(_hmac_sha256(_b(secret), signed)) for secret in secrets]
    _check_signed(expected, signatures, "Paddle-Signature h1 signature")
    _check_timestamp(int(ts), tolerance, now)
    return int(ts)


# --- Shopify ---------------------------------------------------------------------------------------


def verify_shopify(body: bytes, header: str | None, secrets: Sequence[str]) -> None:
    """Check `X-Shopify-Hmac-Sha256`: base64(HMAC-SHA256(app client secret, body)). No timestamp."""
    secrets = _usable(secrets, "Shopify")
    header = _require_header(header, "X-Shopify-Hmac-Sha256")
    expected = [_b64(_hmac_sha256(_b(secret), body)) for secret in secrets]
    _check_signed(expected, [header], "X-Shopify-Hmac-Sha256")


# --- Standard Webhooks -----------------------------------------------------------------------------


def _standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret. Like the official SDK, the prefix is optional and
    missing base64 padding is tolerated."""
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise SignatureError("a configured Standard Webhooks secret is not whsec_ followed by base64")
    return key


def verify_standard_webhooks(
    body: bytes,
    *,
    msg_id: str | None,
    timestamp: str | int | None,
    signature_header: str | None,
    secrets: Sequence[str],
    tolerance: int | None = 300,
    now: float | None = None,
) -> int:
    """Check `webhook-id`, `webhook-timestamp` and `webhook-signature`; return the timestamp.

    base64(HMAC-SHA256(decoded secret, "{id}.{timestamp}." + body)); the signature header holds
    space-separated `v1,<base64>` entries. Other versions (e.g. asymmetric `v1a`) are ignored.
    """
    secrets = _usable(secrets, "Standard Webhooks")
    msg_id = _require_header(msg_id, "webhook-id")
    signature_header = _require_header(signature_header, "webhook-signature")
    ts = _parse_timestamp(_require_header(timestamp, "webhook-timestamp"), "webhook-timestamp header")
    signatures = _values(_split_params(signature_header, " ", ","), "v1")
    if not signatures:
        raise SignatureError("no v1 signature in webhook-signature header")
    signed = _b(f"{msg_id}.{ts}.") + body
    expected = [_b64(_hmac_sha256(_standard_webhooks_key(secret), signed)) for secret in secrets]
    _check_signed(expected, signatures, "webhook-signature v1 signature")
    _check_timestamp(int(ts), tolerance, now)
    return int(ts)


# --- HTTP Basic (Pipedrive) ------------------------------------------------------------------------


def verify_basic_auth(header: str | None, credentials: Sequence[tuple[str, str]]) -> None:
    """Check `Authorization: Basic base64(user:password)` against each configured pair.

    Pipedrive webhooks are not signed; their only authentication is HTTP Basic. Every pair is
    compared, user and password alike, with no early exit, so timing reveals neither which user
    exists nor how much of a password was right.
    """
    pairs = [(user, password) for user, password in credentials if password]  # "" would admit anyone
    if not pairs:
        raise SignatureError("no Basic auth credentials configured")
    header = _require_header(header, "Authorization")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":  # auth-scheme is case-insensitive (RFC 9110 §11.1)
        raise SignatureError("Authorization header is not Basic")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("Authorization Basic credentials are not base64") from None
    # RFC 7617: the user-id cannot contain ":", the password can.
    user, colon, password = decoded.partition(b":")
    if not colon:
        raise SignatureError("Authorization Basic credentials lack the user:password colon")
    matched = False
    for expected_user, expected_password in pairs:
        user_ok = hmac.compare_digest(user, _b(expected_user))
        password_ok = hmac.compare_digest(password, _b(expected_password))
        matched |= user_ok & password_ok
    if not matched:
        raise SignatureError("Authorization Basic credentials do not match any configured user")
