"""The vendor client contract: build a job's vendor events, post a batch of jobs.

A client does two things for the deliver functions (relay.deliver):
- `prepare(conversion)`: the vendor events for one job, every field as the vendor documents
  it (QuickLizard: one event per product line, fetched from Stripe when the conversion has
  none). Raises MissingRequirementError when there is nothing to send (the job is skipped
  and counted), or a DeliveryError.
- `post(batch)`: one HTTP request for up to `request_size` jobs; one outcome per job: `Accepted`
  or a DeliveryError (a per-event rejection). A failure of the whole request is raised.

`request_size` is the vendor's batch limit (`max_batch`), except where an unanswered request
parks its jobs as in_doubt (a vendor that does not dedupe): there one hung request may put at
most the destination's `max_in_doubt` conversions in doubt. `prepare_concurrency` says how many
jobs may be prepared at once when preparing reads from a provider API (None: no I/O).

No HTTP library is imported here: ingest functions import the vendor modules (for their
config) without paying for one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from relay import pii
from relay.errors import DeliveryError
from relay.models import Conversion
from relay.vendors.spec import Destination

if TYPE_CHECKING:
    import requests
    from relay.vendors.http import Transport

VendorEvent = dict[str, Any]
SecretReader = Callable[[str], str]  # secret name → its current value


@dataclass(frozen=True)
class Accepted:
    status: int | None
    duplicate: bool = False  # the vendor already had this event id (still a success)


VendorOutcome = Accepted | DeliveryError


class VendorClient(ABC):
    max_batch: ClassVar[int] = 1  # jobs per request
    split_statuses: ClassVar[frozenset[int]] = frozenset()  # whole-request refusals worth splitting

    def __init__(self, name: str, destination: Destination, transport: Transport, secret: SecretReader):
        self.name = name
        self.destination = destination
        self._transport = transport
        self._secret = secret

    @property
    def request_size(self) -> int:
        """Jobs per vendor request (see the module doc)."""
        if self.destination.in_doubt_policy == "park":
            return max(1, min(self.max_batch, self.destination.max_in_doubt))
        return self.max_batch

    @property
    def prepare_concurrency(self) -> int | None:
        """Jobs prepared at once where `prepare` reads a provider API; None: it does no I/O."""
        return None

    @abstractmethod
    def prepare(self, conversion: Conversion) -> list[VendorEvent]: ...

    @abstractmethod
    def post(self, batch: Sequence[list[VendorEvent]]) -> list[VendorOutcome]: ...

    def api_key(self) -> str:
        return self._secret(self.destination.api_key_secret)

    def read_secrets(self) -> None:
        """Read (and cache) every secret the destination names, before requests run side by side
        (each would otherwise fetch it at once). A ConfigError is the caller's to judge."""
        for name in self.destination.secret_names().values():
            self._secret(name)

    def _post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return self._transport.request(
            "POST",
            f"{str(self.destination.base_url).rstrip('/')}{path}",
            destination=self.name,
            timeout=self.destination.timeout_seconds,
            json_body=body,
            headers=headers,
        )


def properties_of(conversion: Conversion) -> dict[str, Any]:
    """The conversion's custom properties with its order id, raw emails and phones scrubbed."""
    properties = dict(conversion.properties)
    if conversion.order_id:
        properties.setdefault("order_id", conversion.order_id)
    return pii.scrub(properties)  # type: ignore[return-value]
