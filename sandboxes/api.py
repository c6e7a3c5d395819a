"""What a vendor sandbox's route handlers see: the parsed request, the answer, the route, the error.

`NaN`/`Infinity` literals are not JSON and are rejected as invalid JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .validation import Problem


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
