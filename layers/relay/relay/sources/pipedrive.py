"""Pipedrive: webhooks v2 (`{meta, data, previous}`) authenticated with HTTP Basic; a
webhooks v1 body (`{meta, current, previous}`) is read as the v2 notification it corresponds
to (relay.sources.pipedrive_v1), so both versions go through the same rules and keys.

Pipedrive does not sign webhooks; the webhook's http_auth_user/http_auth_password are its
only credential. The secret holds "user:password" (several values during a rotation) and
every pair is compared in constant time.

Built-in rules (event type = "<meta.action>.<meta.entity>"):
- change.deal whose status becomes `won` (`previous.status` present and not won) → purchase,
  keyed by the deal id: `value` (major units, a JSON number parsed exactly) and `currency`.
- create.deal already `won` (a deal imported or added as won) → the same purchase.
- create.person → lead, keyed by the person id.
The person id is the external id of both, so a lead and its later purchase match.
Attribution comes from custom fields: `settings.custom_fields` maps an attribution key to
the field's 40-character key (or a list: deal and person fields have different keys).

Deduplication: webhooks v2 promise one notification per change, but a failed delivery is
retried with `meta.attempt` increased, and `meta.id` was the object id in v1, so neither is
a safe key. A deal becoming won (the purchase rules' events) is keyed by the deal,
`deal:<id>:won` (won_deal_key): a redelivery repeats it, and it is the key `relay backfill`
builds from the deals API, so a deal that arrives both ways counts once (a deal won twice is
one purchase anyway: its conversion id is the deal's). A creation happens once per object
and is keyed by it, `<entity>:<id>:create`. Both keys are the same whether v1 or v2 brings
the event, so a webhook of each version about one deal won (or one person added) counts
once. Any other event is keyed by entity, entity id, action and a digest of `data` and
`previous`: a redelivery repeats them exactly, and two changes differ at least in
data.update_time (a v1 and a v2 body of such a change differ, so both are claimed: none of
them is a conversion for the built-in rules, and a configured one is still queued once per
conversion id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
)
from relay.config import AttributionKey, Rule, Source, ValueSpec
from relay.errors import MalformedSecretError
from relay.ingest import signatures
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import DefaultPaths, ProviderEvent
from relay.sources import pipedrive_v1
from relay.sources.payloads import (
    absolute_url,
    content_key,
    event_time,
    load_json,
    quoted,
    source_settings,
    validated,
)
from relay.sources.spec import SourceSpec

_FieldKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+$", max_length=100)]
# Pipedrive ids are integers, a lead's a UUID: an id is part of the dedup key, which stays
# unambiguous only if an id cannot hold its ":" separator.
_EntityId = StrictInt | Annotated[StrictStr, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")]


class PipedriveSettings(BaseModel):
    """`sources.pipedrive.settings` of the relay config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    custom_fields: dict[AttributionKey, _FieldKey | list[_FieldKey]] = Field(
        default_factory=dict,
        description="attribution key → custom field key(s) (Settings > Data fields > API key)",
    )
    api_base: Annotated[str, AfterValidator(absolute_url)] = Field(
        default="https://api.pipedrive.com",
        description="the API relay backfill lists won deals from (your company domain works too)",
    )


def settings_of(source: Source) -> PipedriveSettings:
    return source_settings(PipedriveSettings, source, "pipedrive")


def credentials(values: Sequence[str]) -> list[tuple[str, str]]:
    """ "user:password" secret values as (user, password) pairs (split at the first colon: RFC 7617
    user-ids have none, passwords may). A value that is not one fails closed: every request is
    refused (5xx) until the secret is fixed, rather than checked against fewer credentials."""
    pairs = []
    for index, value in enumerate(values):
        user, colon, password = value.partition(":")
        if not (colon and user and password):
            raise MalformedSecretError("Pipedrive Basic auth", f"value {index} is not user:password")
        pairs.append((user, password))
    return pairs


def verify(request: WebhookRequest, secrets: Sequence[str], source: Source) -> None:
    signatures.verify_basic_auth(request.header("authorization"), credentials(secrets))


# Short words and ids: they make up the event's key and type.
_Word = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _Meta(BaseModel):
    model_config = ConfigDict(extra="allow")

    action: _Word
    entity: _Word
    entity_id: _EntityId | None = None
    timestamp: int | str | None = None
    version: str | None = None


class _Deal(BaseModel):
    """What the deal rules rely on, by type; the amount itself is read (and checked) by the rules
    with Pipedrive's conventions (relay.money_rules.PIPEDRIVE)."""

    model_config = ConfigDict(extra="allow")

    value: Decimal | None = None  # major units: a JSON number, parsed exactly
    currency: str | None = None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    meta: _Meta
    data: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: _EntityId | None = None


WON = "won"


def won_deal_key(deal_id: int | str) -> str:
    """The claim key of a deal's becoming won (one purchase fact per deal)."""
    return f"deal:{deal_id}:{WON}"


def _becomes_won(meta: _Meta, data: dict[str, Any], previous: dict[str, Any] | None) -> bool:
    """What the purchase rules convert: a deal created won, or changed from another status."""
    if meta.entity != "deal" or data.get("status") != WON:
        return False
    before = (previous or {}).get("status")
    return meta.action == "create" or (meta.action == "change" and before is not None and before != WON)


def parse(request: WebhookRequest) -> list[ProviderEvent]:
    document = load_json(request.body)
    if pipedrive_v1.is_v1(document):
        document = pipedrive_v1.as_v2(document)
    envelope = validated(_Envelope, document, "a Pipedrive webhooks v2 notification")
    meta, data = envelope.meta, envelope.data or {}
    if meta.entity == "deal":  # other entities (a lead's value is an object) are not checked
        validated(_Deal, data, "a Pipedrive deal notification (data)")
    data_id = validated(_Data, data, "a Pipedrive webhooks v2 notification (data)").id
    object_id = meta.entity_id if meta.entity_id is not None else data_id
    object_id = None if object_id is None else str(object_id)
    if object_id is not None and _becomes_won(meta, data, envelope.previous):
        event_id = won_deal_key(object_id)
    elif object_id is not None and meta.action == "create":
        event_id = f"{meta.entity}:{object_id}:create"
    else:
        digest = content_key({"data": envelope.data, "previous": envelope.previous})
        event_id = f"{meta.entity}:{object_id or '-'}:{meta.action}:{digest}"
    return [
        ProviderEvent(
            provider="pipedrive",
            event_id=event_id,
            event_type=f"{meta.action}.{meta.entity}",
            payload=document,
            occurred_at=event_time(meta.timestamp, "a Pipedrive webhooks v2 notification"),
            object_type=meta.entity,
            object_id=object_id,
        )
    ]


def builtin_rules(source: Source) -> tuple[Rule, ...]:
    settings_of(source)  # validated at cold start: a bad block fails the init
    purchase = {
        "name": "purchase",
        "order_key": "data.id",
        "occurred_at": "data.won_time || data.update_time || meta.timestamp",
        "value": ValueSpec(amount_major="data.value", currency="data.currency"),
    }
    return (
        Rule(
            event="change.deal",
            when="data.status == 'won' && previous.status && previous.status != 'won'",
            **purchase,
        ),
        Rule(event="create.deal", when="data.status == 'won'", **purchase),
        Rule(
            event="create.person",
            name="lead",
            order_key="data.id",
            occurred_at="data.add_time || meta.timestamp",
        ),
    )


def _custom_field(keys: str | list[str]) -> str:
    # v2 wraps a value as {"type": …, "value": …}; a bare value is accepted too.
    return " || ".join(
        f"data.custom_fields.{quoted(key)}.value || data.custom_fields.{quoted(key)}"
        for key in ([keys] if isinstance(keys, str) else keys)
    )


def _primary(field: str) -> str:
    # v2 lists {"value", "primary", "label"}; v1-shaped data used the singular name.
    singular = field.removesuffix("s")
    return f"(data.{field}[?primary].value | [0]) || data.{field}[0].value || data.{singular}[0].value"


def default_paths(settings: PipedriveSettings) -> DefaultPaths:
    return DefaultPaths(
        identity={
            "email": _primary("emails"),
            "phone": _primary("phones"),
            "first_name": "data.first_name",
            "last_name": "data.last_name",
            "full_name": "data.name",
            # The person: a deal's person_id, or the person itself.
            "external_id": "data.person_id || ((meta.entity == 'person') && data.id) || null",
        },
        attribution={key: _custom_field(keys) for key, keys in settings.custom_fields.items()},
        properties={
            "pipedrive_pipeline_id": "data.pipeline_id",
            "pipedrive_stage_id": "data.stage_id",
            "pipedrive_company_id": "meta.company_id",
        },
    )


def configure(source: Source, environ: Mapping[str, str] | None) -> SourceSpec:
    return replace(SOURCE, defaults=default_paths(settings_of(source)), configure=None)


SOURCE = SourceSpec(
    name="pipedrive",
    verify=verify,
    parse=parse,
    builtin_rules=builtin_rules,
    defaults=default_paths(PipedriveSettings()),
    configure=configure,
)
