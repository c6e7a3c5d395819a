"""Unit tests of relay.replay's pure parts: options, parked-job parsing, pacing, destination lookup."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from pydantic import ValidationError
from relay.config import load_config
from relay.dlq import FAILURE_ATTRIBUTES
from relay.errors import ReplayError, UnknownDestinationError
from relay.models import Conversion, DeliveryJob, SourceRef, conversion_id
from relay.replay.options import ReplayRequest, parse_moment, parse_rate
from relay.replay.replayer import Replayer, _Pacer
from relay.replay.scan import ParkedJob, QueuePair, hold_seconds

from local.world import build_world
from relay_cli import main as cli
from relay_cli import output, targets
from relay_cli.targets import stack_queues

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _job(destination: str = "scanova") -> DeliveryJob:
    conversion = Conversion(
        conversion_id=conversion_id("stripe", "cs_1", "purchase"),
        name="purchase",
        occurred_at=NOW,
        source=SourceRef(provider="stripe", event_id="evt_1", event_type="checkout.session.completed"),
    )
    return DeliveryJob(destination=destination, conversion=conversion)


def _message(body: str, attributes: dict[str, str] | None = None, receive_count: int = 1) -> dict:
    return {
        "MessageId": "m-1",
        "ReceiptHandle": "rh-1",
        "Body": body,
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value} for name, value in (attributes or {}).items()
        },
        "Attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "1772366400000"},
    }


# --------------------------------------------------------------------------- times and rates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        ("30m", NOW - timedelta(minutes=30)),
        ("3d", NOW - timedelta(days=3)),
        ("1w", NOW - timedelta(weeks=1)),
        ("2026-02-28T10:00:00Z", datetime(2026, 2, 28, 10, tzinfo=UTC)),
        ("2026-02-28T10:00:00+02:00", datetime(2026, 2, 28, 8, tzinfo=UTC)),
        ("2026-02-28T10:00:00", datetime(2026, 2, 28, 10, tzinfo=UTC)),  # no zone: UTC
        ("2026-02-28", datetime(2026, 2, 28, tzinfo=UTC)),
    ],
)
def test_times_are_iso_or_relative_ages(text: str, expected: datetime) -> None:
    """Given an ISO 8601 time or a relative age, when parsed at NOW, then it is that UTC moment."""
    assert parse_moment(text, now=NOW) == expected


def test_a_time_that_is_neither_iso_nor_an_age_is_refused() -> None:
    """Given nonsense, when parsed, then the error says what is accepted."""
    with pytest.raises(ValueError, match="relative age like 2h"):
        parse_moment("yesterday")


@pytest.mark.parametrize(("value", "expected"), [("5/s", 5.0), ("0.5", 0.5), (20, 20.0), (None, None)])
def test_rates_accept_a_per_second_suffix(value: object, expected: float | None) -> None:
    """Given a rate as the CLI or an event gives it, when parsed, then it is messages per second."""
    assert parse_rate(value) == expected


# --------------------------------------------------------------------------- the request


def test_a_request_reads_the_event_names_of_replay_function() -> None:
    """Given ReplayFunction's event keys (max, dry_run), when validated, then they map to the options."""
    request = ReplayRequest.model_validate(
        {"destination": "scanova", "max": 50, "dry_run": True, "since": "2026-02-01T00:00:00Z", "rate": "5/s"}
    )
    assert (request.max_jobs, request.dry_run, request.rate) == (50, True, 5.0)
    assert request.since == datetime(2026, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"destination": "scanova", "since": "1h", "until": "3h"}, "since must be before until"),
        ({"destination": "scanova", "native": True, "reason": "rejected"}, "takes no reason"),
        ({"destination": "scanova", "native": True, "dry_run": True}, "takes no dry_run"),
        ({"destination": "scanova", "native": True, "rate": 1000}, "1 to 500"),
        ({"destination": "scanova", "reason": "lost"}, "rejected"),
        ({"destination": "scanova", "max": 0}, "greater than or equal to 1"),
        ({"destination": "scanova", "rate": 0}, "greater than 0"),
        ({"destination": "scanova", "destinaton": "typo"}, "Extra inputs"),
        ({}, "destination"),
    ],
)
def test_inconsistent_requests_are_refused_with_the_reason(event: dict, message: str) -> None:
    """Given an inconsistent or misspelt request, when validated, then the error names the problem."""
    with pytest.raises(ValidationError, match=message):
        ReplayRequest.model_validate(event)


# --------------------------------------------------------------------------- parked jobs


def test_a_job_parked_by_a_deliver_function_carries_its_failure() -> None:
    """Given a DLQ message with the deliver function's failure attributes, when parsed, then the
    reason, vendor status and message, attempts and parking time come from them."""
    job = _job()
    attributes = {
        **{name: value["StringValue"] for name, value in job.message_attributes().items()},
        "failure_reason": "rejected",
        "failure_status": "422",
        "failure_message": "scan_session_id not found",
        "attempts": "1",
        "first_failure_at": "2026-03-01T11:00:00+00:00",
        "vendor": "scanova",
    }
    parked = ParkedJob.from_message("scanova", _message(job.model_dump_json(), attributes, receive_count=3))

    assert (parked.reason, parked.failure_status, parked.attempts) == ("rejected", 422, 1)
    assert parked.failure_message == "scan_session_id not found"
    assert parked.parked_since == datetime(2026, 3, 1, 11, tzinfo=UTC)
    assert parked.event_time == NOW
    assert not FAILURE_ATTRIBUTES & set(parked.requeue_attributes())
    assert parked.requeue_attributes() == job.message_attributes()


def test_a_job_moved_by_sqs_redrive_counts_as_retries_exhausted() -> None:
    """Given a DLQ message without failure_reason (SQS redrive moved it after maxReceiveCount),
    when parsed, then its reason is retries_exhausted and attempts is its receive count."""
    job = _job()
    parked = ParkedJob.from_message("scanova", _message(job.model_dump_json(), receive_count=6))

    assert (parked.reason, parked.attempts) == ("retries_exhausted", 6)
    assert (parked.destination, parked.conversion_name) == ("scanova", "purchase")  # from the body
    assert parked.parked_since == datetime(2026, 3, 1, 12, tzinfo=UTC)  # SentTimestamp


def test_a_body_that_is_not_a_job_is_malformed_and_shown_without_pii() -> None:
    """Given a DLQ message whose body is JSON but not a delivery job, with an email in it,
    when parsed and described, then it is malformed_job and the email is not shown."""
    body = json.dumps({"destination": "scanova", "email": "jenny@example.com", "note": "x"})
    parked = ParkedJob.from_message("scanova", _message(body, {"failure_reason": "retries_exhausted"}))

    described = parked.describe()

    assert parked.job is None and parked.reason == "malformed_job"
    assert "jenny@example.com" not in json.dumps(described)
    assert described["job"] == {"destination": "scanova", "note": "x"}


def test_a_body_that_is_not_json_is_described_by_its_size() -> None:
    """Given a DLQ message whose body is not JSON, when described, then only its size is shown."""
    parked = ParkedJob.from_message("scanova", _message("jenny@example.com"))
    assert parked.describe()["job"] == "<17 bytes, not JSON>"


# --------------------------------------------------------------------------- pacing


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_pacer_spaces_batches_to_the_rate() -> None:
    """Given a rate of 4 messages a second, when four batches of 4 are sent back to back,
    then the pacer waits a second before each batch after the first."""
    clock = FakeClock()
    pacer = _Pacer(4, clock, clock.sleep)

    for _ in range(4):
        pacer.wait(pacer.batch_size)

    assert pacer.batch_size == 4
    assert clock.slept == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(("rate", "size"), [(None, 10), (0.5, 1), (3, 3), (250, 10)])
def test_batches_hold_at_most_a_second_of_messages(rate: float | None, size: int) -> None:
    """Given a rate, when batches are sized, then a batch is at most one second's worth (and 1..10)."""
    clock = FakeClock()
    assert _Pacer(rate, clock, clock.sleep).batch_size == size


# --------------------------------------------------------------------------- destinations


def _replayer() -> Replayer:
    queues = {kind: QueuePair(kind, f"q-{kind}", f"dlq-{kind}") for kind in ("scanova", "pagent", "scalev")}
    return Replayer(sqs=None, ledger=None, queues=queues, config=load_config("config/relay.local.yaml"))


def test_a_destination_name_selects_its_vendor_dlq_and_only_its_jobs() -> None:
    """Given the local config, when scalev_meta is selected, then it is the scalev DLQ, filtered to it."""
    selection = _replayer().select("scalev_meta")
    assert selection.pair.dlq_url == "dlq-scalev"
    assert selection.destinations == {"scalev_meta"}


def test_a_vendor_kind_selects_every_destination_of_that_vendor() -> None:
    """Given a vendor kind that is no destination name, when selected, then its DLQ is taken unfiltered."""
    selection = _replayer().select("scalev")
    assert selection.pair.queue_url == "q-scalev"
    assert selection.destinations is None


def test_an_unknown_destination_names_the_known_ones() -> None:
    """Given a typo, when selected, then the error lists destinations and vendor kinds."""
    with pytest.raises(UnknownDestinationError, match="scalev_tiktok"):
        _replayer().select("scanovva")


# --------------------------------------------------------------------------- CLI


def test_the_cli_local_stack_name_is_the_one_build_world_creates() -> None:
    """Given local.world.build_world, when its default stack name is read, then the CLI uses the same."""
    default = inspect.signature(build_world).parameters["stack_name"].default
    assert default == targets.LOCAL_STACK_NAME


def test_replay_options_are_validated_before_any_aws_call(capsys: pytest.CaptureFixture[str]) -> None:
    """Given until before since, when `relay replay` runs (offline), then it exits 2 with the reason."""
    code = cli.main(["replay", "--local", "--destination", "scanova", "--since", "1h", "--until", "3h"])
    assert code == 2
    assert "since must be before until" in capsys.readouterr().err


def test_a_target_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    """Given neither --local nor --stack, when `relay dlq ls` runs, then argparse asks for one."""
    with pytest.raises(SystemExit) as exited:
        cli.main(["dlq", "ls"])
    assert exited.value.code == 2
    assert "--local" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("delta", "shown"),
    [
        (timedelta(seconds=42), "42s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=3, minutes=7), "3h7m"),
        (timedelta(days=2, hours=5), "2d5h"),
    ],
)
def test_ages_are_short(delta: timedelta, shown: str) -> None:
    """Given a parking time, when its age is shown, then it is two units at most."""
    assert output.age(NOW - delta, NOW) == shown


@pytest.mark.parametrize(("max_jobs", "rate"), [(100, None), (1000, None), (1000, 5.0), (100_000, 0.5)])
def test_a_scan_holds_what_it_read_for_its_whole_run(max_jobs: int, rate: float | None) -> None:
    """Given a replay's --max and --rate, when the visibility hold is chosen, then it outlasts the
    paced sends and leaves time to read and check every job (SQS caps it at 12 h)."""
    hold = hold_seconds(max_jobs, rate)
    assert hold >= (max_jobs / rate if rate else 0) + max_jobs * 0.1


# --------------------------------------------------------------------------- --stack


def _stack_outputs(*, drop: str | None = None) -> dict:
    outputs = [{"OutputKey": "RelayTableName", "OutputValue": "relay-table"}]
    for prefix in ("Scanova", "Pagent", "Scalev", "QuickLizard"):
        outputs += [
            {"OutputKey": f"{prefix}QueueUrl", "OutputValue": f"https://sqs/{prefix}Queue"},
            {"OutputKey": f"{prefix}DeadLetterQueueUrl", "OutputValue": f"https://sqs/{prefix}DLQ"},
        ]
    outputs = [o for o in outputs if o["OutputKey"] != drop]
    return {
        "Stacks": [
            {
                "StackName": "conversion-relay",
                "CreationTime": NOW,
                "StackStatus": "UPDATE_COMPLETE",
                "Outputs": outputs,
            }
        ]
    }


def test_a_stack_is_found_by_its_outputs() -> None:
    """Given a deployed stack's outputs, when read, then each vendor gets its queue and DLQ, and the table."""
    cloudformation = boto3.client("cloudformation")
    with Stubber(cloudformation) as stub:
        stub.add_response("describe_stacks", _stack_outputs(), {"StackName": "conversion-relay"})
        queues, table = stack_queues(cloudformation, "conversion-relay")

    assert table == "relay-table"
    assert queues["quicklizard"] == QueuePair(
        "quicklizard", "https://sqs/QuickLizardQueue", "https://sqs/QuickLizardDLQ"
    )
    assert set(queues) == {"scanova", "pagent", "scalev", "quicklizard"}


def test_a_stack_without_the_outputs_is_refused_clearly() -> None:
    """Given a stack that lacks an output (not a relay stack), when read, then the error names it."""
    cloudformation = boto3.client("cloudformation")
    with Stubber(cloudformation) as stub:
        stub.add_response("describe_stacks", _stack_outputs(drop="PagentDeadLetterQueueUrl"))
        with pytest.raises(ReplayError, match="PagentDeadLetterQueueUrl"):
            stack_queues(cloudformation, "other-stack")


def test_a_missing_stack_is_refused_with_aws_reason() -> None:
    """Given no such stack, when read, then ReplayError carries CloudFormation's code and message."""
    cloudformation = boto3.client("cloudformation")
    with Stubber(cloudformation) as stub:
        stub.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id nope does not exist", http_status_code=400
        )
        with pytest.raises(ReplayError, match="nope does not exist"):
            stack_queues(cloudformation, "nope")
