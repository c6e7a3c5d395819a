"""QuickLizard server-to-server SDK events sandbox (quicklizard-server-to-server.txt).

Route: `POST /events` with a JSON array of events. Each event carries its own
`client_key` (there is no auth header), `price` (a JSON number), `product_id`, `event`
("view" or "conversion"), `permalink` (required for "view") and an optional `vid`.

Documented behaviour enforced: the answer is 200 with three arrays, `processed` and
`failed` (the events themselves) and `errors`, so one bad event never fails the others.
QuickLizard does not deduplicate: every processed copy is recorded.

Decisions where the documents are silent:
- A body that is not JSON, or not a JSON array, is 400 `{"error": "..."}`.
- `errors` holds one `{"index": i, "error": "price: must be a number; ..."}` per failed
  event, `i` being the event's position in the request.
- An unknown `client_key` fails only that event (there is no request-level key).
- `price` must be a JSON number >= 0: a quoted "123.41" is not "a valid float". An
  integer such as 123 is accepted (it is a valid float in every JSON parser).
- `permalink` must be an absolute http(s) URL; it is ignored on conversion events.
- An empty array is valid and processes nothing; there is no documented maximum.
- `Content-Type` is not required: the documents' own curl examples send `-d` without it.
- Rate limit: 600 requests per minute per client IP address (configurable), 429 with
  `Retry-After`, as the endpoint has no other caller identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .api import ApiError, Request, Response, Route
from .base import Sandbox
from .validation import (
    NUMBER,
    STRING,
    Problem,
    Schema,
    at_least,
    http_url,
    non_empty,
    one_of,
    optional,
    required,
)

DEFAULT_CLIENT_KEYS = frozenset({"ql_local_client"})

CONVERSION_EVENT = Schema(
    required("client_key", STRING, non_empty),
    required("price", NUMBER, at_least(0)),
    required("product_id", STRING, non_empty),
    required("event", STRING, one_of("view", "conversion")),
    optional("vid", STRING),
)
VIEW_EVENT = CONVERSION_EVENT.extend(required("permalink", STRING, http_url))


class QuickLizardSandbox(Sandbox):
    """`client_keys` is the set of QuickLizard client keys events may carry."""

    name = "quicklizard"
    invalid_json_status = 400

    def __init__(
        self,
        client_keys: Iterable[str] | None = None,
        requests_per_minute: int | None = 600,
        **options: Any,
    ) -> None:
        self.client_keys = frozenset(DEFAULT_CLIENT_KEYS if client_keys is None else client_keys)
        super().__init__(rate_limit=requests_per_minute, **options)

    @classmethod
    def default_credential(cls, destination: Any) -> str:
        return min(DEFAULT_CLIENT_KEYS)

    def routes(self) -> Sequence[Route]:
        return (Route("POST", "/events", self._post_events),)

    def _post_events(self, request: Request) -> Response:
        self.throttle(request.client)
        events = request.json(require_content_type=False)
        if not isinstance(events, list):
            raise ApiError(400, "the body must be a JSON array of event objects")
        outcome: dict[str, list[Any]] = {"processed": [], "failed": [], "errors": []}
        for index, event in enumerate(events):
            problems = self._problems(event)
            if problems:
                outcome["failed"].append(event)
                message = "; ".join(problem.describe(root="event") for problem in problems)
                outcome["errors"].append({"index": index, "error": message})
            else:
                outcome["processed"].append(event)
                self.record(event, request)
        return Response(200, outcome)

    def _problems(self, event: Any) -> list[Problem]:
        is_view = isinstance(event, dict) and event.get("event") == "view"
        problems = (VIEW_EVENT if is_view else CONVERSION_EVENT).validate(event)
        client_key = event.get("client_key") if isinstance(event, dict) else None
        if isinstance(client_key, str) and client_key.strip() and client_key not in self.client_keys:
            problems.append(Problem(("client_key",), "unknown client_key", "value_error.client_key"))
        return problems


__all__ = ["DEFAULT_CLIENT_KEYS", "QuickLizardSandbox"]
