"""QuickLizard server-to-server SDK events (vendor-docs/quicklizard-server-to-server.txt).

POST /events with a JSON array, one event per product line: `client_key` (the destination's
secret), `price` (float, major units, the unit sale price), `product_id`, `event`
("conversion", or "view" for product_view conversions, which need a `permalink`: the item's
URL or the page the event came from) and the optional `vid`; a line of quantity 0 is not
sent. The destination's `event_names` may only name "view", "conversion" or null (checked
with the config). Lines come from the conversion's items, else from the Stripe API
(relay.vendors.stripe_line_items); with none there is nothing to send and the job is skipped
(counted).

The answer is three arrays (the doc's "API Response Format"): `processed` and `failed` (the
events) and `errors` (parse errors, shape and order undocumented, so they are only the
reason). A job whose lines were all processed is delivered; a failed line rejects its job
(permanent). The doc gives no index, so each answered event is traced to a line sent by its
content: the same event, else the same product_id and event (QuickLizard may echo a failed
event as it parsed it, a price as a string). Where the answer accounts for every line but a job's
lines cannot be traced, that job alone is in doubt; an answer that does not account for every
line leaves the whole request in doubt. QuickLizard does not dedupe, so a job in doubt is not
resent blindly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, HttpUrl, field_validator
from relay import money
from relay.errors import MissingRequirementError, PermanentDeliveryError, UnansweredDeliveryError
from relay.models import Conversion, Item
from relay.vendors.answers import clean_message, describe
from relay.vendors.client import Accepted, VendorClient, VendorEvent, VendorOutcome
from relay.vendors.spec import Destination, ProviderRead, VendorSpec
from relay.vendors.stripe_line_items import StripeLineItems, fetchable

MAX_BATCH = 100  # jobs per request; QuickLizard documents no limit
# Stripe allows 25 requests a second on one endpoint (docs.stripe.com/rate-limits) and counts the
# merchant's own traffic too: 2 reads in flight (~10/s at Stripe's usual latency) per invocation.
STRIPE_READS_IN_FLIGHT = 2
EVENTS = ("view", "conversion", None)  # the doc's two event names; null skips the conversion


class QuickLizardDestination(Destination):
    kind: Literal["quicklizard"] = Field(description="quicklizard")
    stripe_api_key_secret: str | None = Field(
        default=None,
        description="quicklizard: Stripe key to fetch checkout line items, in the quicklizard namespace "
        "(conversion-relay/quicklizard/stripe-api-key)",
    )
    stripe_api_base: HttpUrl = Field(
        default=HttpUrl("https://api.stripe.com"),
        description="quicklizard: Stripe API base URL (a stub locally)",
    )
    stripe_api_concurrency: int = Field(
        default=STRIPE_READS_IN_FLIGHT,
        ge=1,
        le=16,
        description="quicklizard: Stripe line-item reads in flight at once in one invocation",
    )

    secret_fields: ClassVar[tuple[str, ...]] = ("api_key_secret", "stripe_api_key_secret")
    closed_vocabulary: ClassVar[bool] = True  # QuickLizard knows "conversion" and "view" only

    def default_event_names(self) -> dict[str, str | None]:
        return {"purchase": "conversion", "renewal": None, "product_view": "view"}

    @field_validator("event_names")
    @classmethod
    def _documented_events(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        wrong = {name: event for name, event in value.items() if event not in EVENTS}
        if wrong:
            shown = ", ".join(f"{name}: {event!r}" for name, event in wrong.items())
            raise ValueError(f'QuickLizard knows the events "view" and "conversion" only (or null): {shown}')
        return value

    def provider_apis(self) -> list[ProviderRead]:
        if not self.stripe_api_key_secret:
            return []
        return [ProviderRead("stripe", str(self.stripe_api_base), self.stripe_api_key_secret)]

    def missing(self, conversion: Conversion) -> str | None:
        """Decided at ingest where the conversion alone tells (so the webhook's answer counts
        it): no product lines and none to read from Stripe, or lines that cannot be sent."""
        if not conversion.items:
            if self.stripe_api_key_secret and fetchable(conversion):
                return None  # read from the Stripe API at delivery (skipped then if it has none)
            return "no_line_items"
        name = self.event_name(conversion.name) or conversion.name
        currency = conversion.value.currency if conversion.value else None
        try:
            build_events(conversion, conversion.items, currency, name=name, client_key="")
        except MissingRequirementError as exc:
            return exc.reason
        return None


def build_events(
    conversion: Conversion, items: Sequence[Item], currency: str | None, *, name: str, client_key: str
) -> list[VendorEvent]:
    """One event per priced product line bought (quantity > 0, as Scalev's items are);
    MissingRequirementError when none can be sent."""
    items = [item for item in items if item.quantity > 0]
    if not items:
        raise MissingRequirementError("no_line_items")
    if currency is None:
        raise MissingRequirementError("no_currency")
    vid = conversion.attribution.quicklizard_vid
    events = []
    for item in items:
        if item.unit_amount_minor is None:
            continue
        event: VendorEvent = {
            "client_key": client_key,
            "price": money.to_major_float(item.unit_amount_minor, currency),
            "product_id": item.product_id,
            "event": name,
        }
        if name == "view":
            permalink = item.url or conversion.attribution.event_source_url
            if not permalink:
                continue
            event["permalink"] = permalink
        if vid:
            event["vid"] = vid
        events.append(event)
    if not events:
        raise MissingRequirementError("missing_permalink" if name == "view" else "no_item_prices")
    return events


class QuickLizardClient(VendorClient):
    destination: QuickLizardDestination
    max_batch = MAX_BATCH

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        stripe_key = self.destination.stripe_api_key_secret
        self._stripe = (
            StripeLineItems(
                self._transport,
                str(self.destination.stripe_api_base),
                lambda: self._secret(stripe_key),
                destination=self.name,
                timeout=self.destination.timeout_seconds,
            )
            if stripe_key
            else None
        )

    @property
    def prepare_concurrency(self) -> int | None:
        return self.destination.stripe_api_concurrency if self._stripe is not None else None

    def prepare(self, conversion: Conversion) -> list[VendorEvent]:
        self.destination.require(conversion)
        name = self.destination.event_name(conversion.name) or conversion.name
        items: Sequence[Item] = conversion.items
        currency = conversion.value.currency if conversion.value else None
        if not items and self._stripe is not None:
            items, line_currency = self._stripe.for_conversion(conversion)
            currency = currency or line_currency
        return build_events(conversion, items, currency, name=name, client_key=self.api_key())

    def post(self, batch: Sequence[list[VendorEvent]]) -> list[VendorOutcome]:
        lines = [event for job in batch for event in job]
        owner = [job_index for job_index, job in enumerate(batch) for _ in job]
        answer = self._post("/events", lines)
        body = answer.json()
        if not isinstance(body, dict):
            raise UnansweredDeliveryError("the answer is not the processed/failed/errors object")
        processed, failed = _events(body, "processed"), _events(body, "failed")
        if len(processed) + len(failed) != len(lines):
            # Lines unaccounted for: which were counted is unknown.
            raise UnansweredDeliveryError(
                f"{len(processed)} processed and {len(failed)} failed of {len(lines)} lines",
                status=answer.status_code,
            )
        fate = trace(lines, owner, processed=processed, failed=failed)
        reason = clean_message(describe(body.get("errors"))) or "failed (no error given)"
        outcomes: list[VendorOutcome] = []
        for job_index, job in enumerate(batch):
            fates = [fate[i] for i, o in enumerate(owner) if o == job_index]
            if "failed" in fates:
                outcomes.append(
                    PermanentDeliveryError(
                        f"{fates.count('failed')} of {len(job)} product lines failed", vendor_message=reason
                    )
                )
            elif None in fates:
                outcomes.append(
                    UnansweredDeliveryError(
                        f"{len(failed)} of {len(lines)} lines failed, not traceable to this job's",
                        status=answer.status_code,
                    )
                )
            else:
                outcomes.append(Accepted(answer.status_code))
        return outcomes


Fate = Literal["processed", "failed"] | None  # None: not traceable to one job


def _events(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    return value if isinstance(value, list) else []


def _line_key(event: Any) -> tuple[str, str] | None:
    """What identifies a line whatever types the vendor echoes it with: product id and event."""
    if not isinstance(event, dict) or event.get("product_id") is None:
        return None
    return str(event["product_id"]).strip(), str(event.get("event") or "").strip()


def _same_event(line: VendorEvent, event: Any) -> bool:
    return line == event


def _same_product(line: VendorEvent, event: Any) -> bool:
    return _line_key(event) is not None and _line_key(line) == _line_key(event)


def trace(
    lines: Sequence[VendorEvent], owner: Sequence[int], *, processed: list[Any], failed: list[Any]
) -> list[Fate]:
    """Each line's fate, from the answered events (as many as the lines), by the best evidence:
    the same event, else the same product_id and event. An answered event traces to a line when
    every open line it could be belongs to one job (which of a job's lines does not matter).
    Lines left over take the fate left over when only one is; else they stay None (in doubt)."""
    fate: list[Fate] = [None] * len(lines)
    answered: list[tuple[Any, Fate]] = [(e, "failed") for e in failed] + [(e, "processed") for e in processed]
    for same in (_same_event, _same_product):
        progress = True
        while progress:  # a traced event may leave another's candidates in one job
            progress, left = False, []
            for event, outcome in answered:
                candidates = [i for i, line in enumerate(lines) if fate[i] is None and same(line, event)]
                if candidates and len({owner[i] for i in candidates}) == 1:
                    fate[candidates[0]], progress = outcome, True
                else:
                    left.append((event, outcome))
            answered = left
    if len({outcome for _, outcome in answered}) == 1:
        only = answered[0][1]
        fate = [only if f is None else f for f in fate]
    return fate


SPEC = VendorSpec(
    kind="quicklizard",
    title="QuickLizard",
    destination=QuickLizardDestination,
    client=QuickLizardClient,
    sandbox="sandboxes.quicklizard:QuickLizardSandbox",
)
