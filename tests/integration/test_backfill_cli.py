"""`relay backfill --local` in-process against an embedded AWS (MOTO_PORT) and the Stripe API
sandbox over loopback, as an operator's shell runs it: the read key from the local stack's
secrets, the summary, the JSON, the guard on old windows, and resuming after an interrupt."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from relay.parking import ParkedEvent, ParkedEvents

import testkit
from local.stack.aws import EmbeddedAws
from local.stack.secrets import local_read_key_secret
from local.world import REPO_ROOT, World, build_world
from relay_cli import backfill as backfill_command
from relay_cli import main as cli
from relay_cli.checkpoint import state_dir
from sandboxes.stripe_api import StripeApiSandbox

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def service_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # The relay's modules name their loggers after the service when first imported (as in
    # Lambda, where the environment comes first): this module may be the first to import them.
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "conversion-relay")


@pytest.fixture(scope="module")
def embedded_aws() -> Iterator[EmbeddedAws]:
    aws = EmbeddedAws(port=0).start()
    yield aws
    aws.stop()


@pytest.fixture
def stripe() -> Iterator[StripeApiSandbox]:
    with StripeApiSandbox(seed=False).start() as sandbox:
        yield sandbox


@pytest.fixture
def stack(embedded_aws: EmbeddedAws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> World:
    """A fresh local-stack world with the Stripe read key where `relay backfill --local` looks."""
    requests.post(f"{embedded_aws.endpoint_url}/moto-api/reset", timeout=5).raise_for_status()
    monkeypatch.setenv("MOTO_PORT", str(embedded_aws.port))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where checkpoints go
    for name in ("STRIPE_READ_KEY", "HUBSPOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    secrets = {local_read_key_secret("stripe"): testkit.LOCAL_READ_KEYS["stripe"]}
    return build_world(embedded_aws.session(), secrets=secrets)


@pytest.fixture
def config(stripe: StripeApiSandbox, tmp_path: Path) -> Path:
    document = yaml.safe_load((REPO_ROOT / "config" / "relay.local.yaml").read_text())
    document["sources"]["stripe"]["settings"]["api_base"] = stripe.url
    path = tmp_path / "relay.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def seed(stripe: StripeApiSandbox, count: int) -> list[str]:
    ids = []
    for n in range(count):
        tag = uuid.uuid4().hex[:10]
        created = int((datetime.now(UTC) - timedelta(minutes=1 + n / 10)).timestamp())
        session = testkit.checkout_session(session_id=f"cs_{tag}", payment_intent=f"pi_{tag}")
        stripe.seed_event(
            testkit.stripe_event(
                "checkout.session.completed", session, event_id=f"evt_{tag}", created=created
            )
        )
        ids.append(f"evt_{tag}")
    return ids


def backfill(config: Path, *options: str) -> list[str]:
    return ["backfill", "--local", "--config", str(config), "--source", "stripe", *options]


def test_relay_backfill_reads_the_local_read_key_relays_once_and_reports(
    stack: World, stripe: StripeApiSandbox, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two checkouts Stripe holds
    seed(stripe, 2)
    # When the last two hours are backfilled, then again as JSON
    assert cli.main(backfill(config, "--since", "2h")) == 0
    out = capsys.readouterr().out
    assert cli.main(backfill(config, "--since", "2h", "--json")) == 0
    again = json.loads(capsys.readouterr().out)
    # Then both were relayed (6 destinations each), and the second run found them claimed
    assert "relayed (queued)" in out and "2  (12 job(s))" in out and "1 API call(s)" in out
    assert again["counts"] == {"stripe": {"duplicate": 2}} and again["api_calls"] == {"stripe": 1}


def test_a_dry_run_prints_a_table_of_what_would_be_relayed(
    stack: World, stripe: StripeApiSandbox, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (event_id,) = seed(stripe, 1)
    assert cli.main(backfill(config, "--since", "1h", "--dry-run", "--destination", "scanova")) == 0
    out = capsys.readouterr().out
    assert "OUTCOME" in out and event_id in out and "would_relay" in out and "scanova" in out


def test_a_window_past_the_delivery_ledger_needs_a_destination(
    stack: World, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(backfill(config, "--since", "20d")) == 1
    assert "--destination" in capsys.readouterr().err
    assert cli.main(backfill(config, "--since", "20d", "--destination", "scanova", "--dry-run")) == 0


def test_an_interrupted_backfill_resumes_from_its_checkpoint(
    stack: World,
    stripe: StripeApiSandbox,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 130 checkouts, and a backfill interrupted (Ctrl-C) after 110 of them
    ids = seed(stripe, 130)
    seen: list[Any] = []
    real = backfill_command._Progress.__call__

    def interrupt_at_110(self: Any, result: Any) -> None:
        seen.append(result)
        if len(seen) == 110:
            raise KeyboardInterrupt
        real(self, result)

    monkeypatch.setattr(backfill_command._Progress, "__call__", interrupt_at_110)
    assert cli.main(backfill(config, "--since", "1h")) == 130
    assert "run the same command again" in capsys.readouterr().err
    monkeypatch.setattr(backfill_command._Progress, "__call__", real)
    # When the same command runs again
    assert cli.main(backfill(config, "--since", "1h", "--json")) == 0
    resumed = json.loads(capsys.readouterr().out)
    # Then it starts after the last finished page (100 events), relays the rest once, and the
    # 10 relayed before the interrupt are duplicates; the checkpoint is gone
    assert "stripe" in resumed["resumed"]
    assert resumed["counts"]["stripe"] == {"duplicate": 10, "relayed": 20}
    assert {e["event_id"] for e in resumed["events"]} == set(ids[100:])
    assert not list(state_dir().glob("*.json"))
    assert cli.main(backfill(config, "--since", "1h", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["stripe"] == {"duplicate": 130}


def test_a_parked_event_is_found_by_its_id_alone(
    stack: World, stripe: StripeApiSandbox, config: Path, embedded_aws: EmbeddedAws, capsys
) -> None:
    # Given an event parked by the Stripe webhook (its record names the provider)
    (event_id,) = seed(stripe, 1)
    parked = ParkedEvents(embedded_aws.session().client("dynamodb"), stack.table_name)
    record = ParkedEvent("stripe", event_id, "checkout.session.completed", "unmappable", None, "f" * 32, NOW)
    parked.park(record, retention_days=30)
    # When `relay backfill --event ID` runs without --source, Then it is read from Stripe,
    # relayed, and no longer parked; an id nobody parked needs --source
    assert cli.main(["backfill", "--local", "--config", str(config), "--event", event_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"stripe": {"relayed": 1}}
    assert parked.get("stripe", event_id) is None
    assert cli.main(["backfill", "--local", "--config", str(config), "--event", "evt_unknown"]) == 1
    assert "--source" in capsys.readouterr().err
