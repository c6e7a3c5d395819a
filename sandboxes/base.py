"""Shared machinery of the vendor sandboxes: HTTP server, records, faults, rate limits, validation.

A `Sandbox` is a real HTTP server on loopback (standard library only) that enforces one
vendor's documented contract. This module owns everything the four vendors have in
common so that a vendor module only declares its routes, schemas and error shape:

- `Sandbox`: server thread, routing, request log, accepted/duplicate records, the
  `/_sandbox/` control endpoints and the `start`/`stop`/context-manager lifecycle.
- `FaultPlan`: injected errors, 429s, latency and hung requests, applied before any
  auth or validation; a faulted request records no event.
- `RateLimiter`: sliding 60-second window per key, counting requests or events.
- `Schema`/`required`/`optional` and the checks below: a small declarative validator
  whose `Problem`s each vendor renders in its own error body.

Behaviour shared by all vendors where the documents are silent:
- JSON `null` in an optional field means "absent" (pagent's own Python example sends
  `"label": None`); `null` in a required field is an error.
- Unknown fields are ignored unless a schema is `closed` (used where a dropped key
  would silently lose attribution data, e.g. identity objects).
- `NaN`/`Infinity` literals are not JSON and are rejected as invalid JSON.
- Bodies over `max_body_bytes` (1 MiB) get 413 in the vendor's error shape.
- Rejected requests (any 4xx) do not use up rate-limit budget.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import urlsplit

from iso4217 import Currency

CONTROL_PREFIX = "/_sandbox/"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
RATE_WINDOW_SECONDS = 60.0
# An oversized body is read and discarded (so the client sees the 413 instead of a
# reset connection) up to this size; beyond it the connection is simply closed.
_MAX_DRAIN_BYTES = 16 * 1024 * 1024


# --------------------------------------------------------------------------- validation


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


# --------------------------------------------------------------------------- requests and errors


class InvalidJson(ValueError):
    """The body is not JSON (or not declared as JSON)."""


class ApiError(Exception):
    """A vendor error answer; each sandbox renders it in its own body shape."""

    def __init__(
        self,
        status: int,
        message: str,
        problems: Sequence[Problem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = tuple(problems)
        self.headers = dict(headers or {})

    @classmethod
    def invalid(cls, status: int, problems: Sequence[Problem]) -> ApiError:
        return cls(status, "; ".join(problem.describe() for problem in problems), problems)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def count_events(payload: Any) -> int:
    """How many events a body carries: an array, an {"events": [...]} envelope, or one event."""
    if isinstance(payload, list):
        return len(payload)
    if isinstance(payload, dict):
        events = payload.get("events")
        return len(events) if isinstance(events, list) else 1
    return 0


class Request:
    """A vendor request as the route handlers see it; the body is parsed once, up front."""

    def __init__(self, method: str, path: str, headers: Mapping[str, str], body: bytes, client: str):
        self.method = method
        self.path = path
        self.headers = headers
        self.client = client
        self.params: dict[str, str] = {}
        try:
            self._payload, self._error = json.loads(body, parse_constant=_reject_constant), None
        except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
            self._payload, self._error = None, str(exc)

    @property
    def n_events(self) -> int:
        return 0 if self._error is not None else count_events(self._payload)

    def json(self, require_content_type: bool = True) -> Any:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if require_content_type and content_type != "application/json":
            raise InvalidJson("Content-Type must be application/json")
        if self._error is not None:
            raise InvalidJson(self._error)
        return self._payload


@dataclass
class Response:
    status: int
    body: Any = None  # None: no body (e.g. 204)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # a regular expression the whole path must match; named groups -> params
    handler: Callable[[Request], Response]

    def match(self, path: str) -> dict[str, str] | None:
        found = re.fullmatch(self.pattern, path)
        return found.groupdict() if found else None


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class FaultPlan:
    """Failures to inject. The three rates share one random roll, so they must sum to <= 1."""

    error_rate: float = 0.0
    error_status: int = 503
    rate_429: float = 0.0
    retry_after: int = 1
    latency_ms: float = 0.0
    timeout_rate: float = 0.0
    hang_seconds: float = 5.0
    fail_next: int = 0
    seed: int | None = None

    def __post_init__(self) -> None:
        rates = (self.error_rate, self.rate_429, self.timeout_rate)
        if not all(0 <= rate <= 1 for rate in rates) or sum(rates) > 1:
            raise ValueError("error_rate, rate_429 and timeout_rate must each be in 0..1 and sum to <= 1")
        if not 400 <= self.error_status <= 599:
            raise ValueError("error_status must be a 4xx or 5xx status")
        if min(self.retry_after, self.latency_ms, self.hang_seconds, self.fail_next) < 0:
            raise ValueError("retry_after, latency_ms, hang_seconds and fail_next must not be negative")

    @classmethod
    def from_json(cls, data: Any) -> FaultPlan:
        if not isinstance(data, dict):
            raise ValueError("the fault plan must be a JSON object")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault plan fields: {', '.join(sorted(unknown))}")
        return cls(**data)


class Fault(Enum):
    TIMEOUT = "timeout"
    THROTTLE = "rate_429"
    ERROR = "error"


class FaultInjector:
    """Decides, per request, which fault (if any) the current plan injects."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.set(FaultPlan())

    def set(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plan = plan
            self._rng = random.Random(plan.seed)
            self._fail_next = plan.fail_next

    def draw(self) -> tuple[FaultPlan, Fault | None]:
        with self._lock:
            plan = self.plan
            if self._fail_next > 0:
                self._fail_next -= 1
                return plan, Fault.ERROR
            if not (plan.timeout_rate or plan.rate_429 or plan.error_rate):
                return plan, None  # leave the seeded sequence untouched when nothing is random
            roll = self._rng.random()
            threshold = 0.0
            for fault, rate in (
                (Fault.TIMEOUT, plan.timeout_rate),
                (Fault.THROTTLE, plan.rate_429),
                (Fault.ERROR, plan.error_rate),
            ):
                threshold += rate
                if roll < threshold:
                    return plan, fault
            return plan, None


# --------------------------------------------------------------------------- rate limits


class RateLimiter:
    """Sliding-window limiter: at most `limit` units per key in any `window` seconds.

    A unit is whatever the vendor counts: a request, or (Scanova) an event. A request
    that does not fit is refused whole and consumes nothing.
    """

    def __init__(self, limit: int | None, window: float = RATE_WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._spent: dict[str, deque[tuple[float, int]]] = {}

    def reset(self) -> None:
        with self._lock:
            self._spent.clear()

    def acquire(self, key: str, cost: int = 1) -> int | None:
        """Spend `cost` units; None if allowed, else the whole seconds to wait (Retry-After)."""
        if self.limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            spent = self._spent.setdefault(key, deque())
            while spent and spent[0][0] <= now - self.window:
                spent.popleft()
            used = sum(units for _, units in spent)
            if used + cost <= self.limit:
                spent.append((now, cost))
                return None
            return max(1, math.ceil(self._wait(spent, used, cost, now)))

    def _wait(self, spent: deque[tuple[float, int]], used: int, cost: int, now: float) -> float:
        if cost > self.limit:
            return self.window  # never fits; tell the client to back off a full window
        for at, units in spent:
            used -= units
            if used + cost <= self.limit:
                return at + self.window - now
        return self.window


# --------------------------------------------------------------------------- records


class Ledger:
    """Thread-safe record of accepted events, deduplicated copies and every vendor request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._accepted: list[dict[str, Any]] = []
            self._duplicates: list[dict[str, Any]] = []
            self._seen: set[Any] = set()
            self._requests: list[dict[str, Any]] = []

    def record(self, event: dict[str, Any], dedupe_key: Any = None) -> bool:
        """Store an accepted event; False (and kept aside as a duplicate) if its key was seen."""
        with self._lock:
            if dedupe_key is not None and dedupe_key in self._seen:
                self._duplicates.append(event)
                return False
            if dedupe_key is not None:
                self._seen.add(dedupe_key)
            self._accepted.append(event)
            return True

    def log_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)

    def accepted(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._accepted)

    def duplicates(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._duplicates)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._requests)


# --------------------------------------------------------------------------- HTTP server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so benchmarks measure the vendor, not TCP setup
    timeout = 60  # drop idle keep-alive connections eventually
    # Headers and body go out in separate writes; with Nagle on, the second waits for
    # the client's delayed ACK (~40 ms a request on loopback).
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.sandbox.serve_http(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is available through `Sandbox.requests()`."""

    def read_body(self, limit: int) -> bytes | None:
        """The request body, or None when it exceeds `limit` (the body is then discarded)."""
        try:
            size = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            size, self.close_connection = 0, True  # unframeable request: answer, then hang up
        if size <= limit:
            return self.rfile.read(size)
        self.close_connection = True
        remaining = size if size <= _MAX_DRAIN_BYTES else 0
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
        return None

    def send(self, response: Response) -> None:
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.body is not None:
            self.send_header("Content-Type", "application/json")
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class Sandbox:
    """Base of the vendor sandboxes. Subclasses declare `routes()` and, if needed, `error_body()`.

    Subclass contract:
    - `name`: short vendor key ("scanova", ...).
    - `invalid_json_status`: the status the vendor answers for an unparseable body.
    - `routes()`: the vendor endpoints; handlers take a `Request` and return a `Response`
      or raise `ApiError`, and store what they accept with `record()`.
    - `error_body(error)`: the vendor's error JSON (default `{"error": message}`).
    """

    name: ClassVar[str] = "sandbox"
    invalid_json_status: ClassVar[int] = 400

    def __init__(self, *, rate_limit: int | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.max_body_bytes = max_body_bytes
        self._ledger = Ledger()
        self._faults = FaultInjector()
        self._limiter = RateLimiter(rate_limit)
        self._routes = tuple(self.routes())
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # Set on stop so hung (timeout-fault) and delayed requests are released at once.
        self._closing = threading.Event()

    # ---- vendor hooks

    def routes(self) -> Sequence[Route]:
        raise NotImplementedError

    def error_body(self, error: ApiError) -> Any:
        return {"error": error.message}

    # ---- lifecycle

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        if self._server is not None:
            raise RuntimeError(f"{self.name} sandbox is already running at {self.url}")
        self._closing.clear()
        self._server = _Server((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # short, so stop() returns quickly in tests
            name=f"{self.name}-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.name} sandbox is not running")
        host, port = self._server.server_address[:2]
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"

    def __enter__(self) -> Sandbox:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- inspection and control

    def accepted(self) -> list[dict[str, Any]]:
        return self._ledger.accepted()

    def duplicates(self) -> list[dict[str, Any]]:
        return self._ledger.duplicates()

    def requests(self) -> list[dict[str, Any]]:
        return self._ledger.requests()

    def set_faults(self, plan: FaultPlan) -> None:
        self._faults.set(plan)

    def reset(self) -> None:
        self._ledger.clear()
        self._faults.set(FaultPlan())
        self._limiter.reset()

    # ---- helpers for vendor handlers

    def record(self, event: Mapping[str, Any], request: Request, dedupe_key: Any = None, **tags: Any) -> bool:
        """Store an accepted event as the vendor keeps it, tagged with the route that took it."""
        return self._ledger.record({**event, "_endpoint": request.path, **tags}, dedupe_key)

    def throttle(self, key: str, cost: int = 1) -> None:
        wait = self._limiter.acquire(key, cost)
        if wait is not None:
            raise ApiError(429, "rate limit exceeded", headers={"Retry-After": str(wait)})

    # ---- request handling (runs on the server's worker threads)

    def serve_http(self, http: _Handler) -> None:
        """Answer one HTTP request: a /_sandbox/ control call or a vendor call."""
        path = urlsplit(http.path).path
        body = http.read_body(self.max_body_bytes)
        if path.startswith(CONTROL_PREFIX):
            http.send(self._control(http.command, path, body or b""))
            return
        request = Request(http.command, path, http.headers, body or b"", http.client_address[0])
        at = time.time()
        response = self._vendor_response(request, too_large=body is None)
        self._ledger.log_request(
            {
                "method": request.method,
                "path": path,
                "status": response.status if response else None,  # None: hung up (timeout fault)
                "at": at,
                "n_events": request.n_events,
            }
        )
        if response is None:
            http.close_connection = True
        else:
            http.send(response)

    def _vendor_response(self, request: Request, too_large: bool) -> Response | None:
        plan, fault = self._faults.draw()
        if plan.latency_ms:
            self._closing.wait(plan.latency_ms / 1000)
        if fault is Fault.TIMEOUT:
            self._closing.wait(plan.hang_seconds)
            return None
        try:
            if fault is Fault.THROTTLE:
                raise ApiError(429, "rate limit exceeded", headers={"Retry-After": str(plan.retry_after)})
            if fault is Fault.ERROR:
                raise ApiError(plan.error_status, "injected fault: service unavailable")
            if too_large:
                raise ApiError(413, f"request body exceeds {self.max_body_bytes} bytes")
            return self._route(request)
        except InvalidJson as exc:
            problem = Problem((), f"invalid JSON: {exc}", "value_error.jsondecode")
            return self._error_response(ApiError(self.invalid_json_status, problem.msg, [problem]))
        except ApiError as error:
            return self._error_response(error)

    def _route(self, request: Request) -> Response:
        allowed = []
        for route in self._routes:
            params = route.match(request.path)
            if params is None:
                continue
            if route.method == request.method:
                request.params = params
                return route.handler(request)
            allowed.append(route.method)
        if allowed:
            raise ApiError(405, f"method {request.method} not allowed", headers={"Allow": ", ".join(allowed)})
        raise ApiError(404, f"no route for {request.path}")

    def _error_response(self, error: ApiError) -> Response:
        return Response(error.status, self.error_body(error), error.headers)

    def _control(self, method: str, path: str, body: bytes) -> Response:
        action = path.removeprefix(CONTROL_PREFIX).rstrip("/")
        readers: dict[str, Callable[[], Any]] = {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "requests": self.requests,
            "health": lambda: {"status": "ok", "vendor": self.name, "faults": asdict(self._faults.plan)},
        }
        if method == "GET" and action in readers:
            return Response(200, readers[action]())
        if method == "POST" and action == "reset":
            self.reset()
            return Response(200, {"status": "reset"})
        if method == "POST" and action == "faults":
            try:
                plan = FaultPlan.from_json(json.loads(body or b"{}"))
            except (ValueError, TypeError) as exc:
                return Response(400, {"error": f"invalid fault plan: {exc}"})
            self.set_faults(plan)
            return Response(200, {"faults": asdict(plan)})
        return Response(404, {"error": f"no sandbox control endpoint {method} {path}"})


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
