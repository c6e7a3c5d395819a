"""HubSpot: app webhook subscriptions (batches of ≤ 100 events), workflow webhooks, CRM reads.

Signatures: X-HubSpot-Signature-v3 (HMAC over method, public URL, body and a millisecond
timestamp, 5 minutes of tolerance). Workflow "Send a webhook" actions sign with v1/v2, which
carry no timestamp and can be replayed, so they are refused unless `settings.require_v3` is
false. The URL is the one HubSpot called: set `settings.public_url` when the relay sits
behind a proxy or custom domain that API Gateway does not see.

Built-in rules (HubSpot sends ids only; the relay reads the rest from the CRM, see enrich):
- deal.propertyChange of `dealstage` to a won stage of the deal's pipeline → purchase, keyed
  by the deal id: amount (major units) and deal_currency_code of the deal, identity from its
  first associated contact. Won stages are configured per pipeline (`settings.won_stages`,
  default `{default: [closedwon]}`; `"*"` means any pipeline).
- deal.creation of a deal created in a won stage → the same purchase (same conversion id).
- contact.creation → lead, keyed by the contact id.
A workflow webhook (one JSON object, not an array) is a `workflow.webhook` event: its body
is whatever the workflow sends, so the config's rules map it (no built-in rule).

Deduplication: HubSpot's eventId is not unique. A redelivery repeats the notification with
only attemptNumber changed, so an event is keyed by portal, subscription, object and
occurredAt plus a digest of all its other fields (property name and value, change source…):
two notifications that differ in anything but the attempt are two facts, and the property
value (which may be an email address) never appears in the key itself. A deal's move to a
stage (dealstage changes, what the purchase rules read) is keyed by deal and stage,
`deal:<id>:dealstage:<stage>` (stage_change_key): a redelivery repeats it, and it is the key
`relay backfill` builds from the CRM search, so a won deal that arrives both ways counts once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
)
from relay import secrets
from relay.config import Rule, Source, ValueSpec
from relay.errors import MissingSignatureError, PayloadError
from relay.ingest import signatures
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import DefaultPaths, ProviderEvent
from relay.sources.hubspot_crm import HubSpotCrm, first_contact_id
from relay.sources.hubspot_settings import (
    HubSpotEnvironment,
    HubSpotId,
    HubSpotKey,
    HubSpotSettings,
    settings_of,
)
from relay.sources.payloads import (
    MAX_ID_CHARS,
    Identifier,
    content_key,
    event_time,
    load_json,
    quoted,
    validated,
    with_relay,
)
from relay.sources.spec import SourceSpec

DEFAULT_TOLERANCE_SECONDS = 300
MAX_EVENTS = 100  # HubSpot sends at most 100 events a request
WORKFLOW_EVENT = "workflow.webhook"
# Generic `object.*` subscriptions name the object type by id.
OBJECT_TYPES = {"0-1": "contact", "0-2": "company", "0-3": "deal", "0-5": "ticket"}
DEAL_PROPERTIES = ("amount", "deal_currency_code", "dealstage", "pipeline", "closedate")
CONTACT_PROPERTIES = (
    "email",
    "phone",
    "mobilephone",
    "firstname",
    "lastname",
    "city",
    "state",
    "zip",
    "country",
)

# --- verify -------------------------------------------------------------------------------


def signed_url(request: WebhookRequest, settings: HubSpotSettings) -> str:
    """The URL HubSpot signed: the configured public URL (plus the query sent) or the request's."""
    if not settings.public_url:
        return request.public_url
    query = request.public_url.partition("?")[2]  # not urlsplit: the Host header may be anything
    return settings.public_url + (f"?{query}" if query else "")


def verify(request: WebhookRequest, secrets_: Sequence[str], source: Source) -> None:
    settings = settings_of(source)
    if settings.require_v3 and not request.header("x-hubspot-signature-v3"):
        raise MissingSignatureError(
            "missing X-HubSpot-Signature-v3 header (v1/v2 signatures are refused: settings.require_v3)"
        )
    signatures.verify_hubspot(
        request.headers,
        method=request.method,
        uri=signed_url(request, settings),
        body=request.body,
        secrets=secrets_,
        tolerance=source.signing_tolerance(DEFAULT_TOLERANCE_SECONDS),
        now=request.received_at,
    )


# --- parse --------------------------------------------------------------------------------


class _Event(BaseModel):
    """One event of a webhook subscription batch (the fields the relay relies on); the ids
    are numbers in HubSpot's documents, and they make up the event's key."""

    model_config = ConfigDict(extra="allow")

    subscriptionType: Identifier
    portalId: HubSpotId
    subscriptionId: HubSpotId
    occurredAt: int
    objectId: HubSpotId | None = None
    objectTypeId: HubSpotKey | None = None
    propertyName: str | None = None


def _event_type(event: _Event) -> tuple[str, str | None]:
    """(event type, object type): `object.propertyChange` of type 0-3 is `deal.propertyChange`."""
    kind, _, action = event.subscriptionType.partition(".")
    if kind == "object" and event.objectTypeId in OBJECT_TYPES:
        kind = OBJECT_TYPES[event.objectTypeId]
        return f"{kind}.{action}", kind
    return event.subscriptionType, kind or None


STAGE_PROPERTY = "dealstage"
_STAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")  # a stage id, never free text, goes in a key


def _changed_stage(payload: dict[str, Any]) -> str | None:
    if payload.get("propertyName") == STAGE_PROPERTY and payload.get("propertyValue") is not None:
        return str(payload["propertyValue"])
    return None


def stage_change_key(deal_id: int | str, stage: str) -> str:
    """The claim key of a deal's move to a stage (a won deal is one purchase whatever its path)."""
    return f"deal:{deal_id}:{STAGE_PROPERTY}:{stage}"


def _subscription_event(document: dict[str, Any], index: int) -> ProviderEvent:
    event = validated(_Event, document, f"a HubSpot event (events[{index}])")
    event_type, object_type = _event_type(event)
    object_id = None if event.objectId is None else str(event.objectId)
    stage = _changed_stage(document)
    if event_type == "deal.propertyChange" and object_id is not None and stage and _STAGE_ID.match(stage):
        event_id = stage_change_key(object_id, stage)
    else:
        # Everything but the attempt counter (and the non-unique eventId) identifies the event.
        identifying = {k: v for k, v in document.items() if k not in ("attemptNumber", "eventId")}
        event_id = ":".join(
            [
                str(event.portalId),
                str(event.subscriptionId),
                object_id or "-",
                str(event.occurredAt),
                content_key(identifying, 16),
            ]
        )
    return ProviderEvent(
        provider="hubspot",
        event_id=event_id,
        event_type=event_type,
        payload=document,
        occurred_at=event_time(event.occurredAt, f"a HubSpot event (events[{index}])"),
        object_type=object_type,
        object_id=object_id,
    )


def _workflow_event(document: dict[str, Any]) -> ProviderEvent:
    # A workflow body has no event id; a redelivery repeats it byte for byte.
    object_id = next(
        (
            str(document[k])[:MAX_ID_CHARS]
            for k in ("objectId", "hs_object_id", "vid")
            if document.get(k) is not None
        ),
        None,
    )
    return ProviderEvent(
        provider="hubspot",
        event_id=f"workflow:{content_key(document, 32)}",
        event_type=WORKFLOW_EVENT,
        payload=document,
        object_id=object_id,
    )


def parse(request: WebhookRequest) -> list[ProviderEvent]:
    document = load_json(request.body)
    if isinstance(document, dict):
        return [_workflow_event(document)]
    if not isinstance(document, list) or not document:
        raise PayloadError("body must be a non-empty JSON array of HubSpot events (or a workflow object)")
    if len(document) > MAX_EVENTS:
        raise PayloadError(f"body holds {len(document)} events; HubSpot sends at most {MAX_EVENTS}")
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            raise PayloadError(f"events[{index}] is not a JSON object")
    return [_subscription_event(item, index) for index, item in enumerate(document)]


# --- enrich: the CRM reads ------------------------------------------------------------------


def make_enrich(
    settings: HubSpotSettings, crm: HubSpotCrm, custom_events: frozenset[str]
) -> Callable[[ProviderEvent], ProviderEvent]:
    """The enrich hook: the deal (and its first contact) or the contact behind an event.

    A deal property change that cannot make a purchase (another property, or a stage that is
    won in no pipeline) reads nothing, unless the config has its own rules for the event type.
    """
    attribution = sorted(set(settings.attribution_properties.values()))
    deal_properties = [*DEAL_PROPERTIES, *attribution]
    contact_properties = [*CONTACT_PROPERTIES, *attribution]
    won_somewhere = settings.any_won_stage

    def enrich(event: ProviderEvent) -> ProviderEvent:
        payload = event.payload
        if not isinstance(payload, dict) or event.object_id is None:
            return event
        if event.object_type == "contact":
            contact = crm.contact(event.object_id, contact_properties)
            return replace(event, payload=with_relay(payload, contact=contact))
        if event.object_type != "deal":
            return event
        stage = _changed_stage(payload)
        irrelevant = stage is None or stage not in won_somewhere
        if event.event_type == "deal.propertyChange" and event.event_type not in custom_events and irrelevant:
            return replace(event, payload=with_relay(payload, deal=None, contact=None, deal_won=False))
        deal = crm.deal(event.object_id, deal_properties)
        contact_id = first_contact_id(deal) if deal else None
        contact = crm.contact(contact_id, contact_properties) if contact_id else None
        properties = (deal or {}).get("properties") or {}
        # A stage change is judged by the stage it moved to, not by where the deal is now.
        won = deal is not None and settings.won(
            properties.get("pipeline"), stage or properties.get("dealstage")
        )
        return replace(event, payload=with_relay(payload, deal=deal, contact=contact, deal_won=won))

    return enrich


# --- rules and default paths ------------------------------------------------------------------


def builtin_rules(source: Source) -> tuple[Rule, ...]:
    settings = settings_of(source)  # validated at cold start: a bad block fails the init
    currency = "relay.deal.properties.deal_currency_code"
    if settings.default_currency:
        currency += f" || '{settings.default_currency}'"
    # `|| null`: HubSpot may return "" for an amount never set.
    purchase = {
        "name": "purchase",
        "when": "relay.deal_won",
        "order_key": "objectId",
        "occurred_at": "occurredAt",
        "value": ValueSpec(amount_major="relay.deal.properties.amount || null", currency=currency),
    }
    return (
        Rule(event="deal.propertyChange", **purchase),
        Rule(event="deal.creation", **purchase),
        Rule(event="contact.creation", name="lead", order_key="objectId", occurred_at="occurredAt"),
    )


def _contact(prop: str) -> str:
    return f"relay.contact.properties.{prop}"


def default_paths(settings: HubSpotSettings) -> DefaultPaths:
    return DefaultPaths(
        identity={
            "email": _contact("email"),
            "phone": f"{_contact('phone')} || {_contact('mobilephone')}",
            "first_name": _contact("firstname"),
            "last_name": _contact("lastname"),
            "city": _contact("city"),
            "state": _contact("state"),
            "zip": _contact("zip"),
            "country": _contact("country"),
            "external_id": "relay.contact.id",
        },
        attribution={
            key: f"relay.deal.properties.{quoted(prop)} || relay.contact.properties.{quoted(prop)}"
            for key, prop in settings.attribution_properties.items()
        },
        properties={
            "hubspot_portal_id": "portalId",
            "hubspot_object_id": "objectId",
            "hubspot_pipeline": "relay.deal.properties.pipeline",
        },
    )


def configure(source: Source, environ: Mapping[str, str] | None) -> SourceSpec:
    """Bind the CRM client (token from Secrets Manager) and the settings' paths, at cold start."""
    settings = settings_of(source)
    env = HubSpotEnvironment.from_env(environ)

    def token() -> str:
        return secrets.resolve(
            name=env.hubspot_token_secret_name, inline=env.hubspot_token, max_age=env.secrets_max_age
        )[0]

    crm = HubSpotCrm(api_base=settings.api_base, token=token, timeout_seconds=settings.timeout_seconds)
    custom_events = frozenset(rule.event for rule in source.rules)
    return replace(
        SOURCE,
        defaults=default_paths(settings),
        enrich=make_enrich(settings, crm, custom_events),
        configure=None,
    )


SOURCE = SourceSpec(
    name="hubspot",
    verify=verify,
    parse=parse,
    builtin_rules=builtin_rules,
    defaults=default_paths(HubSpotSettings()),
    configure=configure,
)

__all__ = [
    "SOURCE",
    "HubSpotEnvironment",
    "HubSpotSettings",
    "make_enrich",
    "signed_url",
    "stage_change_key",
]
