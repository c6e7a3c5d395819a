"""Integration tests of `relay dlq …` / `relay replay …` against the local stack's embedded AWS,
and of ReplayFunction's handler against moto.

The CLI runs in-process (`relay.cli.main`) with `--local`, reaching moto's server over real
loopback HTTP on an ephemeral port (MOTO_PORT), exactly as an operator's shell would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import ModuleType

import pytest
import requests
from pydantic import ValidationError
from relay.dlq import ledger_key
from relay.models import Conversion, DeliveryJob, SourceRef, conversion_id

from local.lambda_context import LambdaContext
from local.stack.aws import EmbeddedAws
from local.world import World, build_world
from relay_cli import main as cli

pytestmark = pytest.mark.integration


def _job(name: str = "purchase") -> DeliveryJob:
    order = f"cs_{uuid.uuid4().hex[:12]}"
    conversion = Conversion(
        conversion_id=conversion_id("stripe", order, name),
        name=name,
        occurred_at=datetime.now(UTC),
        order_id=order,
        source=SourceRef(provider="stripe", event_id=f"evt_{order}", event_type="checkout.session.completed"),
    )
    return DeliveryJob(destination="scanova", conversion=conversion)


def _park(
    sqs, world: World, job: DeliveryJob, reason: str | None = "retries_exhausted", **extra: str
) -> None:
    attributes = job.message_attributes()
    if reason:
        attributes["failure_reason"] = {"DataType": "String", "StringValue": reason}
    for name, value in extra.items():
        attributes[name] = {"DataType": "String", "StringValue": value}
    sqs.send_message(
        QueueUrl=world.queue_url("ScanovaDeadLetterQueue"),
        MessageBody=job.model_dump_json(),
        MessageAttributes=attributes,
    )


@pytest.fixture(scope="module")
def embedded_aws() -> Iterator[EmbeddedAws]:
    aws = EmbeddedAws(port=0).start()
    yield aws
    aws.stop()


@pytest.fixture
def local_stack(embedded_aws: EmbeddedAws, monkeypatch: pytest.MonkeyPatch) -> World:
    """A fresh local-stack world on the embedded AWS, which `--local` finds through MOTO_PORT."""
    requests.post(f"{embedded_aws.endpoint_url}/moto-api/reset", timeout=5).raise_for_status()
    monkeypatch.setenv("MOTO_PORT", str(embedded_aws.port))
    return build_world(embedded_aws.session())


@pytest.fixture
def sqs(embedded_aws: EmbeddedAws, local_stack: World):
    return embedded_aws.session().client("sqs")


def _count(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _visible(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_dlq_ls_prints_a_table_and_counts_and_hides_nothing(
    local_stack: World, sqs, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given two jobs parked in the local Scanova DLQ (one rejected with the vendor's message),
    when `relay dlq ls --local` runs,
    then both conversion ids, the reason, status and vendor message are in the table with the
    counts by reason, and both messages are visible again right after."""
    rejected, exhausted = _job(), _job("signup")
    _park(sqs, local_stack, rejected, "rejected", failure_status="422", failure_message="unknown site")
    _park(sqs, local_stack, exhausted)

    code = cli.main(["dlq", "ls", "--local", "--destination", "scanova"])

    out = capsys.readouterr().out
    assert code == 0
    assert str(rejected.conversion.conversion_id) in out and str(exhausted.conversion.conversion_id) in out
    assert "unknown site" in out and "422" in out
    assert "2 parked job(s) listed: rejected 1, retries_exhausted 1" in out
    assert _visible(sqs, local_stack.queue_url("ScanovaDeadLetterQueue")) == 2


def test_dlq_ls_groups_in_doubt_jobs_by_the_request_they_shared(
    local_stack: World, sqs, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given three jobs parked in doubt from two vendor requests (two shared one), when `relay dlq ls`
    runs, then a second table shows one line per request with its job count, and how to decide."""
    shared, alone = [_job(), _job()], _job()
    for job in shared:
        _park(
            sqs,
            local_stack,
            job,
            "in_doubt",
            request_id="req-shared",
            failure_message="no answer within 10 s",
        )
    _park(
        sqs, local_stack, alone, "in_doubt", request_id="req-alone", failure_message="no answer within 10 s"
    )

    assert cli.main(["dlq", "ls", "--local", "--destination", "scanova"]) == 0

    out = capsys.readouterr().out
    grouped = out.split("by the vendor request they shared")[1]
    assert [line.split()[:3] for line in grouped.splitlines() if line.startswith("req-")] == [
        ["req-shared", "scanova", "2"],
        ["req-alone", "scanova", "1"],
    ]
    assert "--request ID --force" in grouped


def test_replay_force_of_one_request_moves_only_its_jobs(
    local_stack: World, sqs, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given in-doubt jobs of two requests, when the operator found one request's conversions
    missing at the vendor and replays it with --request and --force, then only those move."""
    missing, arrived = [_job(), _job()], [_job()]
    for job in missing:
        _park(sqs, local_stack, job, "in_doubt", request_id="req-missing")
    _park(sqs, local_stack, arrived[0], "in_doubt", request_id="req-arrived")

    argv = ["replay", "--local", "--destination", "scanova", "--request", "req-missing", "--force", "--json"]
    assert cli.main(argv) == 0

    summary = json.loads(capsys.readouterr().out)
    assert (summary["moved"], summary["not_matching"]) == (2, 1)
    assert _count(sqs, local_stack.queue_url("ScanovaQueue")) == 2


def test_dlq_ls_json_lists_every_vendor(local_stack: World, sqs, capsys: pytest.CaptureFixture[str]) -> None:
    """Given one parked job, when `relay dlq ls --local --json` runs without a destination,
    then the JSON lists it and a count for each of the four vendor DLQs."""
    job = _job()
    _park(sqs, local_stack, job)

    assert cli.main(["dlq", "ls", "--local", "--json"]) == 0

    listing = json.loads(capsys.readouterr().out)
    assert [j["conversion_id"] for j in listing["jobs"]] == [str(job.conversion.conversion_id)]
    assert listing["approximate_total"] == {"scanova": 1, "pagent": 0, "scalev": 0, "quicklizard": 0}


def test_dlq_show_prints_the_job_as_json(local_stack: World, sqs, capsys: pytest.CaptureFixture[str]) -> None:
    """Given a parked job, when `relay dlq show ID --local` runs, then its JSON is printed."""
    job = _job()
    _park(sqs, local_stack, job, "in_doubt")

    assert cli.main(["dlq", "show", str(job.conversion.conversion_id), "--local"]) == 0

    shown = json.loads(capsys.readouterr().out)
    assert shown["reason"] == "in_doubt"
    assert shown["job"]["conversion"]["name"] == "purchase"


def test_dlq_show_of_an_unknown_id_fails_clearly(
    local_stack: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given empty DLQs, when an id is shown, then the exit code is 1 and the error says not found."""
    assert cli.main(["dlq", "show", "no-such-id", "--local"]) == 1
    assert "no parked job no-such-id" in capsys.readouterr().err


def test_replay_dry_run_then_replay(local_stack: World, sqs, capsys: pytest.CaptureFixture[str]) -> None:
    """Given three parked jobs, one of them rejected,
    when `relay replay --local --destination scanova --dry-run` and then the same without --dry-run run,
    then the dry run lists the two that would move and changes nothing, and the replay moves
    exactly those two to the vendor queue, leaving the rejected one parked."""
    movable = [_job(), _job()]
    for job in movable:
        _park(sqs, local_stack, job)
    _park(sqs, local_stack, _job(), "rejected")
    dlq, queue = local_stack.queue_url("ScanovaDeadLetterQueue"), local_stack.queue_url("ScanovaQueue")

    assert cli.main(["replay", "--local", "--destination", "scanova", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert (_visible(sqs, dlq), _count(sqs, queue)) == (3, 0)
    assert cli.main(["replay", "--local", "--destination", "scanova"]) == 0
    real = capsys.readouterr().out

    assert "dry run, nothing changed" in dry
    assert all(str(job.conversion.conversion_id) in dry for job in movable)
    assert "would move" in dry and "left in the DLQ: rejected" in dry
    assert "moved to the vendor queue" in real
    assert (_count(sqs, dlq), _count(sqs, queue)) == (1, 2)


def test_replay_json_summary(local_stack: World, sqs, capsys: pytest.CaptureFixture[str]) -> None:
    """Given one parked signup and one purchase, when `relay replay --name signup --json` runs,
    then the JSON summary says one moved and one did not match."""
    _park(sqs, local_stack, _job("signup"))
    _park(sqs, local_stack, _job("purchase"))

    assert cli.main(["replay", "--local", "--destination", "scanova", "--name", "signup", "--json"]) == 0

    summary = json.loads(capsys.readouterr().out)
    assert (summary["moved"], summary["not_matching"], summary["scanned"]) == (1, 1, 2)


def test_native_replay_on_the_local_stack_says_moto_lacks_it(
    local_stack: World, sqs, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given the local stack, when `relay replay --native` runs, then it exits 1 explaining that
    moto lacks StartMessageMoveTask, and nothing moved."""
    _park(sqs, local_stack, _job())

    assert cli.main(["replay", "--local", "--destination", "scanova", "--native"]) == 1

    assert "moto" in capsys.readouterr().err
    assert _visible(sqs, local_stack.queue_url("ScanovaDeadLetterQueue")) == 1


def test_an_unknown_destination_exits_1_with_the_known_ones(
    local_stack: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given the local config, when replaying a misspelt destination, then exit 1 lists the real ones."""
    assert cli.main(["replay", "--local", "--destination", "scanovaa"]) == 1
    assert "scalev_meta" in capsys.readouterr().err


def test_without_the_local_stack_the_error_says_to_start_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given nothing listening on MOTO_PORT, when `relay dlq ls --local` runs, then it exits 1 and
    suggests `make run`."""
    monkeypatch.setenv("MOTO_PORT", "9")  # discard: nothing answers
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    assert cli.main(["dlq", "ls", "--local"]) == 1
    assert "make run" in capsys.readouterr().err


# --------------------------------------------------------------------------- ReplayFunction


@pytest.fixture
def replay_function(moto_world: World, load_handler: Callable[..., ModuleType]) -> ModuleType:
    """ReplayFunction's app.py, cold-started with the template's environment and the local config."""
    return load_handler(moto_world.functions["ReplayFunction"], {"RELAY_CONFIG": "config/relay.local.yaml"})


def test_replay_function_takes_the_cli_options_as_its_event(
    moto_world: World, replay_function: ModuleType
) -> None:
    """Given a parked job and ReplayFunction built from the template's environment,
    when invoked with a dry run and then a real run,
    then each answer is the replay summary, and the real run moved the job to the vendor queue."""
    import boto3

    sqs = boto3.client("sqs")
    _park(sqs, moto_world, _job())
    context = LambdaContext(function_name="ReplayFunction", timeout_seconds=900)

    dry = replay_function.lambda_handler({"destination": "scanova", "dry_run": True}, context)
    real = replay_function.lambda_handler({"destination": "scanova", "max": 100}, context)

    assert (dry["would_move"], dry["moved"], len(dry["selected"])) == (1, 0, 1)
    assert (real["moved"], real["left"]) == (1, {})
    assert _count(sqs, moto_world.queue_url("ScanovaQueue")) == 1


def test_replay_function_refuses_an_invalid_event(replay_function: ModuleType) -> None:
    """Given ReplayFunction, when invoked with an unknown option, then validation fails naming it."""
    with pytest.raises(ValidationError, match="dryrun"):
        replay_function.lambda_handler({"destination": "scanova", "dryrun": True}, LambdaContext())


def test_replay_function_works_within_its_template_iam(
    moto_world: World, replay_function: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a job parked after its retries and one parked in doubt, and ReplayFunction's calls
    checked against its template policy (as the local stack checks every function's),
    when it replays with --force, then both move back, the in-doubt record is forgotten, and no
    call was refused."""
    import boto3
    from botocore.client import BaseClient

    from local import iam

    sqs = boto3.client("sqs")
    _park(sqs, moto_world, _job())
    doubtful = _job()
    _park(sqs, moto_world, doubtful, reason="in_doubt")
    ledger_item = {"id": {"S": ledger_key("scanova", str(doubtful.conversion.conversion_id))}}
    boto3.client("dynamodb").put_item(
        TableName=moto_world.table_name, Item={**ledger_item, "status": {"S": "in_doubt"}}
    )
    unchecked = BaseClient._make_api_call
    monkeypatch.setattr(BaseClient, "_make_api_call", unchecked)
    refused: list[str] = []
    account = iam.Account(moto_world.region, moto_world.account_id, moto_world.hash_keys)
    policy = iam.Policy(moto_world.functions["ReplayFunction"].iam_statements)
    iam.enforce("ReplayFunction", policy, account, refused.append)
    context = LambdaContext(function_name="ReplayFunction", timeout_seconds=900)

    answer = replay_function.lambda_handler({"destination": "scanova", "force": True, "max": 10}, context)
    monkeypatch.setattr(BaseClient, "_make_api_call", unchecked)  # the test's own reads below are not checked

    assert refused == []
    assert (answer["moved"], answer["left"]) == (2, {})
    assert _count(sqs, moto_world.queue_url("ScanovaQueue")) == 2
    # And the in-doubt job's ledger record was forgotten (a DeleteItem its policy allows)
    assert "Item" not in boto3.client("dynamodb").get_item(TableName=moto_world.table_name, Key=ledger_item)
