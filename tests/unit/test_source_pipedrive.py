"""relay.sources.pipedrive: Basic auth with rotated credentials, webhooks v2 parsing (v1 bodies read
as v2), the dedup key, the won transition, custom-field attribution and exact amounts.

Tests read Given / When / Then in their comments or names.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from relay import pii
from relay.config import Source
from relay.errors import (
    ConfigError,
    MalformedSecretError,
    MissingSignatureError,
    PayloadError,
    SignatureError,
)
from relay.ingest.edge import WebhookRequest
from relay.ingest.mapping import map_event
from relay.models import conversion_id
from relay.sources.pipedrive import SOURCE, builtin_rules, credentials

import testkit

SETTINGS = {
    "custom_fields": {
        "scan_session_id": [
            testkit.PIPEDRIVE_DEAL_FIELDS["scan_session_id"],
            testkit.PIPEDRIVE_PERSON_FIELDS["scan_session_id"],
        ],
        "fbc": [testkit.PIPEDRIVE_DEAL_FIELDS["fbc"], testkit.PIPEDRIVE_PERSON_FIELDS["fbc"]],
        "pagent": testkit.PIPEDRIVE_DEAL_FIELDS["pagent"],
    }
}


def request(body: Any, authorization: str | None = None) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"authorization": authorization} if authorization else {}
    return WebhookRequest(method="POST", path="/webhooks/pipedrive", headers=headers, body=raw)


def convert(notification: dict[str, Any] | bytes, settings: dict | None = None) -> list:
    source = Source(settings=SETTINGS if settings is None else settings)
    spec = SOURCE.configure(source, None)
    (event,) = spec.parse(request(notification))
    return [m.conversion for m in map_event(event, source, builtin_rules(source), spec.defaults)]


# --- verify --------------------------------------------------------------------------------------


def test_the_configured_user_and_password_pass():
    SOURCE.verify(
        request(b"{}", testkit.basic_authorization()), [testkit.LOCAL_PIPEDRIVE_BASIC_AUTH], Source()
    )


def test_during_a_rotation_old_and_new_credentials_both_pass():
    rotated = ["relay:old-password", "relay:new-password"]
    for value in rotated:
        SOURCE.verify(request(b"{}", testkit.basic_authorization(value)), rotated, Source())


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, MissingSignatureError),
        ("Basic " + base64.b64encode(b"relay:wrong").decode(), SignatureError),
        ("Basic " + base64.b64encode(b"other:local-pipedrive-password").decode(), SignatureError),
        ("Bearer local-pipedrive-password", SignatureError),
        ("Basic not-base64!", SignatureError),
    ],
)
def test_anything_else_is_refused(authorization: str | None, error: type[Exception]):
    with pytest.raises(error):
        SOURCE.verify(request(b"{}", authorization), [testkit.LOCAL_PIPEDRIVE_BASIC_AUTH], Source())


def test_credentials_split_at_the_first_colon_and_keep_commas():
    assert credentials(["relay:pa:ss", "relay:pa,ss"]) == [("relay", "pa:ss"), ("relay", "pa,ss")]


@pytest.mark.parametrize("malformed", ["no-colon", "u:", ":password"])
def test_a_value_that_is_not_user_colon_password_fails_closed(malformed: str):
    # Given a rotation where one stored value is not user:password
    values = [testkit.LOCAL_PIPEDRIVE_BASIC_AUTH, malformed]
    # When a request with the good credential arrives, Then it is refused all the same (a 5xx)
    with pytest.raises(MalformedSecretError) as error:
        SOURCE.verify(request(b"{}", testkit.basic_authorization()), values, Source())
    # And the message names the problem, never the value
    assert str(error.value) == "secret 'Pipedrive Basic auth' is malformed: value 1 is not user:password"


# --- parse ---------------------------------------------------------------------------------------


def test_a_v2_notification_is_action_dot_entity_about_the_entity():
    (event,) = SOURCE.parse(request(testkit.pipedrive_deal_won()))
    assert (event.event_type, event.object_type, event.object_id) == ("change.deal", "deal", "9101")
    assert event.occurred_at.isoformat() == "2026-01-01T00:00:00+00:00"


def test_a_retry_keys_alike_and_another_change_does_not():
    # Given a notification, its retry (attempt 2, another meta id) and a later change of the same deal
    first = testkit.pipedrive_notification("change", "deal", testkit.pipedrive_deal(), {"title": "Plan"})
    retry = json.loads(json.dumps(first))
    retry["meta"].update(attempt=2, id="another-delivery")
    later = json.loads(json.dumps(first))
    later["data"]["update_time"] = "2026-01-02T00:00:00Z"
    keys = [SOURCE.parse(request(n))[0].event_id for n in (first, retry, later)]
    assert keys[0] == keys[1] != keys[2]
    assert keys[0].startswith("deal:9101:change:")


def test_a_deal_becoming_won_is_keyed_by_the_deal():
    # Given the deal won by a change, created won, and a retry: the key the deals API can rebuild
    changed = testkit.pipedrive_deal_won()
    created = testkit.pipedrive_notification("create", "deal", testkit.pipedrive_deal())
    retry = json.loads(json.dumps(changed))
    retry["meta"].update(attempt=3)
    keys = {SOURCE.parse(request(n))[0].event_id for n in (changed, created, retry)}
    assert keys == {"deal:9101:won"}
    # A change of a deal that was already won is another fact
    still_won = testkit.pipedrive_notification("change", "deal", testkit.pipedrive_deal(), {"status": "won"})
    assert SOURCE.parse(request(still_won))[0].event_id != "deal:9101:won"


# --- webhooks v1 ----------------------------------------------------------------------------------


def test_a_v1_deal_won_is_the_purchase_a_v2_webhook_makes():
    # Given the deal won through a v1 webhook (previous is the whole old deal) and through v2
    before = testkit.pipedrive_v1_deal(status="open")
    v1 = testkit.pipedrive_v1_notification("updated", "deal", testkit.pipedrive_v1_deal(), before)
    v2 = testkit.pipedrive_deal_won()
    # When both are read
    (v1_event,) = SOURCE.parse(request(v1))
    (v2_event,) = SOURCE.parse(request(v2))
    # Then the v1 body reads as v2's change.deal about the deal, under the same claim key
    assert (v1_event.event_type, v1_event.object_id) == ("change.deal", "9101")
    assert v1_event.event_id == v2_event.event_id == "deal:9101:won"
    assert v1_event.occurred_at == v2_event.occurred_at
    assert v1_event.payload["meta"]["timestamp"] == "2026-01-01T00:00:00Z"
    # And it makes the same purchase: exact amount, the person, attribution from custom fields
    (purchase,) = convert(v1)
    (same,) = convert(v2)
    assert purchase.conversion_id == same.conversion_id == conversion_id("pipedrive", "9101", "purchase")
    assert (purchase.value.amount_minor, purchase.value.currency) == (149999, "EUR")
    assert purchase.occurred_at == same.occurred_at
    assert purchase.identity.external_id == pii.hash_external_id("301")
    assert purchase.attribution.scan_session_id == testkit.SCAN_SESSION_ID
    assert purchase.attribution.pagent.session_id == testkit.PAGENT_SESSION["session_id"]


def test_a_v1_person_added_is_the_lead_a_v2_webhook_makes_under_one_key():
    # Given a person added, through v1 (email/phone lists, ids as objects) and through v2
    v1 = testkit.pipedrive_v1_notification("added", "person", testkit.pipedrive_v1_person())
    v2 = testkit.pipedrive_notification("create", "person", testkit.pipedrive_person())
    # Then both claim the creation of that person once
    keys = {SOURCE.parse(request(n))[0].event_id for n in (v1, v2)}
    assert keys == {"person:301:create"}
    # And the v1 body makes the same lead, with the primary email, phone and attribution
    (lead,) = convert(v1)
    (same,) = convert(v2)
    assert lead.conversion_id == same.conversion_id
    assert (lead.identity.email, lead.identity.phone) == (same.identity.email, same.identity.phone)
    assert lead.identity.external_id == pii.hash_external_id("301")
    assert lead.attribution.scan_session_id == testkit.SCAN_SESSION_ID


@pytest.mark.parametrize(
    ("action", "current", "previous", "event_type", "conversions"),
    [
        # won stays won: not another purchase
        (
            "updated",
            testkit.pipedrive_v1_deal(),
            {**testkit.pipedrive_v1_deal(), "title": "Plan"},
            "change.deal",
            0,
        ),
        ("merged", testkit.pipedrive_v1_deal(), testkit.pipedrive_v1_deal(status="open"), "change.deal", 1),
        ("deleted", None, testkit.pipedrive_v1_deal(), "delete.deal", 0),
        ("added", testkit.pipedrive_v1_deal(status="open"), None, "create.deal", 0),
    ],
)
def test_v1_actions_read_as_v2_actions(action, current, previous, event_type, conversions):
    # Given a v1 body of each action
    body = testkit.pipedrive_v1_notification(action, "deal", current, previous)
    # When it is read
    (event,) = SOURCE.parse(request(body))
    # Then it is v2's action about the deal, and only a deal becoming won is a purchase
    assert (event.event_type, event.object_id) == (event_type, "9101")
    assert len(convert(body)) == conversions


def test_a_v1_body_without_meta_is_refused():
    with pytest.raises(PayloadError, match="meta"):
        SOURCE.parse(request({"v": 1, "current": {"id": 1}, "event": "added.person"}))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "body: must be a JSON object"),
        (json.dumps({"meta": {"entity": "deal"}, "data": {}}).encode(), "meta.action"),
        (
            json.dumps({"meta": {"action": "change", "entity": "deal"}, "data": [1]}).encode(),
            "data: must be a JSON object",
        ),
        (
            json.dumps(testkit.pipedrive_deal_won(value="lots")).encode(),
            r"\(data\): value: Input should be a valid decimal",
        ),
        (
            json.dumps(
                testkit.pipedrive_notification("create", "person", {"id": 1}, timestamp="soon")
            ).encode(),
            "time",
        ),
    ],
)
def test_malformed_notifications_are_refused_with_a_reason(body: bytes, reason: str):
    with pytest.raises(PayloadError, match=reason):
        SOURCE.parse(request(body))


# --- rules ---------------------------------------------------------------------------------------


def test_a_deal_that_becomes_won_is_a_purchase_with_an_exact_amount():
    # Given value 1499.99 as a JSON number (a float would make it 149998.99…)
    (purchase,) = convert(testkit.pipedrive_deal_won())
    assert purchase.name == "purchase"
    assert purchase.conversion_id == conversion_id("pipedrive", "9101", "purchase")
    assert (purchase.value.amount_minor, purchase.value.currency) == (149999, "EUR")
    assert purchase.occurred_at.isoformat() == "2026-01-01T00:00:00+00:00"
    # Then the person is the external id, and attribution comes from the deal's custom fields
    assert purchase.identity.external_id == pii.hash_external_id("301")
    assert purchase.attribution.scan_session_id == testkit.SCAN_SESSION_ID
    assert purchase.attribution.fbc == testkit.ATTRIBUTION_METADATA["fbc"]
    assert purchase.attribution.pagent.session_id == testkit.PAGENT_SESSION["session_id"]


@pytest.mark.parametrize(("value", "minor"), [(0.29, 29), (1e3, 100000), (19, 1900), ("12.30", 1230)])
def test_amounts_are_exact_whatever_json_number_pipedrive_sends(value: Any, minor: int):
    (purchase,) = convert(testkit.pipedrive_deal_won(value=value))
    assert purchase.value.amount_minor == minor


def test_a_change_that_leaves_a_won_deal_won_is_not_another_purchase():
    # Given a won deal whose title changes (previous has no status)
    title_change = testkit.pipedrive_notification(
        "change", "deal", testkit.pipedrive_deal(), {"title": "Plan"}
    )
    assert convert(title_change) == []


def test_won_to_won_and_open_to_lost_are_not_purchases():
    won_again = testkit.pipedrive_notification("change", "deal", testkit.pipedrive_deal(), {"status": "won"})
    lost = testkit.pipedrive_notification(
        "change", "deal", testkit.pipedrive_deal(status="lost"), {"status": "open"}
    )
    assert convert(won_again) == [] and convert(lost) == []


def test_a_deal_added_as_won_is_the_same_purchase():
    (purchase,) = convert(testkit.pipedrive_notification("create", "deal", testkit.pipedrive_deal()))
    assert purchase.conversion_id == conversion_id("pipedrive", "9101", "purchase")


def test_a_new_person_is_a_lead_with_hashed_identity():
    (lead,) = convert(testkit.pipedrive_notification("create", "person", testkit.pipedrive_person()))
    assert lead.name == "lead"
    assert lead.conversion_id == conversion_id("pipedrive", "301", "lead")
    assert lead.identity.email == pii.hash_email(testkit.CUSTOMER_DETAILS["email"])
    assert lead.identity.phone == pii.sha256_hex("16169547888")
    assert lead.identity.first_name == pii.hash_name("Jenny")
    # Then the person id matches what the person's purchases carry
    assert lead.identity.external_id == pii.hash_external_id("301")
    assert lead.attribution.scan_session_id == testkit.SCAN_SESSION_ID
    assert "jenny" not in lead.model_dump_json().lower()


def test_the_primary_email_wins():
    person = testkit.pipedrive_person()
    person["emails"] = [
        {"value": "old@example.com", "primary": False},
        {"value": "main@example.com", "primary": True},
    ]
    (lead,) = convert(testkit.pipedrive_notification("create", "person", person))
    assert lead.identity.email == pii.hash_email("main@example.com")


def test_without_configured_custom_fields_there_is_no_attribution():
    (purchase,) = convert(testkit.pipedrive_deal_won(), settings={})
    assert purchase.attribution.scan_session_id is None


def test_custom_field_keys_must_be_field_keys():
    with pytest.raises(ConfigError) as caught:
        builtin_rules(Source(settings={"custom_fields": {"scan_session_id": "a.b"}}))
    assert caught.value.problems[0][0].startswith("sources.pipedrive.settings.custom_fields")


@pytest.mark.parametrize(
    ("meta", "data"),
    [({"entity_id": "9101:change:x"}, {}), ({"entity_id": True}, {}), ({"entity_id": None}, {"id": "1/2"})],
)
def test_an_entity_id_that_could_blur_the_dedup_key_is_refused(meta: dict, data: dict):
    # Given a notification whose entity id could hold the key's ":" separator (or is not an id)
    notification = testkit.pipedrive_deal_won()
    notification["meta"].update(meta)
    notification["data"].update(data)
    # Then it is refused (Pipedrive ids are integers, a lead's a UUID)
    with pytest.raises(PayloadError, match="id"):
        SOURCE.parse(request(notification))
