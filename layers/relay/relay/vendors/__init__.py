"""Vendor clients: payload builders and calls, one client per configured destination.

A client does two things for the deliver functions (relay.delivery):
- `prepare(conversion)`: the vendor events for one job, every field as the vendor documents
  it (QuickLizard: one event per product line, fetched from Stripe when the conversion has
  none). Raises MissingRequirementError when there is nothing to send (the job is skipped
  and counted), or a DeliveryError.
- `post(batch)`: one HTTP request for up to `max_batch` jobs; one outcome per job: `Accepted`
  or a DeliveryError (a per-event rejection). A failure of the whole request is raised.

`deliver(client, batch)` sends prepared jobs in full requests. Where a vendor refuses a whole
multi-event request for what may be one bad event (Scanova 422, pagent 400), the request is
split in halves until the bad events are isolated, so good events are not parked with them.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import requests
from aws_lambda_powertools import Logger
from relay import pii
from relay.config import Destination
from relay.exceptions import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnansweredDeliveryError,
)
from relay.models import Conversion
from relay.vendors.http import Transport

logger = Logger(child=True)

VendorEvent = dict[str, Any]
SecretReader = Callable[[str], str]  # secret name → its current value


@dataclass(frozen=True)
class Accepted:
    status: int | None
    duplicate: bool = False  # the vendor already had this event id (still a success)


Outcome = Accepted | DeliveryError


class VendorClient(ABC):
    max_batch: ClassVar[int] = 1  # jobs per request
    split_statuses: ClassVar[frozenset[int]] = frozenset()  # whole-request refusals worth splitting

    def __init__(self, name: str, destination: Destination, transport: Transport, secret: SecretReader):
        self.name = name
        self.destination = destination
        self._transport = transport
        self._secret = secret

    @abstractmethod
    def prepare(self, conversion: Conversion) -> list[VendorEvent]: ...

    @abstractmethod
    def post(self, batch: Sequence[list[VendorEvent]]) -> list[Outcome]: ...

    def api_key(self) -> str:
        return self._secret(self.destination.api_key_secret)

    def _post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return self._transport.request(
            "POST",
            f"{str(self.destination.base_url).rstrip('/')}{path}",
            destination=self.name,
            timeout=self.destination.timeout_seconds,
            json_body=body,
            headers=headers,
        )


def client_for(
    name: str, destination: Destination, transport: Transport, secret: SecretReader
) -> VendorClient:
    module = importlib.import_module(f"relay.vendors.{destination.kind}")
    return module.CLIENT(name, destination, transport, secret)


def deliver(
    client: VendorClient,
    batch: Sequence[list[VendorEvent]],
    *,
    may_continue: Callable[[], bool] = lambda: True,
) -> list[Outcome | None]:
    """One outcome per prepared job, in order; None for a job not attempted (out of time)."""
    outcomes: list[Outcome | None] = [None] * len(batch)
    for start in range(0, len(batch), client.max_batch):
        if not may_continue():
            break
        _send(
            client,
            batch,
            list(range(start, min(start + client.max_batch, len(batch)))),
            outcomes,
            may_continue,
        )
    return outcomes


def _send(
    client: VendorClient,
    batch: Sequence[list[VendorEvent]],
    indices: list[int],
    outcomes: list[Outcome | None],
    may_continue: Callable[[], bool],
) -> None:
    results: Sequence[Outcome]
    try:
        results = client.post([batch[i] for i in indices])
    except PermanentDeliveryError as exc:
        if len(indices) > 1 and exc.status in client.split_statuses:
            half = len(indices) // 2
            for part in (indices[:half], indices[half:]):
                if may_continue():
                    _send(client, batch, part, outcomes, may_continue)
            return
        results = [exc] * len(indices)
    except DeliveryError as exc:
        results = [exc] * len(indices)
    except ConfigError as exc:  # the vendor's secret cannot be read: nothing was sent
        results = [TransientDeliveryError(f"credential unavailable: {exc}")] * len(indices)
    except Exception as exc:  # a fault after the call went out: the vendor may have the events
        logger.exception("vendor answer could not be handled", extra={"destination": client.name})
        results = [UnansweredDeliveryError(f"unreadable answer ({type(exc).__name__})")] * len(indices)
    for index, result in zip(indices, results, strict=True):
        outcomes[index] = result


def properties_of(conversion: Conversion) -> dict[str, Any]:
    """The conversion's custom properties with its order id, raw emails and phones scrubbed."""
    properties = dict(conversion.properties)
    if conversion.order_id:
        properties.setdefault("order_id", conversion.order_id)
    return pii.scrub(properties)  # type: ignore[return-value]
