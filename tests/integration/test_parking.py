"""relay.parking against the template's table in moto (its sparse ParkedEvents index), and
`relay parked ls --local` against the local stack's embedded AWS over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import requests
from relay.parking import INDEX_NAME, ParkedEvent, ParkedEvents

from local.stack.aws import EmbeddedAws
from local.world import World, build_world, load_template
from relay_cli import main as cli

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def parked(event_id: str, *, provider: str = "stripe", at: datetime = NOW, **fields) -> ParkedEvent:
    values = {
        "provider": provider,
        "event_id": event_id,
        "event_type": "checkout.session.completed",
        "reason": "invalid_money",
        "detail": "amount 'a lot' is not a decimal number",
        "fingerprint": "f" * 32,
        "parked_at": at,
    }
    return ParkedEvent(**{**values, **fields})


def test_the_template_indexes_parked_events_under_the_name_the_code_queries() -> None:
    (table,) = [r for r in load_template()["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert [index["IndexName"] for index in table["Properties"]["GlobalSecondaryIndexes"]] == [INDEX_NAME]


def test_parked_events_are_kept_without_pii_counted_and_listed_newest_first(moto_world: World) -> None:
    """Given events parked for Stripe and Paddle (one twice, one detail with an email), when listed,
    then each provider's are newest first, the repeat is counted, the email is masked, and the
    TTL is the provider's log retention."""
    store = ParkedEvents(boto3.client("dynamodb"), moto_world.table_name, clock=NOW.timestamp)
    store.park(parked("evt_old", at=NOW - timedelta(hours=2)), retention_days=30)
    store.park(parked("evt_new", detail="no order key for jane@example.com"), retention_days=30)
    store.park(parked("evt_new", detail="no order key for jane@example.com"), retention_days=30)
    store.park(parked("ntf_1", provider="paddle"), retention_days=90)

    stripe = list(store.list(["stripe"]))
    assert [e.event_id for e in stripe] == ["evt_new", "evt_old"]
    assert stripe[0].times == 2 and "jane@example.com" not in (stripe[0].detail or "")
    assert [e.event_id for e in store.list(["stripe"], since=NOW - timedelta(minutes=5))] == ["evt_new"]
    assert [e.event_id for e in store.list(["paddle", "shopify"])] == ["ntf_1"]
    item = boto3.client("dynamodb").get_item(
        TableName=moto_world.table_name, Key={"id": {"S": "parked#paddle#ntf_1"}}
    )["Item"]
    assert int(item["expiration"]["N"]) == int(NOW.timestamp()) + 90 * 86400
    store.forget("stripe", "evt_new")
    assert store.get("stripe", "evt_new") is None and store.get("stripe", "evt_old") is not None


@pytest.fixture(scope="module")
def embedded_aws() -> Iterator[EmbeddedAws]:
    aws = EmbeddedAws(port=0).start()
    yield aws
    aws.stop()


def test_relay_parked_ls_lists_them_from_the_local_stack(
    embedded_aws: EmbeddedAws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    requests.post(f"{embedded_aws.endpoint_url}/moto-api/reset", timeout=5).raise_for_status()
    monkeypatch.setenv("MOTO_PORT", str(embedded_aws.port))
    world = build_world(embedded_aws.session())
    store = ParkedEvents(embedded_aws.session().client("dynamodb"), world.table_name)
    store.park(parked("evt_1", parked_at=datetime.now(UTC)), retention_days=30)

    assert cli.main(["parked", "ls", "--local"]) == 0
    out = capsys.readouterr().out
    assert "evt_1" in out and "invalid_money" in out and "1 parked event(s)" in out
    assert "relay backfill --parked" in out
    assert cli.main(["parked", "ls", "--local", "--source", "paddle"]) == 0
    assert "0 parked event(s)" in capsys.readouterr().out
