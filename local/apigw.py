"""API Gateway HTTP API (payload format 2.0) on loopback, for the template's HttpApi routes.

A request becomes the event AWS would send (lower-cased headers with duplicates joined
by commas, cookies apart, rawPath/rawQueryString, base64 for non-text bodies, a
requestContext with a fresh requestId and timeEpoch: the time the request arrived, taken
before its body is read and before the function is (cold-)started, as API Gateway records
it), the route's function is invoked,
and its answer is mapped back as API Gateway maps it: {statusCode, headers, body,
isBase64Encoded, cookies}, or any other JSON value as a 200 application/json body.
API Gateway's own answers are copied too: an unknown route is 404 {"message":"Not Found"},
a function error or timeout 500 {"message":"Internal Server Error"}, a body over 10 MB
413 {"message":"Request Entity Too Large"}.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.runtime import FunctionRuntime, Invocation
from testkit.apigw import http_api_event

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload quota
NOT_FOUND = (404, {"message": "Not Found"})
INTERNAL_ERROR = (500, {"message": "Internal Server Error"})
TOO_LARGE = (413, {"message": "Request Entity Too Large"})
# Content types API Gateway passes as text; any other body arrives base64-encoded.
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/ecmascript")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str  # logical id in template.yaml

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class HttpRequest:
    """A request as it came off the wire (header names as sent, body as raw bytes)."""

    method: str
    target: str  # path?query
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"
    received_at: float | None = None  # Unix seconds when the request line arrived (None: now)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _is_text(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml"))


def build_event(
    request: HttpRequest, route: Route, *, domain: str, account_id: str, api_id: str = "local"
) -> dict[str, Any]:
    """The API Gateway HTTP API payload v2.0 event of one request, shaped as AWS sends it."""
    parts = urlsplit(request.target)
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        lower = name.lower()
        if lower == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
        else:
            headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
    # API Gateway adds these, and reports every request as https: signatures over the URL
    # (HubSpot v3) are checked against the https URL locally as in AWS.
    forwarded_for = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = (
        f"{forwarded_for}, {request.source_ip}" if forwarded_for else request.source_ip
    )
    headers["x-forwarded-port"] = domain.rpartition(":")[2] if ":" in domain else "443"
    headers["x-forwarded-proto"] = "https"
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    text = _is_text(headers.get("content-type", ""))
    if text:
        try:
            request.body.decode("utf-8")
        except UnicodeDecodeError:
            text = False
    now = datetime.fromtimestamp(time.time() if request.received_at is None else request.received_at, UTC)
    event = http_api_event(
        parts.path,
        request.body,
        headers,
        method=request.method,
        base64_body=not text,
        query=parts.query,
        time_epoch_ms=int(now.timestamp() * 1000),
        domain=domain,
    )
    event["routeKey"] = route.key
    event["headers"] = headers  # as received (AWS adds no content-type of its own)
    event["cookies"] = cookies
    event["queryStringParameters"] = query
    context = event["requestContext"]
    context.update(
        accountId=account_id,
        apiId=api_id,
        requestId=base64.b64encode(uuid.uuid4().bytes[:10]).decode().rstrip("="),
        routeKey=route.key,
        time=now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
    )
    context["http"].update(
        protocol=request.protocol, sourceIp=request.source_ip, userAgent=headers.get("user-agent", "")
    )
    # AWS leaves out what the request does not have.
    for key in ("cookies", "queryStringParameters"):
        if not event[key]:
            del event[key]
    if not request.body:
        del event["body"]
    return event


def answer_from_result(result: Any) -> HttpAnswer:
    """API Gateway's mapping of a function's answer (payload format 2.0)."""
    if not (isinstance(result, dict) and "statusCode" in result):
        body = json.dumps(result).encode()
        return HttpAnswer(200, [("Content-Type", "application/json")], body)
    try:
        status = int(result["statusCode"])
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    except (TypeError, ValueError):
        return api_answer(*INTERNAL_ERROR)  # a malformed Lambda answer
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
    return HttpAnswer(status, headers, body)


def api_answer(status: int, body: dict[str, Any]) -> HttpAnswer:
    return HttpAnswer(status, [("Content-Type", "application/json")], json.dumps(body).encode())


LocalEndpoint = Callable[[], Any]  # GET /_local/<name> → a JSON value, or an HttpAnswer as it is
LocalAction = Callable[[Any], Any]  # POST /_local/<name> with a JSON body → a JSON value
AnswerObserver = Callable[[Route, Invocation, HttpAnswer], None]
RequestObserver = Callable[[Route, HttpRequest, HttpAnswer], None]  # every routed request
UNAVAILABLE = {"message": "Service Unavailable"}


class HttpApi:
    """The template's HttpApi on loopback, plus the local stack's GET /_local/<name> endpoints."""

    def __init__(
        self,
        routes: list[Route],
        runtimes: Mapping[str, FunctionRuntime],
        *,
        account_id: str,
        local_endpoints: Mapping[str, LocalEndpoint] | None = None,
        local_actions: Mapping[str, LocalAction] | None = None,
        on_answer: AnswerObserver | None = None,
        on_request: RequestObserver | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.routes = {(route.method, route.path): route for route in routes}
        self._runtimes = runtimes
        self._account_id = account_id
        self._local = dict(local_endpoints or {})
        self._actions = dict(local_actions or {})
        self._on_answer = on_answer
        self._on_request = on_request
        # path → the status its route answers instead of invoking (a simulated outage)
        self.outages: dict[str, int] = {}
        self._log = log
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str = "127.0.0.1", port: int = 3000) -> HttpApi:
        self._server = _Server((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="http-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def handle(self, request: HttpRequest, host_header: str) -> HttpAnswer:
        path = urlsplit(request.target).path
        if path == "/_local" and request.method == "GET":  # the dashboard's address without its slash
            return HttpAnswer(308, [("Location", "/_local/")], b"")
        if path.startswith("/_local/") and request.method == "GET":
            endpoint = self._local.get(path.removeprefix("/_local/"))
            if endpoint is None:
                return api_answer(*NOT_FOUND)
            value = endpoint()
            if isinstance(value, HttpAnswer):
                return value
            return HttpAnswer(200, [("Content-Type", "application/json")], json.dumps(value).encode())
        if path.startswith("/_local/") and request.method == "POST":
            return self._act(path.removeprefix("/_local/"), request.body)
        route = self.routes.get((request.method, path))
        if route is None:
            return api_answer(*NOT_FOUND)
        if path in self.outages:
            answer = api_answer(self.outages[path], UNAVAILABLE)
            if self._on_request is not None:
                self._on_request(route, request, answer)
            return answer
        domain = host_header or f"127.0.0.1:{self.port}"
        event = build_event(request, route, domain=domain, account_id=self._account_id)
        started = time.monotonic()
        invocation = self._runtimes[route.function].invoke(event)
        answer = answer_from_result(invocation.result) if invocation.ok else api_answer(*INTERNAL_ERROR)
        answer = HttpAnswer(
            answer.status,
            [*answer.headers, ("apigw-requestid", event["requestContext"]["requestId"])],
            answer.body,
        )
        if self._log is not None:
            self._log(_access_line(route, invocation, answer, started))
        if self._on_answer is not None:
            self._on_answer(route, invocation, answer)
        if self._on_request is not None:
            self._on_request(route, request, answer)
        return answer

    def _act(self, name: str, body: bytes) -> HttpAnswer:
        action = self._actions.get(name)
        if action is None:
            return api_answer(*NOT_FOUND)
        try:
            result = action(json.loads(body or b"{}"))
        except (ValueError, KeyError, TypeError) as exc:
            return api_answer(400, {"message": str(exc)})
        return HttpAnswer(200, [("Content-Type", "application/json")], json.dumps(result).encode())

    def report_failure(self, request: HttpRequest) -> None:
        if self._log is not None:
            self._log(f"local stack error on {request.method} {request.target}:\n{traceback.format_exc()}")


def _access_line(route: Route, invocation: Invocation, answer: HttpAnswer, started: float) -> str:
    took = (time.monotonic() - started) * 1000
    cold = ", cold start" if invocation.cold_start else ""
    line = f"{route.key} → {answer.status} ({route.function}, {took:.0f} ms{cold})"
    if invocation.error:
        line += f" error {invocation.error.get('errorType')}: {invocation.error.get('errorMessage')}"
    return line


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: HttpApi):
        self.api = api
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        received_at = time.time()  # API Gateway's timeEpoch: arrival, not when the function runs
        body = self._read_body()
        if body is None:
            self._send(api_answer(*TOO_LARGE))
            self.close_connection = True
            return
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
            received_at=received_at,
        )
        try:
            answer = self.server.api.handle(request, self.headers.get("Host", ""))
        except Exception:  # the stack's own failure; still answer as API Gateway would
            self.server.api.report_failure(request)
            answer = api_answer(*INTERNAL_ERROR)
        self._send(answer)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def _read_body(self) -> bytes | None:
        """The raw body (Content-Length or chunked); None when over API Gateway's 10 MB."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, size = [], 0
            while True:
                length = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                size += length
                if size > MAX_BODY_BYTES:
                    return None
                chunks.append(self.rfile.read(length))
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, answer: HttpAnswer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # HttpApi logs one line per invocation instead
