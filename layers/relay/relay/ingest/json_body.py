"""Untrusted JSON, read so that nothing after it can be surprised.

`loads(raw)` gives the document or raises ValueError (never RecursionError or a crash later):
- nesting is bounded before parsing by a linear scan of the raw bytes, so a body nested
  thousands of levels deep costs one pass and never reaches a recursive parser, validator,
  JMESPath search or serializer;
- numbers are exact: fractions are `Decimal` (a provider's 19.99 stays 19.99), NaN and
  Infinity are refused (RFC 8259 has no such numbers);
- duplicate keys are refused: the relay and the provider would each see a different value;
- strings must be valid Unicode: a lone surrogate escape ("\\ud800") would crash hashing,
  logging, SQS and DynamoDB much later.
"""

from __future__ import annotations

import json
import operator
import re
from decimal import Decimal
from itertools import accumulate, count
from typing import Any

MAX_DEPTH = 64  # the deepest real payload seen (a Stripe invoice) nests 11 levels

# Brackets as one byte per open and one per close: see too_deep.
_OPEN, _PAIR = b"(", b"()"
_BRACKETS = bytes.maketrans(b"[{]}", b"(())")
_WEIGHTS = bytes.maketrans(b"()", b"\x02\x00")
_SCAN_FROM = 64 * 1024
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON document in `raw`; ValueError (with a reason) for anything else."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if too_deep(data, max_depth):
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        document = json.loads(
            data, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_object
        )
    except RecursionError as exc:  # unreachable after the scan; kept so no input can crash
        raise ValueError("JSON nested too deeply") from exc
    if _SURROGATE_ESCAPE.search(data):
        _check_unicode(document)
    return document


def too_deep(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when arrays and objects in JSON text nest deeper than `limit`, in linear time.

    Only C-speed bytes operations: escaped backslashes and quotes are dropped, so the quotes
    left pair up and what lies between a pair is string text, whose brackets do not count. The
    brackets left become one byte per open and one per close. A pass removes every innermost
    empty pair, so a balanced text loses exactly one level a pass; `limit + 1` opens in a row
    settle it at once. A large text still bracketed after two passes gets one exact running-sum
    scan instead of up to `limit` copies of itself.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # too few brackets to nest deeper, wherever they are (most webhooks)
    kept = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    brackets = b"".join(kept.split(b'"')[::2]).translate(_BRACKETS)
    deep = _OPEN * (limit + 1)
    for peeled in range(limit):
        if deep in brackets:
            return True
        if peeled >= 2 and len(brackets) > _SCAN_FROM:
            return _deepest(brackets) > limit - peeled
        reduced = brackets.replace(_PAIR, b"")
        if reduced == brackets:  # nothing left, or unbalanced: json.loads says why
            return False
        brackets = reduced
    return bool(brackets)  # anything left after `limit` levels is deeper


def _deepest(brackets: bytes) -> int:
    # An open weighs 2, a close 0: after n brackets the running sum minus n is the depth there.
    return max(map(operator.sub, accumulate(brackets.translate(_WEIGHTS)), count(1)), default=0)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):  # the key itself is not named: it may be an email address
        raise ValueError("duplicate key in a JSON object")
    return document


def _check_unicode(document: Any) -> None:
    try:
        json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("JSON string with a lone surrogate escape (not valid Unicode)") from exc
