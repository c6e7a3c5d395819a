"""template.yaml's dashboard and alarms beyond the DLQs: what docs/operations.md explains."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from relay.vendors.registry import VENDORS

from local.world import load_template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = load_template()
RESOURCES = TEMPLATE["Resources"]
OPERATIONS = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
LAYER_SOURCE = "\n".join(p.read_text() for p in (REPO / "layers" / "relay" / "relay").rglob("*.py"))
ALARMS = {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
NEW_ALARMS = {
    "IngestServerErrorsAlarm": "IngestServerErrorsThreshold",
    "SignatureRefusalsAlarm": "SignatureRefusalsThreshold",
    "DestinationFailuresAlarm": "DestinationRetriesThreshold",
    **{f"{spec.title}QueueAgeAlarm": "QueueAgeThresholdSeconds" for spec in VENDORS.values()},
}


def dashboard() -> dict:
    body = RESOURCES["RelayDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(re.sub(r"\$\{[^}]+\}", "x", body))


def slugs(markdown: str) -> set[str]:
    """GitHub's anchors of the headings."""
    return {
        re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", markdown, re.MULTILINE)
    }


def test_the_dashboard_has_no_physical_name_and_its_url_is_an_output():
    assert "DashboardName" not in RESOURCES["RelayDashboard"]["Properties"]
    assert "${RelayDashboard}" in TEMPLATE["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]


def test_the_dashboard_shows_the_figures_an_operator_asks_for():
    titles = " | ".join(w["properties"].get("title", "") for w in dashboard()["widgets"]).lower()
    for panel in (
        "conversions in",
        "delivered per destination",
        "retries and dead letters",
        "vendor latency p50 / p99",
        "oldest queued job",
        "dead letters per vendor",
        "refusals by source and reason",
        "parked events",
        "last errors",
    ):
        assert panel in titles


def test_every_reference_of_the_dashboard_resolves():
    body = RESOURCES["RelayDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for reference in re.findall(r"\$\{([^}]+)\}", body):
        name = reference.split(".")[0]
        assert name.startswith("AWS::") or name in RESOURCES, reference


def test_the_dashboard_and_alarms_use_only_metrics_the_relay_emits():
    text = json.dumps(dashboard()) + json.dumps(ALARMS)
    custom = set(re.findall(r'MetricName=\\*"(\w+)', text)) | set(re.findall(r"SELECT \w+\((\w+)\)", text))
    custom |= {m for m in re.findall(r'"ConversionRelay", "(\w+)"', text)}
    assert custom >= {"Delivered", "Retried", "WebhookRefused", "WebhookParked", "VendorLatency"}
    for metric in custom:
        assert f'"{metric}"' in LAYER_SOURCE, f"{metric} is not emitted by the layer"


@pytest.mark.parametrize(("alarm", "threshold"), sorted(NEW_ALARMS.items()))
def test_each_alarm_notifies_the_alarm_topic_with_a_parameter_threshold_and_a_runbook(alarm, threshold):
    properties = ALARMS[alarm]
    assert properties["AlarmActions"]["Fn::If"][0] == "HasAlarmTopic"
    assert properties["Threshold"] == {"Ref": threshold}
    assert "Default" in TEMPLATE["Parameters"][threshold]
    anchor = re.search(r"docs/operations\.md#([a-z0-9-]+)", properties["AlarmDescription"]).group(1)
    assert anchor in slugs(OPERATIONS)


def test_each_vendor_queue_has_an_age_alarm():
    for spec in VENDORS.values():
        dimensions = ALARMS[f"{spec.title}QueueAgeAlarm"]["Dimensions"]
        assert dimensions == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [f"{spec.title}Queue", "QueueName"]}}
        ]


def test_the_signature_alarm_watches_invalid_signatures_per_source():
    (query,) = ALARMS["SignatureRefusalsAlarm"]["Metrics"]
    assert "WHERE error = 'invalid_signature'" in query["Expression"]
    assert "GROUP BY source" in query["Expression"]
