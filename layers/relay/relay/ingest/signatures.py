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
from collections.abc import Mapping, Sequence

from relay.errors import MissingSignatureError, SignatureError
from relay.ingest.signing import (
    TimestampedHmac,
    b64,
    check_signed,
    hex_digest,
    hmac_sha256,
    one_timestamp,
    parse_timestamp,
    require_header,
    split_params,
    usable_secrets,
    utf8,
    values_of,
)

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

# --- Stripe ----------------------------------------------------------------------------------------

_STRIPE = TimestampedHmac("Stripe-Signature v1 signature", encode=hex_digest)


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
    secrets = usable_secrets(secrets, "Stripe")
    header = require_header(header, "Stripe-Signature")
    pairs = split_params(header, ",", "=")
    t = one_timestamp(pairs, "t", "Stripe-Signature header")
    signatures = values_of(pairs, "v1")
    if not signatures:
        raise SignatureError("no v1 signature in Stripe-Signature header")
    return _STRIPE.verify(utf8(f"{t}.") + body, t, signatures, secrets, tolerance=tolerance, now=now)


# --- HubSpot ---------------------------------------------------------------------------------------

# HubSpot signs v3 over the URI with exactly these escapes decoded (its "Validate the v3 request
# signature" table); every other escape, e.g. %20 or %26, stays as sent. Hex digits are
# case-insensitive in percent-encoding (RFC 3986 §2.1), hence the IGNORECASE.
_HUBSPOT_DECODED = {f"%{ord(c):02X}": c for c in ":/?@!$'()*,;"}
_HUBSPOT_ESCAPE = re.compile("|".join(_HUBSPOT_DECODED), re.IGNORECASE)
_HUBSPOT_V3 = TimestampedHmac("X-HubSpot-Signature-v3", encode=b64, units_per_second=1000)


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
    secrets = usable_secrets(secrets, "HubSpot")
    signature = require_header(signature, "X-HubSpot-Signature-v3")
    ts = parse_timestamp(
        require_header(timestamp_ms, "X-HubSpot-Request-Timestamp"), "X-HubSpot-Request-Timestamp header"
    )
    signed = utf8(f"{method.upper()}{_hubspot_v3_uri(uri)}") + body + utf8(ts)
    return _HUBSPOT_V3.verify(signed, ts, [signature], secrets, tolerance=tolerance, now=now)


def verify_hubspot_v2(
    *, method: str, uri: str, body: bytes, signature: str | None, secrets: Sequence[str]
) -> None:
    """Check `X-HubSpot-Signature` version v2: hex SHA-256 of secret + method + uri + body.

    A plain hash, not an HMAC, and no timestamp: that is HubSpot's legacy scheme, not a choice here.
    """
    secrets = usable_secrets(secrets, "HubSpot")
    signature = require_header(signature, "X-HubSpot-Signature")
    rest = utf8(f"{method.upper()}{uri}") + body
    expected = [hex_digest(hashlib.sha256(utf8(secret) + rest).digest()) for secret in secrets]
    check_signed(expected, [signature], "X-HubSpot-Signature v2")


def verify_hubspot_v1(*, body: bytes, signature: str | None, secrets: Sequence[str]) -> None:
    """Check `X-HubSpot-Signature` version v1: hex SHA-256 of secret + body (legacy, no timestamp)."""
    secrets = usable_secrets(secrets, "HubSpot")
    signature = require_header(signature, "X-HubSpot-Signature")
    expected = [hex_digest(hashlib.sha256(utf8(secret) + body).digest()) for secret in secrets]
    check_signed(expected, [signature], "X-HubSpot-Signature v1")


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

_PADDLE = TimestampedHmac("Paddle-Signature h1 signature", encode=hex_digest)


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
    secrets = usable_secrets(secrets, "Paddle")
    header = require_header(header, "Paddle-Signature")
    pairs = split_params(header, ";", "=")
    ts = one_timestamp(pairs, "ts", "Paddle-Signature header")
    signatures = values_of(pairs, "h1")
    if not signatures:
        raise SignatureError("no h1 signature in Paddle-Signature header")
    return _PADDLE.verify(utf8(f"{ts}:") + body, ts, signatures, secrets, tolerance=tolerance, now=now)


# --- Shopify ---------------------------------------------------------------------------------------


def verify_shopify(body: bytes, header: str | None, secrets: Sequence[str]) -> None:
    """Check `X-Shopify-Hmac-Sha256`: base64(HMAC-SHA256(app client secret, body)). No timestamp."""
    secrets = usable_secrets(secrets, "Shopify")
    header = require_header(header, "X-Shopify-Hmac-Sha256")
    expected = [b64(hmac_sha256(utf8(secret), body)) for secret in secrets]
    check_signed(expected, [header], "X-Shopify-Hmac-Sha256")


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


_STANDARD_WEBHOOKS = TimestampedHmac("webhook-signature v1 signature", encode=b64, key=_standard_webhooks_key)


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
    secrets = usable_secrets(secrets, "Standard Webhooks")
    msg_id = require_header(msg_id, "webhook-id")
    signature_header = require_header(signature_header, "webhook-signature")
    ts = parse_timestamp(require_header(timestamp, "webhook-timestamp"), "webhook-timestamp header")
    signatures = values_of(split_params(signature_header, " ", ","), "v1")
    if not signatures:
        raise SignatureError("no v1 signature in webhook-signature header")
    signed = utf8(f"{msg_id}.{ts}.") + body
    return _STANDARD_WEBHOOKS.verify(signed, ts, signatures, secrets, tolerance=tolerance, now=now)


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
    header = require_header(header, "Authorization")
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
        user_ok = hmac.compare_digest(user, utf8(expected_user))
        password_ok = hmac.compare_digest(password, utf8(expected_password))
        matched |= user_ok & password_ok
    if not matched:
        raise SignatureError("Authorization Basic credentials do not match any configured user")
