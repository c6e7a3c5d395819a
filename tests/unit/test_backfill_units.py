"""relay.backfill's small parts offline: the provider API client's waits and retries (a fake HTTP
session, a fake clock), windows and plans, ReconcileFunction's environment and request, the
local scheduler, and the template's reconcile resources."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from relay.backfill.api import ProviderApi
from relay.backfill.dryrun import ReadOnlyDynamoDB
from relay.backfill.history import Window
from relay.backfill.reconcile import ReconcileRequest
from relay.backfill.runner import BackfillPlan
from relay.errors import BackfillError, ProviderApiError
from relay.settings import ReconcileSettings

from local.scheduler import interval_seconds, scheduled_event, start_schedules
from local.world import FunctionSpec, Schedule, World, conditions, load_template

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FakeSession:
    """Answers from a script of (status, headers, body); records each call."""

    def __init__(self, *answers: tuple[int, dict[str, str], Any]):
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append({"method": method, "url": url, **kwargs})
        status, headers, body = self.answers.pop(0)
        response = requests.Response()
        response.status_code, response.headers = status, requests.structures.CaseInsensitiveDict(headers)
        response._content = json.dumps(body).encode()
        return response


class Clock:
    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def api(session: FakeSession, clock: Clock, **options: Any) -> ProviderApi:
    return ProviderApi(
        "stripe",
        "https://api.example",
        lambda: {"Authorization": "Bearer k"},
        permission="Events: Read",
        session=session,  # type: ignore[arg-type]
        sleep=clock.sleep,
        clock=clock,
        **options,
    )


def test_calls_are_paced_under_the_documented_limit() -> None:
    clock = Clock()
    client = api(FakeSession(*[(200, {}, {})] * 3), clock, min_interval=0.25)
    for _ in range(3):
        client.get("/v1/events")
    assert clock.slept == [0.25, 0.25] and client.calls == 3


def test_a_429_waits_what_retry_after_says_or_the_reset_header() -> None:
    clock = Clock()
    session = FakeSession(
        (429, {"Retry-After": "2"}, {}), (429, {"x-ratelimit-reset": "3"}, {}), (200, {}, {"ok": 1})
    )
    reply = api(session, clock, reset_header="x-ratelimit-reset").get("/v1/events")
    assert reply is not None and reply.body == {"ok": 1}
    assert clock.slept == [2.0, 3.0]


def test_a_limit_longer_than_max_wait_stops_the_run_with_a_hint() -> None:
    with pytest.raises(ProviderApiError, match="run again later") as stopped:
        api(FakeSession((429, {"Retry-After": "600"}, {})), Clock(), max_wait=60).get("/v1/events")
    assert stopped.value.status == 429


def test_5xx_are_retried_with_backoff_then_fail() -> None:
    clock = Clock()
    with pytest.raises(ProviderApiError, match="503, 3 times"):
        api(FakeSession(*[(503, {}, {})] * 3), clock, attempts=3).get("/v1/events")
    assert clock.slept == [0.5, 1.0]


def test_404_is_none_where_asked_and_4xx_names_the_providers_message() -> None:
    clock = Clock()
    assert api(FakeSession((404, {}, {})), clock).get("/v1/events/x", missing_ok=True) is None
    body = {"error": {"type": "invalid_request_error", "message": "Invalid integer: abc"}}
    with pytest.raises(ProviderApiError, match="Invalid integer: abc"):
        api(FakeSession((400, {}, body)), clock).get("/v1/events")
    with pytest.raises(ProviderApiError, match="Events: Read"):
        api(FakeSession((403, {}, {})), clock).get("/v1/events")


def test_a_window_is_aware_and_ordered_and_a_plan_names_one_kind_of_work() -> None:
    with pytest.raises(ValueError, match="before"):
        Window(NOW, NOW - timedelta(hours=1))
    with pytest.raises(ValueError, match="timezone"):
        Window(NOW.replace(tzinfo=None), NOW.replace(tzinfo=None))
    assert Window(NOW - timedelta(hours=1), NOW).holds(NOW) and not Window(NOW, NOW).holds(None)
    with pytest.raises(BackfillError, match="exactly one"):
        BackfillPlan(("stripe",), window=Window(NOW, NOW), parked=True)
    with pytest.raises(BackfillError, match="exactly one"):
        BackfillPlan(("stripe",))


def test_reconcile_reads_only_the_providers_with_a_read_key() -> None:
    env = {
        "RELAY_CONFIG": "x.yaml",
        "TABLE_NAME": "t",
        "STRIPE_READ_KEY_SECRET_NAME": "conversion-relay/stripe-read-key",
        "PADDLE_READ_KEY_SECRET_NAME": "",  # the template's default: off
        "PIPEDRIVE_READ_KEY": "local-token",
        "RECONCILE_WINDOW_HOURS": "26",
    }
    settings = ReconcileSettings.from_env(env)
    assert set(settings.read_keys) == {"stripe", "pipedrive"} and settings.window_hours == 26
    assert ReconcileRequest.model_validate({"detail-type": "Scheduled Event", "detail": {}}).sources == []
    assert ReconcileRequest.model_validate({"sources": ["stripe"], "window_hours": 72}).window_hours == 72


def test_the_local_scheduler_runs_rates_scaled_and_leaves_cron_alone() -> None:
    assert (interval_seconds("rate(1 hour)"), interval_seconds("rate(5 minutes)")) == (3600, 300)
    assert interval_seconds("cron(0 * * * ? *)") is None
    event = scheduled_event("arn:aws:events:us-east-1:1:rule/r", "us-east-1", "1")
    assert (event["detail-type"], event["source"], event["detail"]) == ("Scheduled Event", "aws.events", {})
    spec = FunctionSpec("ReconcileFunction", None, "app.lambda_handler", {}, 300)  # type: ignore[arg-type]
    spec.schedules = [
        Schedule("Scheduled", "rate(1 hour)", True),
        Schedule("Nightly", "cron(0 0 * * ? *)", True),
    ]
    world = World("us-east-1", "1", "s", {}, {}, {"ReconcileFunction": spec})
    said: list[str] = []
    runners = start_schedules(world, {"ReconcileFunction": object()}, scale=0, log=said.append)  # type: ignore[dict-item]
    assert runners == []  # scale 0: the e2e tests invoke it themselves
    runners = start_schedules(world, {"ReconcileFunction": object()}, scale=1 / 60, log=said.append)  # type: ignore[dict-item]
    assert [r.interval for r in runners] == [60.0] and "not emulated" in said[0]
    for runner in runners:
        runner.stop()


def test_reconcile_is_on_when_a_provider_has_a_read_key_and_off_otherwise() -> None:
    template = load_template()
    defaults = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    assert conditions(template, defaults)["ReconcileOn"] is False
    with_key = {**defaults, "ShopifyReadKeySecretName": "conversion-relay/shopify-read-key"}
    on = conditions(template, with_key)
    assert on["ReconcileOn"] and on["HasShopifyReadKey"] and not on["HasStripeReadKey"]


def test_the_reconcile_function_is_scheduled_scoped_and_alarmed() -> None:
    template = load_template()
    resources = template["Resources"]
    namespace = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    function = resources["ReconcileFunction"]["Properties"]
    (schedule,) = function["Events"].values()
    assert schedule["Type"] == "Schedule" and schedule["Properties"]["Schedule"] == {
        "Ref": "ReconcileSchedule"
    }
    assert schedule["Properties"]["State"] == {"Fn::If": ["ReconcileOn", "ENABLED", "DISABLED"]}
    assert function["Role"] == {"Fn::GetAtt": ["ReconcileFunctionRole", "Arn"]}
    (policy,) = resources["ReconcileFunctionRole"]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    keys = [
        s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        for s in statements
        if "dynamodb:GetItem" in s["Action"]
    ]
    assert keys == [["idempotency#*"], ["parked#*"]]
    secrets = next(s for s in statements if s["Action"] == ["secretsmanager:GetSecretValue"])
    arns = json.dumps(secrets["Resource"])
    assert arns.count("-??????") == 6 and "SecretsPrefix" not in arns
    alarms = {
        name: r["Properties"]["Metrics"][0]["Expression"]
        for name, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and "Metrics" in r["Properties"]
    }
    assert {name: alarms[name] for name in ("EventsFoundMissingAlarm", "WebhookParkedAlarm")} == {
        # the namespace the functions' metrics are written to
        "EventsFoundMissingAlarm": f"SELECT SUM(EventsFoundMissing) FROM {namespace}",  # noqa: S608
        "WebhookParkedAlarm": f"SELECT SUM(WebhookParked) FROM {namespace}",  # noqa: S608
    }


class _Table:
    """A DynamoDB client holding one item, for the read-only wrapper to read."""

    def __init__(self, item: dict[str, Any] | None):
        self.item = item

    def get_item(self, **_kwargs: Any) -> dict[str, Any]:
        return {"Item": dict(self.item)} if self.item is not None else {}


def test_a_dry_runs_conversion_claim_answers_what_the_write_would_leave_and_writes_nothing() -> None:
    # Given a conversion another event already queued to "a"
    table = _Table({"id": {"S": "conversion#stripe#c1"}, "to:a": {"S": "evt_first"}})
    dynamodb = ReadOnlyDynamoDB(table)
    # When a dry run claims "a" and "b" for a second event
    answer = dynamodb.update_item(
        TableName="t",
        Key={"id": {"S": "conversion#stripe#c1"}},
        UpdateExpression="SET #d0 = if_not_exists(#d0, :event), #d1 = if_not_exists(#d1, :event), "
        "expiration = :expiration",
        ExpressionAttributeNames={"#d0": "to:a", "#d1": "to:b"},
        ExpressionAttributeValues={":event": {"S": "evt_second"}, ":expiration": {"N": "9"}},
        ReturnValues="ALL_NEW",
    )
    # Then "a" stays the first event's, "b" would be the second's, and the item is unchanged
    assert answer["Attributes"]["to:a"] == {"S": "evt_first"}
    assert answer["Attributes"]["to:b"] == {"S": "evt_second"}
    assert answer["Attributes"]["expiration"] == {"N": "9"}
    assert table.item == {"id": {"S": "conversion#stripe#c1"}, "to:a": {"S": "evt_first"}}
    assert dynamodb.writes == 1
