"""The vendor sandboxes' HTTP server: a `Sandbox` is a real HTTP server on loopback
(standard library only) that enforces one vendor's documented contract.

This module owns the server thread, routing, the request log, the `/_sandbox/` control
endpoints and the `start`/`stop`/context-manager lifecycle, so that a vendor module only
declares its routes, schemas (`validation`) and error shape. What every vendor has in
common lives beside it: `api` (request, response, route, error), `faults` (injected
failures), `ratelimit` and `records` (what was accepted).

Where the vendor documents are silent:
- Bodies over `max_body_bytes` (1 MiB) get 413 in the vendor's error shape.
- Rejected requests (any 4xx) do not use up rate-limit budget.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import urlsplit

from .api import ApiError, InvalidJson, Request, Response, Route
from .faults import Fault, FaultInjector, FaultPlan
from .ratelimit import RateLimiter
from .records import AcceptedEvents
from .validation import Problem

CONTROL_PREFIX = "/_sandbox/"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# An oversized body is read and discarded (so the client sees the 413 instead of a
# reset connection) up to this size; beyond it the connection is simply closed.
_MAX_DRAIN_BYTES = 16 * 1024 * 1024


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
    - `default_credential(destination)`: a vendor sandbox's default key for a destination.
    """

    name: ClassVar[str] = "sandbox"
    invalid_json_status: ClassVar[int] = 400

    def __init__(self, *, rate_limit: int | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.max_body_bytes = max_body_bytes
        self._records = AcceptedEvents()
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

    @classmethod
    def default_credential(cls, destination: Any) -> str:
        """The credential this sandbox accepts by default for a relay config destination.

        Duck-typed on the destination (`site_id`, `store_id`, …) so that the sandboxes need not
        import the relay; the local stack stores the value under the destination's secret name.
        """
        raise NotImplementedError(f"the {cls.name} sandbox has no default credential")

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
        return self._records.accepted()

    def duplicates(self) -> list[dict[str, Any]]:
        return self._records.duplicates()

    def requests(self) -> list[dict[str, Any]]:
        return self._records.requests()

    def set_faults(self, plan: FaultPlan) -> None:
        self._faults.set(plan)

    def reset(self) -> None:
        self._records.clear()
        self._faults.set(FaultPlan())
        self._limiter.reset()

    # ---- helpers for vendor handlers

    def record(self, event: Mapping[str, Any], request: Request, dedupe_key: Any = None, **tags: Any) -> bool:
        """Store an accepted event as the vendor keeps it, tagged with the route that took it."""
        return self._records.record({**event, "_endpoint": request.path, **tags}, dedupe_key)

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
        self._records.log_request(
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
