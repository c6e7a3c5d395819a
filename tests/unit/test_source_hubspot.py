"""relay.sources.hubspot and hubspot_crm: batches, dedup keys, v3/v1 verification, settings, the CRM
enrichment (with a fake CRM) and the built-in rules on enriched events. No network: the CRM
client is exercised with a fake requests session (the real HTTP path is in the integration tests).

Tests read Given / When / Then in their comments or names.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest
import requests
from relay import pii
from relay.config import Rule, Source
from relay.errors import ConfigError, EnrichmentError, MissingSignatureError, PayloadError, SignatureError
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import ProviderEvent, map_event
from relay.models import conversion_id
from relay.sources.hubspot import (
    SOURCE,
    HubSpotSettings,
    builtin_rules,
    default_paths,
    make_enrich,
    signed_url,
)
from relay.sources.hubspot_crm import HubSpotCrm, first_contact_id

import testkit

FIXTURES = testkit.FIXTURES / "hubspot"
CLIENT_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"  # HubSpot's documented example secret
V1_SIGNATURE = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
V3_BODY = b"{'example_field':'example_value'}"
V3_URI = "https://www.example.com/webhook_uri"
V3_SIGNATURE = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="


def request(
    body: bytes | list | dict, headers: dict[str, str] | None = None, url: str = ""
) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(
        method="POST",
        path="/webhooks/hubspot",
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=raw,
        public_url=url or testkit.LOCAL_HUBSPOT_URL,
    )


def source(**settings: Any) -> Source:
    return Source(settings=settings)


class FakeCrm:
    """Records every read; answers from dicts (None: the object does not exist)."""

    def __init__(self, deals: dict[str, Any] | None = None, contacts: dict[str, Any] | None = None):
        self.deals = deals or {}
        self.contacts = contacts or {}
        self.reads: list[tuple[str, str, list[str]]] = []

    def deal(self, deal_id: str, properties):
        self.reads.append(("deal", deal_id, list(properties)))
        return self.deals.get(deal_id)

    def contact(self, contact_id: str, properties):
        self.reads.append(("contact", contact_id, list(properties)))
        return self.contacts.get(contact_id)


def deal(deal_id: str = "9001", contacts: tuple[str, ...] = ("201",), **properties: Any) -> dict[str, Any]:
    props = {
        "amount": "1500.50",
        "deal_currency_code": "USD",
        "pipeline": "default",
        "dealstage": "closedwon",
        "scan_session_id": testkit.SCAN_SESSION_ID,
        **properties,
    }
    body: dict[str, Any] = {"id": deal_id, "properties": props}
    if contacts:
        body["associations"] = {
            "contacts": {"results": [{"id": c, "type": "deal_to_contact"} for c in contacts]}
        }
    return body


CONTACT = {
    "id": "201",
    "properties": {
        "email": "Jenny.Rosen@Example.com",
        "phone": "+1 (616) 954-7888",
        "firstname": "Jenny",
        "lastname": "Rosen",
        "country": "US",
        "fbc": testkit.ATTRIBUTION_METADATA["fbc"],
    },
}


def enriched(event_dict: dict[str, Any], crm: FakeCrm, settings: HubSpotSettings | None = None, custom=()):
    (event,) = SOURCE.parse(request([event_dict]))
    return make_enrich(settings or HubSpotSettings(), crm, frozenset(custom))(event)


def convert(event: ProviderEvent, settings: HubSpotSettings | None = None) -> list:
    src = Source(settings=(settings or HubSpotSettings()).model_dump(exclude_defaults=True))
    paths = default_paths(settings or HubSpotSettings())
    return [m.conversion for m in map_event(event, src, builtin_rules(src), paths)]


# --- parse ---------------------------------------------------------------------------------------


def test_hubspots_own_contact_creation_example_is_one_contact_event():
    # Given HubSpot's documented body (exact bytes), When parsed
    (event,) = SOURCE.parse(request((FIXTURES / "contact.creation.json").read_bytes()))
    # Then one contact.creation event about contact 123, at occurredAt (ms)
    assert (event.event_type, event.object_type, event.object_id) == ("contact.creation", "contact", "123")
    assert event.occurred_at.timestamp() == 1564113600
    assert event.event_id.startswith("62515:12345:123:1564113600000:")


def test_a_batch_is_one_event_each_in_order():
    batch = [testkit.hubspot_contact_creation(), testkit.hubspot_deal_stage_change(9002, "qualifiedtobuy")]
    parsed = SOURCE.parse(request(batch))
    assert [(e.event_type, e.object_id) for e in parsed] == [
        ("contact.creation", "123"),
        ("deal.propertyChange", "9002"),
    ]


def test_a_redelivery_has_the_same_key_but_another_change_does_not():
    # Given the same notification on attempt 0 and attempt 3 (HubSpot's eventId may differ too)
    first = testkit.hubspot_deal_stage_change(attempt=0, event_id=1)
    again = testkit.hubspot_deal_stage_change(attempt=3, event_id=2)
    other_stage = testkit.hubspot_deal_stage_change(stage="closedlost")
    keys = [SOURCE.parse(request([e]))[0].event_id for e in (first, again, other_stage)]
    # Then the redelivery keys alike, the other stage does not; a stage change is keyed by deal
    # and stage, the key relay backfill rebuilds from the CRM search
    assert keys[0] == keys[1] != keys[2]
    assert keys[0] == f"deal:{testkit.HUBSPOT_WON_DEAL_ID}:dealstage:closedwon"


def test_a_property_value_never_appears_in_the_key():
    change = {**testkit.hubspot_deal_stage_change(), "subscriptionType": "contact.propertyChange"}
    change.update(propertyName="email", propertyValue="jenny.rosen@example.com")
    (event,) = SOURCE.parse(request([change]))
    assert "jenny" not in event.event_id and "@" not in event.event_id


def test_generic_object_subscriptions_name_the_object_type():
    change = {
        **testkit.hubspot_deal_stage_change(),
        "subscriptionType": "object.propertyChange",
        "objectTypeId": "0-3",
    }
    (event,) = SOURCE.parse(request([change]))
    assert (event.event_type, event.object_type) == ("deal.propertyChange", "deal")


def test_a_single_object_is_a_workflow_webhook_keyed_by_its_content():
    body = {"objectId": 9001, "properties": {"dealstage": {"value": "closedwon"}}}
    (event,) = SOURCE.parse(request(body))
    (same,) = SOURCE.parse(request(json.dumps(body).encode()))
    assert (event.event_type, event.object_id) == ("workflow.webhook", "9001")
    assert event.event_id == same.event_id and event.event_id.startswith("workflow:")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[", "not valid JSON"),
        (b"[]", "non-empty JSON array"),
        (b"[1]", "events[0] is not a JSON object"),
        (json.dumps([{"subscriptionType": "deal.creation"}]).encode(), "(events[0]): portalId"),
        (json.dumps([testkit.hubspot_contact_creation()] * 101).encode(), "at most 100"),
        (b'"text"', "non-empty JSON array"),
        (json.dumps([{**testkit.hubspot_contact_creation(), "occurredAt": 10**18}]).encode(), "time"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, reason: str):
    with pytest.raises(PayloadError, match=re.escape(reason)):
        SOURCE.parse(request(body))


# --- verify --------------------------------------------------------------------------------------


def test_v3_is_required_by_default_so_the_v1_example_is_refused():
    # Given HubSpot's v1 example (valid, but replayable: no timestamp), When v3 is required
    v1 = {"X-HubSpot-Signature": V1_SIGNATURE, "X-HubSpot-Signature-Version": "v1"}
    with pytest.raises(MissingSignatureError, match="require_v3"):
        SOURCE.verify(
            request((FIXTURES / "contact.creation.json").read_bytes(), v1), [CLIENT_SECRET], source()
        )


def test_v1_is_accepted_when_require_v3_is_off():
    v1 = {"X-HubSpot-Signature": V1_SIGNATURE, "X-HubSpot-Signature-Version": "v1"}
    body = (FIXTURES / "contact.creation.json").read_bytes()
    SOURCE.verify(request(body, v1), [CLIENT_SECRET], source(require_v3=False))
    with pytest.raises(SignatureError):
        SOURCE.verify(request(body + b" ", v1), [CLIENT_SECRET], source(require_v3=False))


def test_the_official_v3_vector_verifies_against_the_configured_public_url():
    # Given HubSpot's v3 vector (timestamp 1970: the age check is off) and a relay behind a proxy
    headers = {"X-HubSpot-Signature-v3": V3_SIGNATURE, "X-HubSpot-Request-Timestamp": "15000000"}
    behind_proxy = request(V3_BODY, headers, url="https://relay.internal/webhooks/hubspot")
    configured = Source(settings={"public_url": V3_URI}, signing_tolerance_seconds=0)
    # Then it verifies against public_url, and not against the URL API Gateway saw
    SOURCE.verify(behind_proxy, [CLIENT_SECRET], configured)
    with pytest.raises(SignatureError):
        SOURCE.verify(behind_proxy, [CLIENT_SECRET], Source(signing_tolerance_seconds=0))


def test_the_signed_url_keeps_the_query_hubspot_called_with():
    settings = HubSpotSettings(public_url="https://hooks.example.com/webhooks/hubspot")
    req = request(b"[]", url="https://abc.execute-api.us-east-1.amazonaws.com/webhooks/hubspot?portal=1")
    assert signed_url(req, settings) == "https://hooks.example.com/webhooks/hubspot?portal=1"
    assert signed_url(req, HubSpotSettings()) == req.public_url


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ({"won_stage": {}}, "sources.hubspot.settings.won_stage"),
        ({"default_currency": "XXQ"}, "sources.hubspot.settings.default_currency"),
        ({"won_stages": {"default": ["closed won"]}}, "sources.hubspot.settings.won_stages"),
        ({"properties": {"fbclid": "fbc"}}, "sources.hubspot.settings.properties.fbclid"),
        ({"api_base": "api.hubapi.com"}, "sources.hubspot.settings.api_base"),
    ],
)
def test_bad_settings_fail_the_cold_start_naming_the_key(settings: dict, where: str):
    with pytest.raises(ConfigError) as caught:
        builtin_rules(source(**settings))
    assert any(path.startswith(where) for path, _ in caught.value.problems)


# --- enrich --------------------------------------------------------------------------------------


def test_a_won_stage_reads_the_deal_and_its_first_contact():
    crm = FakeCrm({"9001": deal()}, {"201": CONTACT})
    event = enriched(testkit.hubspot_deal_stage_change(), crm)
    assert [(kind, object_id) for kind, object_id, _ in crm.reads] == [("deal", "9001"), ("contact", "201")]
    deal_properties = crm.reads[0][2]
    assert {"amount", "deal_currency_code", "pipeline", "dealstage", "scan_session_id"} <= set(
        deal_properties
    )
    assert "email" in crm.reads[1][2]
    assert event.payload["relay"]["deal_won"] is True
    assert event.payload["relay"]["contact"]["id"] == "201"


def test_a_stage_won_in_no_pipeline_reads_nothing():
    crm = FakeCrm({"9002": deal("9002")})
    event = enriched(testkit.hubspot_deal_stage_change(9002, "qualifiedtobuy"), crm)
    assert crm.reads == []
    assert event.payload["relay"]["deal_won"] is False
    assert convert(event) == []


def test_won_stages_are_per_pipeline():
    # Given "won" is stage 111 in pipeline p1 only
    settings = HubSpotSettings(won_stages={"p1": ["111"]})
    in_p1 = FakeCrm({"9001": deal(pipeline="p1", dealstage="111")}, {"201": CONTACT})
    in_p2 = FakeCrm({"9001": deal(pipeline="p2", dealstage="111")}, {"201": CONTACT})
    change = testkit.hubspot_deal_stage_change(stage="111")
    # Then the same stage id is a purchase in p1 and nothing in p2
    assert enriched(change, in_p1, settings).payload["relay"]["deal_won"] is True
    assert enriched(change, in_p2, settings).payload["relay"]["deal_won"] is False


def test_a_star_pipeline_matches_any_pipeline():
    settings = HubSpotSettings(won_stages={"*": ["closedwon"]})
    crm = FakeCrm({"9001": deal(pipeline="12345")}, {"201": CONTACT})
    assert enriched(testkit.hubspot_deal_stage_change(), crm, settings).payload["relay"]["deal_won"] is True


def test_the_stage_moved_to_counts_not_the_stage_now():
    # Given a deal moved to won and, by the time the relay reads it, reopened
    crm = FakeCrm({"9001": deal(dealstage="appointmentscheduled")}, {"201": CONTACT})
    event = enriched(testkit.hubspot_deal_stage_change(stage="closedwon"), crm)
    assert event.payload["relay"]["deal_won"] is True


def test_custom_rules_for_property_changes_get_the_crm_data():
    # Given the config maps deal.propertyChange itself, When another property changes
    change = {**testkit.hubspot_deal_stage_change(), "propertyName": "amount", "propertyValue": "10"}
    crm = FakeCrm({"9001": deal()}, {"201": CONTACT})
    event = enriched(change, crm, custom={"deal.propertyChange"})
    assert [kind for kind, _, _ in crm.reads] == ["deal", "contact"]
    assert event.payload["relay"]["deal"]["properties"]["amount"] == "1500.50"


def test_a_deleted_deal_makes_no_conversion():
    crm = FakeCrm()
    event = enriched(testkit.hubspot_deal_stage_change(), crm)
    assert event.payload["relay"] == {"deal": None, "contact": None, "deal_won": False}
    assert convert(event) == []


def test_a_new_contact_reads_the_contact():
    crm = FakeCrm(contacts={"123": {"id": "123", "properties": {"email": "new.lead@example.com"}}})
    event = enriched(testkit.hubspot_contact_creation(), crm)
    assert crm.reads == [("contact", "123", crm.reads[0][2])]
    (lead,) = convert(event)
    assert lead.name == "lead"
    assert lead.conversion_id == conversion_id("hubspot", "123", "lead")
    assert lead.identity.email == pii.hash_email("new.lead@example.com")


# --- rules on enriched events --------------------------------------------------------------------


def test_a_won_deal_is_a_purchase_with_an_exact_amount_and_hashed_contact():
    event = enriched(testkit.hubspot_deal_stage_change(), FakeCrm({"9001": deal()}, {"201": CONTACT}))
    (purchase,) = convert(event)
    assert purchase.name == "purchase"
    assert purchase.conversion_id == conversion_id("hubspot", "9001", "purchase")
    assert (purchase.value.amount_minor, purchase.value.currency) == (150050, "USD")
    assert purchase.occurred_at.timestamp() == testkit.FIXED_TIMESTAMP
    assert purchase.identity.email == pii.hash_email("jenny.rosen@example.com")
    assert purchase.identity.phone == pii.sha256_hex("16169547888")
    assert purchase.identity.external_id == pii.hash_external_id("201")
    # Then attribution comes from the deal's properties, else the contact's
    assert purchase.attribution.scan_session_id == testkit.SCAN_SESSION_ID
    assert purchase.attribution.fbc == testkit.ATTRIBUTION_METADATA["fbc"]
    assert "Jenny" not in purchase.model_dump_json()


def test_deal_creation_in_a_won_stage_is_the_same_purchase():
    created = {**testkit.hubspot_deal_stage_change(), "subscriptionType": "deal.creation"}
    for key in ("propertyName", "propertyValue"):
        created.pop(key)
    crm = FakeCrm({"9001": deal()}, {"201": CONTACT})
    (purchase,) = convert(enriched(created, crm))
    assert purchase.conversion_id == conversion_id("hubspot", "9001", "purchase")


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("1500.5", "USD", 150050), ("19.99", "EUR", 1999), ("15000", "JPY", 15000), ("1.234", "KWD", 1234)],
)
def test_amounts_convert_exactly_by_the_currency_exponent(amount: str, currency: str, minor: int):
    crm = FakeCrm({"9001": deal(amount=amount, deal_currency_code=currency)}, {"201": CONTACT})
    (purchase,) = convert(enriched(testkit.hubspot_deal_stage_change(), crm))
    assert (purchase.value.amount_minor, purchase.value.currency) == (minor, currency)


def test_a_portal_without_multi_currency_uses_the_default_currency():
    settings = HubSpotSettings(default_currency="eur")
    crm = FakeCrm({"9001": deal(deal_currency_code=None)}, {"201": CONTACT})
    (purchase,) = convert(enriched(testkit.hubspot_deal_stage_change(), crm, settings), settings)
    assert (purchase.value.amount_minor, purchase.value.currency) == (150050, "EUR")


def test_an_unset_amount_is_a_purchase_without_value():
    crm = FakeCrm({"9001": deal(amount="")}, {"201": CONTACT})
    (purchase,) = convert(enriched(testkit.hubspot_deal_stage_change(), crm))
    assert purchase.value is None


def test_attribution_property_names_are_configurable():
    # Given the portal stores the Scanova session in `scan_id`, and has no `fbc` property
    settings = HubSpotSettings(properties={"scan_session_id": "scan_id", "fbc": None})
    crm = FakeCrm({"9001": deal(scan_id=testkit.SCAN_SESSION_ID, scan_session_id=None)}, {"201": CONTACT})
    event = enriched(testkit.hubspot_deal_stage_change(), crm, settings)
    assert "scan_id" in crm.reads[0][2] and "fbc" not in crm.reads[0][2]
    (purchase,) = convert(event, settings)
    assert purchase.attribution.scan_session_id == testkit.SCAN_SESSION_ID
    assert purchase.attribution.fbc is None


def test_workflow_webhooks_have_no_builtin_rule_but_config_rules_map_them():
    body = {"objectId": 9001, "amount": "99.90", "currency": "EUR", "email": "Jenny.Rosen@Example.com"}
    (event,) = SOURCE.parse(request(body))
    rule = Rule(
        event="workflow.webhook",
        name="purchase",
        order_key="objectId",
        value={"amount_major": "amount", "currency": "currency"},
        identity={"email": "email"},
    )
    src = Source(rules=[rule])
    (purchase,) = [m.conversion for m in map_event(event, src, builtin_rules(src), SOURCE.defaults)]
    assert (purchase.value.amount_minor, purchase.identity.email) == (
        9990,
        pii.hash_email("jenny.rosen@example.com"),
    )


# --- the CRM client (a fake session: no network) --------------------------------------------------


class FakeSession:
    def __init__(self, *answers: requests.Response | Exception):
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append({"url": url, **kwargs})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def answer(status: int, body: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return response


def crm(session: FakeSession, tokens: list[str] | None = None) -> HubSpotCrm:
    issued = iter(tokens or ["pat-1", "pat-2"])
    return HubSpotCrm(
        api_base="https://api.hubapi.com/", token=lambda: next(issued), timeout_seconds=3, session=session
    )


def test_a_deal_read_asks_for_its_properties_and_contacts_with_the_current_token():
    session = FakeSession(answer(200, deal()), answer(200, CONTACT))
    client = crm(session)
    found = client.deal("9001", ["amount", "dealstage"])
    client.contact("201", ["email"])
    first, second = session.calls
    assert first["url"] == "https://api.hubapi.com/crm/v3/objects/deals/9001"
    assert first["params"]["properties"] == "amount,dealstage"
    assert first["params"]["associations"] == "contacts"
    assert first["timeout"] == (2.0, 3)
    # Then each call reads the token afresh (a rotated token is picked up)
    assert [c["headers"]["Authorization"] for c in (first, second)] == ["Bearer pat-1", "Bearer pat-2"]
    assert first_contact_id(found) == "201"


def test_a_missing_object_is_none():
    assert crm(FakeSession(answer(404, {"category": "OBJECT_NOT_FOUND"}))).deal("1", []) is None


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            answer(401, {"status": "error", "category": "INVALID_AUTHENTICATION"}),
            "401 INVALID_AUTHENTICATION",
        ),
        (answer(503, b"<html>unavailable</html>"), "503"),
        (answer(200, b"not json"), "non-JSON"),
        (answer(200, [1, 2]), "unexpected shape"),
        (requests.ConnectTimeout("connect timed out"), "ConnectTimeout"),
        (requests.ReadTimeout("read timed out"), "ReadTimeout"),
    ],
)
def test_every_other_failure_raises_enrichment_error(reply, reason: str):
    with pytest.raises(EnrichmentError, match=reason) as caught:
        crm(FakeSession(reply)).deal("9001", ["amount"])
    assert "9001" not in str(caught.value)  # reasons name the object type, never an id


def test_a_deal_without_contacts_has_no_first_contact():
    assert first_contact_id(deal(contacts=())) is None
    assert first_contact_id(replace_associations(deal(), [{"type": "x"}, {"id": 7}])) == "7"


# --- ids from a payload never steer the token (issue 14, item 8) -------------------------------------

TRAVERSAL = "1/../../../oauth/v1/refresh-tokens"


@pytest.mark.parametrize(
    "object_id", [TRAVERSAL, "12?archived=true", "-1", "1.5", "\uff11\uff12", "9" * 20, True]
)
def test_an_object_id_that_is_not_an_integer_is_refused_at_parse(object_id: Any):
    # Given a (signed) notification whose objectId is not a HubSpot id
    body = json.dumps([{**testkit.hubspot_contact_creation(), "objectId": object_id}]).encode()
    # Then it is refused before any CRM read
    with pytest.raises(PayloadError, match=re.escape("(events[0]): objectId")):
        SOURCE.parse(request(body))


def test_integer_ids_are_accepted_as_numbers_or_digit_strings():
    for object_id in (123, "123"):
        body = json.dumps([{**testkit.hubspot_contact_creation(), "objectId": object_id}]).encode()
        (event,) = SOURCE.parse(request(body))
        assert event.object_id == "123"


@pytest.mark.parametrize("read", ["deal", "contact"])
def test_the_crm_client_sends_the_token_only_to_the_objects_own_path(read: str):
    # Given a CRM client, asked for an id that would walk out of the object's path
    session = FakeSession(answer(200, deal()))
    with pytest.raises(EnrichmentError, match="not a HubSpot object id") as caught:
        getattr(crm(session), read)(TRAVERSAL, ["amount"])
    # Then no request is made (so no token is sent), and the reason does not echo the id
    assert session.calls == [] and "oauth" not in str(caught.value)


def test_a_contact_association_that_is_not_an_integer_is_not_followed():
    assert first_contact_id(replace_associations(deal(), [{"id": TRAVERSAL}, {"id": 7}])) == "7"


def replace_associations(body: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    return {**body, "associations": {"contacts": {"results": results}}}


def test_configure_binds_settings_paths_and_the_enrich_hook():
    # Given custom attribution property names, When the spec is configured at cold start
    configured = SOURCE.configure(
        source(properties={"scan_session_id": "scan_id"}, api_base="http://127.0.0.1:9"),
        {"RELAY_CONFIG": "x", "TABLE_NAME": "t", "HUBSPOT_TOKEN": "pat-local-hubspot"},
    )
    # Then its default paths use them and it has an enrich hook (no I/O happens here)
    assert "scan_id" in configured.defaults.attribution["scan_session_id"]
    assert configured.enrich is not None and configured.configure is None
    assert replace(SOURCE).enrich is None
